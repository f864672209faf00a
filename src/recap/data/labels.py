"""Labels that change after recording, kept apart from the immutable raw episodes.

* Success labels: an append-only JSON-lines log per episode (``success/<episode_id>.jsonl``), one event per
  line, written under an exclusive ``fcntl`` lock and fsynced. The latest event wins; the log is the history.
* Label sets (``labels/<name>/``): derived per-step labels (returns, values, advantages, indicators) produced
  by one model, one ``<episode_id>.npz`` per episode plus ``metadata.json``. A set is written in a
  temporary directory and renamed into place, so readers never see half a set.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recap.data.episode_files import fsync_dir
from recap.errors import LabelError, StoreError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def append_success(path: Path, success: bool | None, *, by: str, note: str) -> dict[str, Any]:
    """Append one success event (``success=None`` clears the label) to ``path``."""
    event = {"success": success, "by": by, "note": note, "time": now_iso()}
    line = (json.dumps(event) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    return event


def read_success_log(path: Path) -> list[dict[str, Any]]:
    """Events in order; a torn last line (a writer killed mid-append) is skipped, any other bad line raises."""
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return []
    events = []
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if i == len(lines) - 1:  # no trailing newline: the append was cut short
                continue
            raise StoreError(f"file {path}: line {i + 1} is corrupt ({exc})") from exc
        events.append(event)
    return events


def check_label_set_name(name: str) -> str:
    if not _NAME.match(name):
        raise LabelError(
            f"label set name {name!r} is not allowed; use letters, digits and . _ + - (e.g. 'value-v3')"
        )
    return name


def write_label_set(
    root: Path,
    name: str,
    labels: Mapping[str, Mapping[str, torch.Tensor | np.ndarray]],
    metadata: Mapping[str, Any],
    lengths: Mapping[str, int],
) -> None:
    """Write (or atomically replace) the label set ``root/name``; ``lengths`` holds every known episode."""
    check_label_set_name(name)
    unknown = sorted(set(labels) - set(lengths))
    if unknown:
        raise LabelError(f"label set {name!r}: episodes {unknown[:5]} are not in the store")
    tmp = root / f".tmp-{name}-{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        for eid, per_step in labels.items():
            arrays = {}
            for key, value in per_step.items():
                arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
                if arr.shape != (lengths[eid],):
                    raise LabelError(
                        f"label set {name!r}, episode {eid}, key {key!r}: expected shape [{lengths[eid]}] "
                        f"(one value per step), found {list(arr.shape)}"
                    )
                arrays[key] = arr
            with open(tmp / f"{eid}.npz", "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
        meta = {"name": name, "created": now_iso(), "episodes": len(labels), "metadata": dict(metadata)}
        try:
            text = json.dumps(meta, indent=1)
        except TypeError as exc:
            raise LabelError(f"label set {name!r}: metadata must be JSON-serialisable ({exc})") from exc
        (tmp / "metadata.json").write_text(text)
        fsync_dir(tmp)
        final = root / name
        old = root / f".old-{name}-{uuid.uuid4().hex}"
        if final.exists():
            os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(root)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_label_set(root: Path, name: str) -> dict[str, dict[str, torch.Tensor]]:
    directory = root / check_label_set_name(name)
    if not (directory / "metadata.json").is_file():
        have = list_label_sets(root)
        raise LabelError(f"no label set {name!r} in the store (have {have}); create one with `recap label`")
    out: dict[str, dict[str, torch.Tensor]] = {}
    for path in sorted(directory.glob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as data:
                out[path.stem] = {k: torch.from_numpy(data[k].copy()) for k in data.files}
        except (ValueError, OSError, EOFError) as exc:
            raise StoreError(
                f"label set {name!r}: episode {path.stem}: file {path} is corrupt ({exc})"
            ) from exc
    return out


def read_label_set_metadata(root: Path, name: str) -> dict[str, Any]:
    path = root / check_label_set_name(name) / "metadata.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise LabelError(f"no label set {name!r}; have {list_label_sets(root)}") from exc


def list_label_sets(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if not p.name.startswith(".") and (p / "metadata.json").is_file()
    )

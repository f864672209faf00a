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
from recap.errors import LabelError, StaleLabelError, StoreError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def append_success(
    path: Path,
    success: bool | None,
    *,
    by: str,
    note: str,
    failure_time: float | None = None,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Append one success event (``success=None`` clears the label) to ``path``; return it.

    The log's version is its number of events. With ``expected_version``, the event is written only if the
    log still has exactly that many events (a compare-and-set under the file lock); otherwise
    ``StaleLabelError`` says what changed. A torn last line left by a killed writer is cut off first so the
    new line starts clean.
    """
    event: dict[str, Any] = {"success": success, "by": by, "note": note, "time": now_iso()}
    if failure_time is not None:
        event["failure_time"] = failure_time
    line = (json.dumps(event) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = _end_with_newline(fd, _read_all(fd))
        if expected_version is not None:
            events = parse_success_log(data, path)
            if len(events) != expected_version:
                raise StaleLabelError(_stale_message(path.stem, expected_version, events))
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    return event


def _read_all(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _end_with_newline(fd: int, data: bytes) -> bytes:
    """Complete a last line that lacks only its newline; cut off a torn one (as the reader skips it)."""
    if not data or data.endswith(b"\n"):
        return data
    start = data.rfind(b"\n") + 1
    try:
        json.loads(data[start:])
    except (UnicodeDecodeError, json.JSONDecodeError):
        os.ftruncate(fd, start)
        return data[:start]
    os.write(fd, b"\n")
    return data + b"\n"


def _stale_message(episode_id: str, expected: int, events: list[dict[str, Any]]) -> str:
    latest = events[-1] if events else None
    now = (
        f"now {success_name(latest['success'])} by {latest['by'] or 'unknown'} at {latest['time']}"
        if latest
        else "its history was reset"
    )
    return (
        f"episode {episode_id}: its label changed since you loaded it ({len(events)} changes, you saw "
        f"{expected}; {now}); nothing was written - reload the episode and label it again"
    )


def success_name(success: bool | None) -> str:
    return {True: "success", False: "failure", None: "unlabelled"}[success]


def read_success_log(path: Path) -> list[dict[str, Any]]:
    """Events in order; a torn last line (a writer killed mid-append) is skipped, any other bad line raises."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return parse_success_log(data, path)


def parse_success_log(data: bytes, path: Path) -> list[dict[str, Any]]:
    lines = data.split(b"\n")
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
    return {path.stem: _read_episode_npz(path, name) for path in sorted(directory.glob("*.npz"))}


def _read_episode_npz(path: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: torch.from_numpy(data[k].copy()) for k in data.files}
    except (ValueError, OSError, EOFError) as exc:
        raise StoreError(f"label set {name!r}: episode {path.stem}: file {path} is corrupt ({exc})") from exc


def read_episode_labels(root: Path, name: str, episode_id: str) -> dict[str, torch.Tensor]:
    """One episode's per-step labels from the set ``name`` (empty when the set does not cover it)."""
    read_label_set_metadata(root, name)  # a clear error when the set itself is missing
    path = root / name / f"{episode_id}.npz"
    return _read_episode_npz(path, name) if path.is_file() else {}


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

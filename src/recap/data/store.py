"""``EpisodeStore``: an append-only directory of episodes that many processes may write at once.

Layout::

    store.json                    spec and image codec (written once, at create)
    episodes/<episode_id>/        one committed episode: data.bin (all arrays) and meta.json
    tmp/<episode_id>.<host>.<pid> episodes being written (ignored by readers, removed when their writer died)
    success/<episode_id>.jsonl    append-only success-label history (reviewer, note, time; compare-and-set)
    labels/<name>/                derived label sets (labels.py)
    cache/norm_stats.json         normalisation statistics with the fingerprint of the episodes they cover
    cache/review/                 `recap review`'s episode summaries and encoded videos (derived, deletable)

Committing an episode is one ``rename`` of a fully written, fsynced directory, so a crash at any point
leaves either the whole episode or none of it, and episode ids (time, robot, random uuid) never collide
across processes. Raw episode files are never rewritten.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from recap.data import episode_files as ef
from recap.data import keys
from recap.data import labels as label_files
from recap.data.atomic_json import write_json_atomic
from recap.data.index import EpisodeIndex
from recap.data.schema import (
    EPISODE_ID,
    Episode,
    EpisodeMeta,
    check_episode_fields,
    check_provenance,
    encode_subtasks,
    new_episode_id,
    spec_from_dict,
    spec_to_dict,
    validate_steps,
)
from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap.data.video import DEFAULT_KEYFRAME_INTERVAL, VIDEO_CODECS, EncodedVideo, check_keyframe_interval
from recap.errors import LabelError, SchemaError, StoreError

STORE_FILE = "store.json"
MAX_NOTE_CHARS = 2000
MAX_REVIEWER_CHARS = 128
STORE_FORMAT = "recap-episode-store"


class _Any:
    def __repr__(self) -> str:
        return "ANY"


#: Default of ``EpisodeStore.episodes(success=...)``: do not filter on success.
ANY: Any = _Any()


class EpisodeStore:
    """A directory of immutable episodes plus mutable success labels, label sets and cached statistics."""

    def __init__(
        self,
        root: Path,
        spec: RobotSpec,
        image_codec: str | None,
        keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL,
    ) -> None:
        self.root = Path(root)
        self._spec = spec
        self.image_codec = image_codec
        self.keyframe_interval = keyframe_interval
        self._index = EpisodeIndex(self.root, spec)

    # ---------------------------------------------------------------- create / open
    @classmethod
    def create(
        cls,
        path: str | Path,
        spec: RobotSpec,
        *,
        image_codec: str | None = None,
        keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL,
    ) -> EpisodeStore:
        """Create an empty store at ``path`` (a new or empty directory).

        ``image_codec``: ``None`` stores raw frames (fastest reads, memory-mapped), ``"zlib"`` compresses each
        frame losslessly (smaller, decompressed on read), ``"av1"`` / ``"h264"`` (lossy) and ``"lossless"``
        encode each camera of an episode as one MP4 when it is added (``recap.data.video``; ~200x smaller than
        raw for the lossy ones, frames decoded on read). ``keyframe_interval``: frames between keyframes of the
        video codecs (random access decodes at most this many frames per frame read).
        """
        if image_codec not in ef.IMAGE_CODECS:
            raise StoreError(f"image_codec must be one of {list(ef.IMAGE_CODECS)}, got {image_codec!r}")
        check_keyframe_interval(keyframe_interval)
        if image_codec in VIDEO_CODECS and VIDEO_CODECS[image_codec]["pix_fmt"] == "yuv420p":
            odd = [f"{c.name} {c.height}x{c.width}" for c in spec.cameras if c.height % 2 or c.width % 2]
            if odd:
                raise StoreError(
                    f"image_codec {image_codec!r} needs even frame sizes, found {odd}; use 'lossless' or zlib"
                )
        root = Path(path)
        if root.exists() and any(root.iterdir()):
            hint = " (it is already a store: use EpisodeStore.open)" if (root / STORE_FILE).exists() else ""
            raise StoreError(f"cannot create a store in {root}: the directory is not empty{hint}")
        for sub in ("episodes", "tmp", "success", "labels", "cache"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        info = {
            "format": STORE_FORMAT,
            "version": 1,
            "spec": spec_to_dict(spec),
            "image_codec": image_codec,
            "keyframe_interval": keyframe_interval,
        }
        write_json_atomic(root / STORE_FILE, info)
        return cls(root, spec, image_codec, keyframe_interval)

    @classmethod
    def open(cls, path: str | Path) -> EpisodeStore:
        """Open an existing store; removes temporary directories left by writers that died on this host."""
        root = Path(path)
        try:
            info = json.loads((root / STORE_FILE).read_text())
        except FileNotFoundError as exc:
            raise StoreError(
                f"{root} is not an episode store (no {STORE_FILE}); create one with EpisodeStore.create "
                "or import one with `recap data import-lerobot`"
            ) from exc
        except json.JSONDecodeError as exc:
            raise StoreError(f"file {root / STORE_FILE} is corrupt ({exc})") from exc
        if info.get("format") != STORE_FORMAT:
            raise StoreError(
                f"file {root / STORE_FILE}: format {info.get('format')!r}, expected {STORE_FORMAT!r}"
            )
        store = cls(
            root,
            spec_from_dict(info["spec"]),
            info.get("image_codec"),
            info.get("keyframe_interval", DEFAULT_KEYFRAME_INTERVAL),
        )
        store._clean_tmp()
        return store

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    def _clean_tmp(self) -> None:
        host = socket.gethostname()
        for d in (self.root / "tmp").iterdir():
            parts = d.name.rsplit(".", 2)
            if (
                len(parts) == 3
                and parts[1] == host
                and parts[2].isdigit()
                and not ef.pid_alive(int(parts[2]))
            ):
                shutil.rmtree(d, ignore_errors=True)

    # ---------------------------------------------------------------- writing
    def add(
        self,
        steps: TensorDict | Mapping[str, Any],
        *,
        task: str,
        source: str,
        success: bool | None = None,
        policy_version: str = "",
        robot_id: str = "",
        subtasks: Sequence[str] | None = None,
        episode_id: str | None = None,
        created: str | None = None,
        iteration: int | None = None,
        stage: str | None = None,
        seed: int | None = None,
    ) -> EpisodeMeta:
        """Validate and commit one episode atomically; returns its metadata (with a new unique id).

        ``episode_id`` / ``created`` keep an episode's identity when importing it from elsewhere; adding an
        id that is already in the store raises ``StoreError``. ``iteration`` / ``stage`` / ``seed`` record
        where the episode came from (see ``EpisodeMeta``).
        """
        check_episode_fields(task, source, success)
        check_provenance(iteration, stage, seed)
        steps, encoded = self._split_encoded(steps)
        arrays: dict[str, Any] = {**validate_steps(steps, self._spec), **encoded}
        length = len(arrays[keys.ACTION])
        vocab: list[str] = []
        if subtasks is not None:
            vocab, arrays["subtask_index"] = encode_subtasks(subtasks, length)
        if episode_id is None:
            episode_id = new_episode_id(robot_id)
        elif not EPISODE_ID.match(episode_id):
            raise SchemaError(f"episode_id {episode_id!r}: use letters, digits, '-' and '_' only (max 128)")
        elif (self.root / "episodes" / episode_id).exists():
            raise StoreError(f"episode {episode_id} is already in {self.root}")
        fields = {
            "episode_id": episode_id,
            "task": task,
            "success": success,
            "source": source,
            "policy_version": policy_version,
            "robot_id": robot_id,
            "fps": self._spec.fps,
            "length": length,
            "created": created or label_files.now_iso(),
            "iteration": iteration,
            "stage": stage,
            "seed": seed,
        }
        return self._commit(episode_id, arrays, fields, vocab)

    def _split_encoded(self, steps: TensorDict | Mapping[str, Any]) -> tuple[Any, dict[str, EncodedVideo]]:
        """Cameras given as ``EncodedVideo`` (copied out of another video, e.g. by the LeRobot import) are stored
        as they are; validation sees a zero-copy stand-in of their declared shape."""
        if isinstance(steps, TensorDict):
            return steps, {}
        encoded = {k: v for k, v in steps.items() if isinstance(v, EncodedVideo)}
        if not encoded:
            return steps, {}
        if self.image_codec not in VIDEO_CODECS:
            raise StoreError(
                f"encoded video for {sorted(encoded)} can only go into a video store; this one stores "
                f"{self.image_codec or 'raw'} frames: pass decoded frames"
            )
        stand_ins = {
            k: np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), v.shape) for k, v in encoded.items()
        }
        return {**steps, **stand_ins}, encoded

    def copy_episode(self, source: EpisodeStore, episode_id: str) -> EpisodeMeta:
        """Add episode ``episode_id`` of ``source`` (same spec) to this store in this store's image codec,
        keeping its id, every recorded field and its success-label history."""
        if source.spec != self._spec:
            raise StoreError(f"cannot copy from {source.root}: its spec {source.spec} is not this store's")
        if (self.root / "episodes" / episode_id).exists():
            raise StoreError(f"episode {episode_id} is already in {self.root}")
        raw = source._raw_meta(episode_id)
        arrays = {key: np.asarray(frames) for key, frames in source.arrays(episode_id).items()}
        fields = {key: raw[key] for key in raw["hashed_fields"]}
        history = source._index.success_log(episode_id)
        if history.exists():  # before the commit: a copied episode never lacks its history
            shutil.copyfile(history, self._index.success_log(episode_id))
        return self._commit(episode_id, arrays, fields, list(raw["subtask_vocab"]))

    def _commit(
        self, episode_id: str, arrays: Mapping[str, Any], fields: dict[str, Any], vocab: list[str]
    ) -> EpisodeMeta:
        """Write the episode into a private temporary directory, then rename it into ``episodes/``."""
        tmp = self.root / "tmp" / f"{episode_id}.{socket.gethostname()}.{os.getpid()}"
        tmp.mkdir()
        try:
            meta = ef.write_episode_dir(
                tmp,
                arrays,
                fields,
                image_codec=self.image_codec,
                subtask_vocab=vocab,
                keyframe_interval=self.keyframe_interval,
            )
            try:
                os.rename(tmp, self.root / "episodes" / episode_id)  # the commit
            except OSError as exc:
                raise StoreError(
                    f"episode {episode_id} could not be committed to {self.root} ({exc})"
                ) from exc
            ef.fsync_dir(self.root / "episodes")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._index.raw[episode_id] = meta
        return self._index.to_meta(meta)

    # ---------------------------------------------------------------- reading
    def episodes(
        self,
        task: str | None = None,
        source: str | None = None,
        success: bool | None | Any = ANY,
        policy_version: str | None = None,
        robot_id: str | None = None,
        iteration: int | None = None,
        stage: str | None = None,
    ) -> list[EpisodeMeta]:
        """Committed, readable episodes matching every given filter, ordered by id (time of recording).

        ``success=None`` selects unlabelled episodes; leave it out to ignore success. Unreadable episodes are
        skipped and reported by ``problems()``.
        """
        wanted = {
            "task": task,
            "source": source,
            "policy_version": policy_version,
            "robot_id": robot_id,
            "iteration": iteration,
            "stage": stage,
        }
        wanted = {k: v for k, v in wanted.items() if v is not None}
        return [
            m
            for m in self._index.metas()
            if all(getattr(m, k) == v for k, v in wanted.items()) and (success is ANY or m.success is success)
        ]

    def problems(self) -> dict[str, str]:
        """Episode id -> why it cannot be read (corrupt, truncated or wrong-schema episodes)."""
        self._index.refresh()
        return dict(self._index.problems)

    def _raw_meta(self, episode_id: str) -> dict[str, Any]:
        return self._index.get(episode_id)

    def meta(self, episode_id: str) -> EpisodeMeta:
        return self._index.to_meta(self._raw_meta(episode_id))

    def arrays(self, episode_id: str) -> dict[str, ef.Frames]:
        """The episode's arrays, memory-mapped (read-only; zlib and video frames decode on indexing)."""
        meta = self._raw_meta(episode_id)
        return ef.open_arrays(self.root / "episodes" / episode_id, meta)

    def content_hash(self, episode_id: str) -> str:
        """sha256 over the episode's recorded fields and every array (``verify`` checks it)."""
        return self._raw_meta(episode_id)["content_hash"]

    def subtask_vocab(self, episode_id: str) -> list[str]:
        return list(self._raw_meta(episode_id)["subtask_vocab"])

    def load(self, episode_id: str, cameras: Sequence[str] | None = None) -> Episode:
        """Read a whole episode into memory: ``.steps`` is a ``TensorDict[T]``."""
        meta = self._raw_meta(episode_id)
        arrays = self.arrays(episode_id)
        wanted = self._spec.camera_names if cameras is None else tuple(cameras)
        steps = {}
        for key, arr in arrays.items():
            if key == "subtask_index" or (
                key.startswith(keys.IMAGE_PREFIX) and key[len(keys.IMAGE_PREFIX) :] not in wanted
            ):
                continue
            steps[key] = torch.from_numpy(np.array(arr))
        length = meta["length"]
        if "subtask_index" in arrays:
            vocab = meta["subtask_vocab"]
            subtasks = [vocab[i] for i in np.asarray(arrays["subtask_index"])]
        else:
            subtasks = [""] * length
        return Episode(self._index.to_meta(meta), TensorDict(steps, batch_size=[length]), subtasks)

    def verify(self) -> dict[str, str]:
        """Re-hash every array of every episode; returns (and records) the episodes that fail."""
        for m in self._index.metas():
            try:
                ef.verify_files(self.root / "episodes" / m.episode_id, self._index.raw[m.episode_id])
            except StoreError as exc:
                self._index.mark_bad(m.episode_id, str(exc))
        return dict(self._index.problems)

    # ---------------------------------------------------------------- success labels
    def set_success(
        self,
        episode_id: str,
        success: bool | None,
        *,
        by: str = "",
        note: str = "",
        failure_time: float | None = None,
        expected_version: int | None = None,
    ) -> EpisodeMeta:
        """Label (or relabel; ``None`` clears) an episode's success. Every change is kept in its history.

        ``by`` names the reviewer; ``failure_time`` (seconds from the episode's start) marks where a failure
        happened. ``expected_version`` makes the write a compare-and-set: pass the ``label_version`` the
        decision was based on, and the write is refused with ``StaleLabelError`` if anyone labelled the
        episode since, so concurrent reviewers never silently overwrite each other.
        """
        if success is not None and not isinstance(success, bool):
            raise LabelError(f"success: expected True, False or None (clear), found {success!r}")
        meta = self._raw_meta(episode_id)
        _check_label_text("by", by, MAX_REVIEWER_CHARS)
        _check_label_text("note", note, MAX_NOTE_CHARS)
        if failure_time is not None:
            _check_failure_time(failure_time, success, meta["length"] / meta["fps"])
        if expected_version is not None and (
            isinstance(expected_version, bool)
            or not isinstance(expected_version, int)
            or expected_version < 0
        ):
            raise LabelError(f"expected_version: expected an integer >= 0, found {expected_version!r}")
        label_files.append_success(
            self._index.success_log(episode_id),
            success,
            by=by,
            note=note,
            failure_time=None if failure_time is None else float(failure_time),
            expected_version=expected_version,
        )
        return self.meta(episode_id)

    def label_version(self, episode_id: str) -> int:
        """How many times the episode's success label was changed after recording (the compare-and-set token)."""
        self._raw_meta(episode_id)
        return len(label_files.read_success_log(self._index.success_log(episode_id)))

    def success_history(self, episode_id: str) -> list[dict[str, Any]]:
        """The label at recording time followed by every later change, oldest first."""
        meta = self._raw_meta(episode_id)
        first = {"success": meta["success"], "by": "recording", "note": "", "time": meta["created"]}
        return [first, *label_files.read_success_log(self._index.success_log(episode_id))]

    def label_history(self) -> list[dict[str, Any]]:
        """Every success-label change in the store (each with its ``episode_id``), oldest first."""
        events = []
        for path in sorted((self.root / "success").glob("*.jsonl")):
            events += [{"episode_id": path.stem, **e} for e in label_files.read_success_log(path)]
        return sorted(events, key=lambda e: e["time"])

    # ---------------------------------------------------------------- label sets
    def write_labels(
        self, name: str, labels: Mapping[str, Mapping[str, Any]], metadata: Mapping[str, Any]
    ) -> None:
        """Write (or replace) the label set ``name``: per episode, per key, one value per step."""
        lengths = {m.episode_id: m.length for m in self.episodes()}
        label_files.write_label_set(self.root / "labels", name, labels, metadata, lengths)

    def copy_label_set(self, source: EpisodeStore, name: str) -> None:
        """Write ``source``'s label set ``name`` here as it is: its labels and the labeller's record (the
        episodes it labels must be in this store)."""
        self.write_labels(name, source.read_labels(name), source.label_set_metadata(name)["metadata"])

    def read_labels(self, name: str) -> dict[str, dict[str, torch.Tensor]]:
        return label_files.read_label_set(self.root / "labels", name)

    def episode_labels(self, name: str, episode_id: str) -> dict[str, torch.Tensor]:
        """One episode's per-step labels from the set ``name`` without reading the rest of the set."""
        self._raw_meta(episode_id)
        return label_files.read_episode_labels(self.root / "labels", name, episode_id)

    def label_set_metadata(self, name: str) -> dict[str, Any]:
        return label_files.read_label_set_metadata(self.root / "labels", name)

    def label_sets(self) -> list[str]:
        return label_files.list_label_sets(self.root / "labels")

    # ---------------------------------------------------------------- derived facts
    def max_length_per_task(self) -> dict[str, int]:
        """Per task, its longest episode in steps (the return normaliser L of docs/method.md)."""
        out: dict[str, int] = collections.defaultdict(int)
        for m in self.episodes():
            out[m.task] = max(out[m.task], m.length)
        return dict(out)

    def norm_stats(self) -> NormStats:
        """Mean, std, q01, q99 of state, action (and environment state) over every step; cached in the store
        and recomputed when the set of episodes changes."""
        eps = self.episodes()
        if not eps:
            raise StoreError(f"store {self.root} has no episodes; statistics need at least one")
        fingerprint = hashlib.sha256("\n".join(m.episode_id for m in eps).encode()).hexdigest()
        path = self.root / "cache" / "norm_stats.json"
        try:
            cached = json.loads(path.read_text())
            if cached.get("fingerprint") == fingerprint:
                return NormStats.from_dict(cached["stats"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        feats = [keys.STATE, keys.ACTION] + ([keys.ENV_STATE] if self._spec.env_state_dim else [])
        columns: dict[str, list[np.ndarray]] = {k: [] for k in feats}
        # summed in content order, not id (recording) order: the same episodes give the same bits
        for m in sorted(eps, key=lambda m: self.content_hash(m.episode_id)):
            arrays = self.arrays(m.episode_id)
            for k in feats:
                columns[k].append(np.asarray(arrays[k]))
        stats = NormStats.compute({k: torch.from_numpy(np.concatenate(v)) for k, v in columns.items()})
        path.parent.mkdir(exist_ok=True)  # derived data: a deleted cache is rebuilt, never an error
        write_json_atomic(path, {"fingerprint": fingerprint, "episodes": len(eps), "stats": stats.to_dict()})
        return stats

    def disk_usage(self) -> int:
        """Bytes of every file under the store."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.root)!r}, cameras={list(self._spec.camera_names)}, codec={self.image_codec})"


def _check_label_text(name: str, value: Any, limit: int) -> None:
    if not isinstance(value, str) or len(value) > limit:
        shown = value if not isinstance(value, str) else f"{len(value)} characters"
        raise LabelError(f"{name}: expected text of at most {limit} characters, found {shown!r}")


def _check_failure_time(failure_time: Any, success: bool | None, duration_s: float) -> None:
    if success is not False:
        raise LabelError("failure_time marks where a failure happened; give it only with success=False")
    if isinstance(failure_time, bool) or not isinstance(failure_time, int | float):
        raise LabelError(f"failure_time: expected seconds from the episode's start, found {failure_time!r}")
    if not 0 <= failure_time <= duration_s:
        raise LabelError(
            f"failure_time: expected 0..{duration_s:.3f} s (the episode's duration), found {failure_time}"
        )

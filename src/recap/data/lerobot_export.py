"""Export an ``EpisodeStore`` (or a view of it) to a LeRobot v3.0 dataset directory (see lerobot_format.py).

Column mapping: ``observation.state``, ``action``, ``observation.environment_state`` keep their names;
``is_intervention`` -> ``intervention`` (bool per frame); success -> ``next.success`` (True on the last frame
of a successful episode) plus the nullable ``success`` episode column; episode ends -> ``next.done``;
sub-task text -> ``subtask_index`` + ``meta/subtasks.parquet``; source, policy version and robot go to
episode columns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from recap.data import keys
from recap.data import lerobot_format as fmt
from recap.data.schema import EpisodeMeta
from recap.data.store import EpisodeStore
from recap.data.video import VideoWriter, codec_settings
from recap.errors import StoreError

_VECTOR_KEYS = (keys.STATE, keys.ENV_STATE, keys.ACTION)


def _vector_column(arr: np.ndarray) -> pa.Array:
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1])


def _stats(values: np.ndarray) -> dict[str, Any]:
    """min, max, mean, std, count, q01, q99 over axis 0 of ``[N, ...]``."""
    v = values.astype(np.float64)
    q01, q99 = np.quantile(v, [0.01, 0.99], axis=0)
    return {
        "min": v.min(0).tolist(),
        "max": v.max(0).tolist(),
        "mean": v.mean(0).tolist(),
        "std": v.std(0).tolist(),
        "count": [int(len(v))],
        "q01": q01.tolist(),
        "q99": q99.tolist(),
    }


def _image_stats(frames: np.ndarray) -> dict[str, Any]:
    """Per-channel stats in [0, 1], shaped [3, 1, 1] as LeRobot stores them."""
    per_channel = frames.reshape(-1, 3).astype(np.float32) / 255.0
    s = _stats(per_channel)
    return {k: (v if k == "count" else [[[x]] for x in v]) for k, v in s.items()}


class _Files:
    """The current data file and video files; rolls over to the next file index between episodes."""

    def __init__(self, root: Path, cameras: Sequence[Any], fps: int, codec: str, schema: pa.Schema) -> None:
        self.root, self.cameras, self.fps, self.codec, self.schema = root, cameras, fps, codec, schema
        self.index, self.frames = 0, 0
        self.data: pq.ParquetWriter | None = None
        self.videos: dict[str, VideoWriter] = {}

    def open(self) -> None:
        where = fmt.chunk_file(self.index)
        path = self.root / fmt.DATA_PATH.format(**where)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.data = pq.ParquetWriter(path, self.schema, compression="snappy")
        for cam in self.cameras:
            vpath = self.root / fmt.VIDEO_PATH.format(video_key=cam.key, **where)
            self.videos[cam.key] = VideoWriter(vpath, cam.height, cam.width, self.fps, self.codec)
        self.frames = 0

    def close(self) -> None:
        if self.data is not None:
            self.data.close()
            for writer in self.videos.values():
                writer.close()
            self.data, self.videos = None, {}

    def roll(self) -> None:
        self.close()
        self.index += 1


def export_lerobot(
    store: EpisodeStore,
    path: str | Path,
    *,
    codec: str = "av1",
    episodes: Sequence[EpisodeMeta] | None = None,
    frames_per_file: int = 20_000,
    robot_type: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``episodes`` (default: all) of ``store`` as a LeRobot v3.0 dataset at ``path``; returns info.json.

    ``codec``: a key of ``recap.data.video.VIDEO_CODECS`` (``"lossless"`` for bit-exact frames).
    A new data/video file starts once the current one holds ``frames_per_file`` frames.
    """
    settings = codec_settings(codec)
    root = Path(path)
    if root.exists() and any(root.iterdir()):
        raise StoreError(f"cannot export to {root}: the directory is not empty; choose a new path")
    eps = list(store.episodes() if episodes is None else episodes)
    if not eps:
        raise StoreError(f"store {store.root} has no episodes to export")
    export = _Export(store, root, codec, eps)
    try:
        for ep_index, m in enumerate(tqdm(eps, desc="export episodes", unit="ep", disable=not progress)):
            export.add_episode(ep_index, m, frames_per_file)
    finally:
        export.files.close()
    export.write_meta()
    spec = store.spec
    info = _info(
        spec,
        settings,
        export.vec_keys,
        export.has_subtasks,
        len(eps),
        export.total,
        len(export.tasks),
        robot_type,
    )
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    return info


def _frame_schema(spec: Any, vec_keys: list[str], has_subtasks: bool) -> pa.Schema:
    """The columns of the per-frame data files."""
    fields = [pa.field(k, pa.list_(pa.float32(), _dim(spec, k))) for k in vec_keys]
    fields += [
        pa.field("timestamp", pa.float32()),
        pa.field("frame_index", pa.int64()),
        pa.field("episode_index", pa.int64()),
        pa.field("index", pa.int64()),
        pa.field("task_index", pa.int64()),
        pa.field(fmt.DONE_COLUMN, pa.bool_()),
        pa.field(fmt.SUCCESS_COLUMN, pa.bool_()),
        pa.field(fmt.INTERVENTION_COLUMN, pa.bool_()),
    ]
    if has_subtasks:
        fields.append(pa.field(fmt.SUBTASK_INDEX, pa.int64()))
    return pa.schema(fields)


class _Export:
    """One export in progress: the open files plus what the meta files need (tasks, episode rows, statistics)."""

    def __init__(self, store: EpisodeStore, root: Path, codec: str, eps: list[EpisodeMeta]) -> None:
        spec = self.spec = store.spec
        self.store, self.root = store, root
        self.vec_keys = [k for k in _VECTOR_KEYS if k != keys.ENV_STATE or spec.env_state_dim]
        self.has_subtasks = any(store.subtask_vocab(m.episode_id) for m in eps)
        self.files = _Files(
            root, spec.cameras, spec.fps, codec, _frame_schema(spec, self.vec_keys, self.has_subtasks)
        )
        self.tasks: dict[str, int] = {}
        self.subtasks: dict[str, int] = {}
        self.rows: list[dict[str, Any]] = []
        self.columns: dict[str, list[np.ndarray]] = {k: [] for k in self.vec_keys}
        self.image_samples: dict[str, list[np.ndarray]] = {cam.key: [] for cam in spec.cameras}
        self.total = 0

    def add_episode(self, ep_index: int, m: EpisodeMeta, frames_per_file: int) -> None:
        files = self.files
        if files.data is None:
            files.open()
        elif files.frames + m.length > frames_per_file and files.frames > 0:
            files.roll()
            files.open()
        arrays = self.store.arrays(m.episode_id)
        assert files.data is not None
        files.data.write_table(pa.table(self._frame_columns(ep_index, m, arrays), schema=files.schema))
        row = self._episode_row(ep_index, m)
        row.update(self._write_videos(arrays, m.length))
        for k in self.vec_keys:
            values = np.asarray(arrays[k])
            self.columns[k].append(values)
            row.update({f"stats/{k}/{s}": v for s, v in _stats(values).items()})
        self.rows.append(row)
        files.frames += m.length
        self.total += m.length

    def _frame_columns(self, ep_index: int, m: EpisodeMeta, arrays: Mapping[str, Any]) -> dict[str, Any]:
        n = m.length
        last = np.zeros(n, dtype=bool)
        last[-1] = True
        data: dict[str, Any] = {k: _vector_column(np.asarray(arrays[k])) for k in self.vec_keys}
        data.update(
            {
                "timestamp": pa.array(np.arange(n, dtype=np.float32) / self.spec.fps),
                "frame_index": pa.array(np.arange(n, dtype=np.int64)),
                "episode_index": pa.array(np.full(n, ep_index, dtype=np.int64)),
                "index": pa.array(np.arange(self.total, self.total + n, dtype=np.int64)),
                "task_index": pa.array(
                    np.full(n, self.tasks.setdefault(m.task, len(self.tasks)), dtype=np.int64)
                ),
                fmt.DONE_COLUMN: pa.array(last),
                fmt.SUCCESS_COLUMN: pa.array(last & bool(m.success)),
                fmt.INTERVENTION_COLUMN: pa.array(np.asarray(arrays[keys.IS_INTERVENTION])),
            }
        )
        if self.has_subtasks:
            data[fmt.SUBTASK_INDEX] = pa.array(self._subtask_column(m, arrays))
        return data

    def _subtask_column(self, m: EpisodeMeta, arrays: Mapping[str, Any]) -> np.ndarray:
        """The episode's sub-task ids in the dataset-wide sub-task table ("" for episodes without sub-tasks)."""
        subtasks = self.subtasks
        if "subtask_index" not in arrays:
            return np.full(m.length, subtasks.setdefault("", len(subtasks)), dtype=np.int64)
        local = [subtasks.setdefault(s, len(subtasks)) for s in self.store.subtask_vocab(m.episode_id)]
        return np.array(local, dtype=np.int64)[np.asarray(arrays["subtask_index"])]

    def _episode_row(self, ep_index: int, m: EpisodeMeta) -> dict[str, Any]:
        where = fmt.chunk_file(self.files.index)
        return {
            "episode_index": ep_index,
            "tasks": [m.task],
            "length": m.length,
            "data/chunk_index": where["chunk_index"],
            "data/file_index": where["file_index"],
            "dataset_from_index": self.total,
            "dataset_to_index": self.total + m.length,
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": 0,
            "success": m.success,
            "source": m.source,
            "policy_version": m.policy_version,
            "robot_id": m.robot_id,
            "recap_episode_id": m.episode_id,
            "recap_created": m.created,
            "recap_iteration": m.iteration,
            "recap_stage": m.stage,
            "recap_seed": m.seed,
        }

    def _write_videos(self, arrays: Mapping[str, Any], n: int) -> dict[str, Any]:
        """Append the episode's frames to every camera's video; returns the episode row's video columns."""
        where = fmt.chunk_file(self.files.index)
        from_ts = self.files.frames / self.spec.fps
        row: dict[str, Any] = {}
        for cam in self.spec.cameras:
            frames = arrays[cam.key]
            for start in range(0, n, 256):  # bounded memory for compressed frames
                # a keyframe at each episode start lets importers copy the episode's packets as they are
                self.files.videos[cam.key].write(
                    np.asarray(frames[start : start + 256]), keyframe_first=start == 0
                )
            row.update(
                {
                    f"videos/{cam.key}/chunk_index": where["chunk_index"],
                    f"videos/{cam.key}/file_index": where["file_index"],
                    f"videos/{cam.key}/from_timestamp": from_ts,
                    f"videos/{cam.key}/to_timestamp": from_ts + n / self.spec.fps,
                }
            )
            self.image_samples[cam.key].append(np.asarray(frames[:: max(1, n // 10)]))
        return row

    def write_meta(self) -> None:
        """meta/episodes, tasks, subtasks and stats (info.json is written by the caller)."""
        root, rows = self.root, self.rows
        episodes_path = root / fmt.EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes_path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(rows)
        # Columns that may be all-null need their type stated, or pyarrow infers ``null`` and readers lose it.
        for column, kind in (
            ("success", pa.bool_()),
            ("recap_iteration", pa.int64()),
            ("recap_stage", pa.string()),
            ("recap_seed", pa.int64()),
        ):
            table = table.set_column(
                table.schema.get_field_index(column), column, pa.array([r[column] for r in rows], kind)
            )
        pq.write_table(table, episodes_path)
        pq.write_table(
            fmt.string_index_table("task", "task_index", list(self.tasks)), root / "meta" / "tasks.parquet"
        )
        if self.has_subtasks:
            pq.write_table(
                fmt.string_index_table("subtask", fmt.SUBTASK_INDEX, list(self.subtasks)),
                root / "meta" / "subtasks.parquet",
            )
        stats = {k: _stats(np.concatenate(v)) for k, v in self.columns.items()}
        stats.update({k: _image_stats(np.concatenate(v)) for k, v in self.image_samples.items()})
        (root / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))


def _dim(spec: Any, key: str) -> int:
    return {keys.STATE: spec.state_dim, keys.ACTION: spec.action_dim, keys.ENV_STATE: spec.env_state_dim}[key]


def _info(
    spec: Any,
    settings: dict[str, Any],
    vec_keys: list[str],
    has_subtasks: bool,
    n_eps: int,
    n_frames: int,
    n_tasks: int,
    robot_type: str | None,
) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for cam in spec.cameras:
        features[cam.key] = {
            "dtype": "video",
            "shape": [cam.height, cam.width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": cam.height,
                "video.width": cam.width,
                "video.codec": settings["name"],
                "video.pix_fmt": settings["pix_fmt"],
                "video.is_depth_map": False,
                "video.fps": spec.fps,
                "video.channels": 3,
                "has_audio": False,
            },
        }
    for k in vec_keys:
        names = (
            list(spec.joint_names) if k != keys.ENV_STATE and len(spec.joint_names) == _dim(spec, k) else None
        )
        features[k] = {"dtype": "float32", "shape": [_dim(spec, k)], "names": names}
    for name, dtype in (
        ("timestamp", "float32"),
        ("frame_index", "int64"),
        ("episode_index", "int64"),
        ("index", "int64"),
        ("task_index", "int64"),
        (fmt.DONE_COLUMN, "bool"),
        (fmt.SUCCESS_COLUMN, "bool"),
        (fmt.INTERVENTION_COLUMN, "bool"),
    ):
        features[name] = {"dtype": dtype, "shape": [1], "names": None}
    if has_subtasks:
        features[fmt.SUBTASK_INDEX] = {"dtype": "int64", "shape": [1], "names": None}
    return {
        "codebase_version": fmt.CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": n_eps,
        "total_frames": n_frames,
        "total_tasks": n_tasks,
        "chunks_size": fmt.CHUNKS_SIZE,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500,
        "fps": spec.fps,
        "splits": {"train": f"0:{n_eps}"},
        "data_path": fmt.DATA_PATH,
        "video_path": fmt.VIDEO_PATH,
        "features": features,
    }

"""Import a LeRobot v3.0 dataset directory into an ``EpisodeStore`` (the inverse of lerobot_export.py).

A new store keeps video as video: by default (``image_codec=SAME_CODEC``) it stores frames in the dataset's
codec (``av1`` or ``h264``; ``lossless`` for RGB video), re-encoding each episode separately so any frame
decodes on its own; ``image_codec=None`` stores raw frames for the fastest training reads.

Success comes from the episode column ``success`` when present, else True when any frame has
``next.success``, else unlabelled (a missing success frame is not taken as a failure). Source defaults to
"demonstration". Episodes exported by recap keep their ids; importing them again skips those already in the
store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from recap.data import keys
from recap.data import lerobot_format as fmt
from recap.data.schema import SOURCES, EpisodeMeta
from recap.data.spec import CameraSpec, RobotSpec
from recap.data.store import STORE_FILE, EpisodeStore
from recap.data.video import VIDEO_CODECS, VideoReader, copy_episode_packets
from recap.errors import SchemaError, StoreError

#: ``import_lerobot(image_codec=SAME_CODEC)``: store frames in the dataset's own video codec
SAME_CODEC = "same"


def dataset_image_codec(info: dict[str, Any]) -> str:
    """The store codec closest to a dataset's videos: its lossy codec (av1, h264), lossless for RGB video or odd
    frame sizes, av1 otherwise."""
    videos = [ft for ft in info.get("features", {}).values() if ft.get("dtype") == "video"]
    details = [ft.get("info") or {} for ft in videos]
    if any(d.get("video.pix_fmt") == "rgb24" for d in details) or any(
        n % 2 for ft in videos for n in ft["shape"][:2]
    ):
        return "lossless"
    names = {d.get("video.codec") for d in details}
    return names.pop() if len(names) == 1 and names <= {"av1", "h264"} else "av1"


def _names(ft: dict[str, Any]) -> tuple[str, ...]:
    names = ft.get("names")
    if isinstance(names, dict):  # some datasets nest names, e.g. {"motors": [...]}
        names = next(iter(names.values()), None)
    return tuple(names) if isinstance(names, list) and all(isinstance(n, str) for n in names) else ()


def spec_from_info(info: dict[str, Any], where: Path) -> RobotSpec:
    """The RobotSpec a LeRobot dataset describes in its ``features``."""
    feats = info.get("features", {})
    cameras = []
    for key, ft in feats.items():
        if ft.get("dtype") == "image":
            raise SchemaError(
                f"{where}: feature {key!r} stores images in parquet (dtype 'image'); only video features are "
                "supported; convert the dataset to videos with LeRobot first"
            )
        if ft.get("dtype") == "video":
            names = ft.get("names") or ["height", "width", "channels"]
            if names[0] in ("channels", "channel"):  # channel-first, as in some ported datasets
                c, h, w = ft["shape"]
            else:
                h, w, c = ft["shape"]
            if c != 3:
                raise SchemaError(
                    f"{where}: feature {key!r}: expected 3-channel video, found shape {ft['shape']}"
                )
            cameras.append(CameraSpec(fmt.camera_from_key(key), int(h), int(w)))
    for key in (keys.STATE, keys.ACTION):
        if key not in feats or len(feats[key]["shape"]) != 1:
            raise SchemaError(
                f"{where}: expected a 1-D feature {key!r} in meta/info.json, found {feats.get(key)}"
            )
    state_dim, action_dim = int(feats[keys.STATE]["shape"][0]), int(feats[keys.ACTION]["shape"][0])
    env = feats.get(keys.ENV_STATE)
    names = _names(feats[keys.STATE])
    return RobotSpec(
        cameras=tuple(cameras),
        state_dim=state_dim,
        action_dim=action_dim,
        fps=int(round(info["fps"])),
        env_state_dim=int(env["shape"][0]) if env else 0,
        joint_names=names if len(names) == state_dim else (),
    )


def _vectors(column: pa.ChunkedArray, dim: int) -> np.ndarray:
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    return flat.astype(np.float32).reshape(-1, dim)


class _DataFiles:
    """Caches the current data parquet file (episodes of one file are read together)."""

    def __init__(self, root: Path, template: str) -> None:
        self.root, self.template, self.path, self.table = root, template, None, None

    def rows(self, chunk: int, file: int, episode_index: int) -> pa.Table:
        path = self.root / self.template.format(chunk_index=chunk, file_index=file)
        if path != self.path:
            try:
                self.table, self.path = pq.read_table(path), path
            except (OSError, pa.ArrowInvalid) as exc:
                raise StoreError(f"data file {path} is unreadable ({exc})") from exc
        assert self.table is not None
        rows = self.table.filter(pc.equal(self.table["episode_index"], episode_index))
        return rows.sort_by("frame_index")


def import_lerobot(
    path: str | Path, store_path: str | Path, *, image_codec: str | None = SAME_CODEC, progress: bool = True
) -> list[EpisodeMeta]:
    """Add every episode of the LeRobot v3 dataset at ``path`` to the store at ``store_path`` (created with the
    dataset's spec and ``image_codec`` when it does not exist); returns the metadata of the episodes added."""
    root = Path(path)
    try:
        info = json.loads((root / "meta" / "info.json").read_text())
    except FileNotFoundError as exc:
        raise StoreError(f"{root} is not a LeRobot dataset: meta/info.json is missing") from exc
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise SchemaError(
            f"{root}: codebase_version {version!r}; this importer reads LeRobot v3.x datasets (convert older ones "
            "with LeRobot's v2.1 -> v3.0 converter)"
        )
    spec = spec_from_info(info, root)
    store_root = Path(store_path)
    if (store_root / STORE_FILE).exists():
        store = EpisodeStore.open(store_root)
        if store.spec.cameras != spec.cameras or (store.spec.state_dim, store.spec.action_dim) != (
            spec.state_dim,
            spec.action_dim,
        ):
            raise SchemaError(f"dataset {root} has spec {spec}, the store {store_root} has {store.spec}")
    else:
        if image_codec == SAME_CODEC:
            image_codec = dataset_image_codec(info)
        elif image_codec not in (None, "zlib", *VIDEO_CODECS):
            raise SchemaError(
                f"image_codec {image_codec!r}: use {SAME_CODEC!r}, None, 'zlib' or {list(VIDEO_CODECS)}"
            )
        store = EpisodeStore.create(store_root, spec, image_codec=image_codec)
    tasks = fmt.read_string_index(pq.read_table(root / "meta" / "tasks.parquet"), "task", "task_index")
    sub_path = root / "meta" / "subtasks.parquet"
    subtasks = (
        fmt.read_string_index(pq.read_table(sub_path), "subtask", fmt.SUBTASK_INDEX)
        if sub_path.exists()
        else {}
    )
    episode_files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not episode_files:
        raise StoreError(f"{root}: no meta/episodes/chunk-*/file-*.parquet files")
    episodes = pa.concat_tables([pq.read_table(p) for p in episode_files], promote_options="default")
    episodes = episodes.sort_by("episode_index").to_pylist()
    known = {m.episode_id for m in store.episodes()}
    # same codec: copy each episode's packets when they stand alone (no decode, no generation loss)
    copy_packets = store.image_codec == dataset_image_codec(info)
    data = _DataFiles(root, info.get("data_path", fmt.DATA_PATH))
    readers = {cam.name: VideoReader(spec.fps) for cam in spec.cameras}
    added = []
    try:
        for ep in tqdm(episodes, desc="import episodes", unit="ep", disable=not progress):
            if ep.get("recap_episode_id") in known:
                continue
            added.append(
                _import_episode(root, info, spec, store, ep, data, readers, tasks, subtasks, copy_packets)
            )
    finally:
        for reader in readers.values():
            reader.close()
    return added


def _import_episode(
    root: Path,
    info: dict[str, Any],
    spec: RobotSpec,
    store: EpisodeStore,
    ep: dict[str, Any],
    data: _DataFiles,
    readers: dict[str, VideoReader],
    tasks: dict[int, str],
    subtasks: dict[int, str],
    copy_packets: bool,
) -> EpisodeMeta:
    rows = data.rows(ep["data/chunk_index"], ep["data/file_index"], ep["episode_index"])
    n = rows.num_rows
    if n != ep["length"]:
        raise StoreError(f"{root}: episode {ep['episode_index']} has length {ep['length']} but {n} data rows")
    steps: dict[str, np.ndarray] = {
        keys.STATE: _vectors(rows[keys.STATE], spec.state_dim),
        keys.ACTION: _vectors(rows[keys.ACTION], spec.action_dim),
    }
    if spec.env_state_dim:
        steps[keys.ENV_STATE] = _vectors(rows[keys.ENV_STATE], spec.env_state_dim)
    column = next((c for c in fmt.INTERVENTION_ALIASES if c in rows.column_names), None)
    steps[keys.IS_INTERVENTION] = (
        rows[column].to_numpy(zero_copy_only=False).astype(bool) if column else np.zeros(n, dtype=bool)
    )
    for cam in spec.cameras:
        video = root / info["video_path"].format(
            video_key=cam.key,
            chunk_index=ep[f"videos/{cam.key}/chunk_index"],
            file_index=ep[f"videos/{cam.key}/file_index"],
        )
        from_ts = float(ep[f"videos/{cam.key}/from_timestamp"])
        copied = copy_episode_packets(video, round(from_ts * spec.fps), n, spec.fps) if copy_packets else None
        steps[cam.key] = copied if copied is not None else readers[cam.name].take(video, from_ts, n)
    task_index = rows["task_index"][0].as_py()
    task = tasks.get(task_index) or (ep.get("tasks") or [""])[0]
    success = ep.get("success")
    if success is None and fmt.SUCCESS_COLUMN in rows.column_names:
        success = True if pc.any(rows[fmt.SUCCESS_COLUMN]).as_py() else None
    source = ep.get("source") if ep.get("source") in SOURCES else "demonstration"
    subtask_list = None
    if fmt.SUBTASK_INDEX in rows.column_names and subtasks:
        subtask_list = [subtasks.get(i, "") for i in rows[fmt.SUBTASK_INDEX].to_pylist()]
    return store.add(
        steps,
        task=task,
        source=source,
        success=success,
        policy_version=ep.get("policy_version") or "",
        robot_id=ep.get("robot_id") or "",
        subtasks=subtask_list,
        episode_id=ep.get("recap_episode_id"),
        created=ep.get("recap_created"),
        iteration=ep.get("recap_iteration"),
        stage=ep.get("recap_stage"),
        seed=ep.get("recap_seed"),
    )

"""``recap data info|label-success|transcode|import-lerobot|export-lerobot``: look after an episode store."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Annotated, Literal

import tyro

from recap.data.labels import success_name as _success_name
from recap.data.store import EpisodeStore
from recap.errors import LabelError

_Store = Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="STORE")]
_Path = Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="PATH")]
_Out = Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="OUT")]
ImageCodec = Literal["none", "zlib", "av1", "h264", "lossless"]


def _codec(name: str) -> str | None:
    return None if name == "none" else name


def info(
    store: _Store,
    json_output: Annotated[bool, tyro.conf.arg(name="json")] = False,
    list_episodes: Annotated[bool, tyro.conf.arg(name="list")] = False,
    history: bool = False,
) -> int:
    """Counts by task, source and success; total hours; disk use; unreadable episodes; label sets.

    Args:
        store: the store directory.
        json_output: print JSON for machines instead of text.
        list_episodes: also list every episode (id, task, source, success, steps).
        history: also list every success-label change in the store (time, episode, label, reviewer, note).
    """
    s = EpisodeStore.open(store)
    eps = s.episodes()
    by_task: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for m in eps:
        by_task[m.task][f"source:{m.source}"] += 1
        by_task[m.task][_success_name(m.success)] += 1
        by_task[m.task]["episodes"] += 1
        by_task[m.task]["steps"] += m.length
    hours = sum(m.duration_s for m in eps) / 3600
    label_history = s.label_history()
    report = {
        "store": str(store),
        "cameras": [f"{c.name} {c.height}x{c.width}" for c in s.spec.cameras],
        "image_codec": s.image_codec,
        "episodes": len(eps),
        "steps": sum(m.length for m in eps),
        "hours": hours,
        "disk_bytes": s.disk_usage(),
        "by_source": dict(collections.Counter(m.source for m in eps)),
        "by_success": dict(collections.Counter(_success_name(m.success) for m in eps)),
        "by_task": {t: dict(c) for t, c in sorted(by_task.items())},
        "label_sets": s.label_sets(),
        "label_changes_by_reviewer": dict(collections.Counter(e["by"] or "unknown" for e in label_history)),
        "problems": s.problems(),
    }
    if list_episodes:
        report["episode_list"] = [
            {
                "episode_id": m.episode_id,
                "task": m.task,
                "source": m.source,
                "success": _success_name(m.success),
                "length": m.length,
            }
            for m in eps
        ]
    if history:
        report["label_history"] = label_history
    if json_output:
        print(json.dumps(report, indent=2))
        return 0
    print(f"store       {report['store']}  ({', '.join(report['cameras'])}; image codec {s.image_codec})")
    print(f"episodes    {len(eps)}  ({report['steps']} steps, {hours:.3f} h at {s.spec.fps} Hz)")
    print(f"disk        {report['disk_bytes'] / 2**20:.1f} MiB")
    print(f"sources     {report['by_source']}")
    print(f"success     {report['by_success']}")
    for task, counts in report["by_task"].items():
        rest = {k: v for k, v in counts.items() if k not in ("episodes", "steps")}
        print(f"task        {task!r}: {counts['episodes']} episodes, {counts['steps']} steps, {rest}")
    print(f"label sets  {report['label_sets'] or 'none'}")
    print(f"relabels    {len(label_history)} by reviewer {report['label_changes_by_reviewer']}")
    for e in report.get("label_history", []):
        where = f" at {e['failure_time']:.2f}s" if e.get("failure_time") is not None else ""
        print(
            f"label       {e['time']}  {e['episode_id']}  {_success_name(e['success'])}{where}  "
            f"{e['by'] or 'unknown'}  {e['note']}"
        )
    for row in report.get("episode_list", []):
        print(
            f"episode     {row['episode_id']}  {row['task']!r}  {row['source']}  {row['success']}  {row['length']}"
        )
    for eid, why in report["problems"].items():
        print(f"PROBLEM     {eid}: {why}")
    return 1 if report["problems"] else 0


def label_success(
    store: _Store,
    episode_id: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="EPISODE_ID")],
    success: bool = False,
    failure: bool = False,
    clear: bool = False,
    by: str = "",
    note: str = "",
) -> int:
    """Label an episode a success or a failure (or clear its label); the history is kept.

    Args:
        store: the store directory.
        episode_id: the episode (see `recap data info STORE --list`).
        success: label it a success.
        failure: label it a failure.
        clear: remove its label (back to unlabelled).
        by: who labels (operator name), kept in the history.
        note: free text kept in the history.
    """
    if success + failure + clear != 1:
        raise LabelError("give exactly one of --success, --failure or --clear")
    s = EpisodeStore.open(store)
    value = True if success else False if failure else None
    s.set_success(episode_id, value, by=by, note=note)
    for event in s.success_history(episode_id):
        print(f"{event['time']}  {_success_name(event['success']):<10}  {event['by']}  {event['note']}")
    return 0


def transcode_cmd(
    store: _Store,
    out: _Out,
    image_codec: ImageCodec,
    keyframe_interval: int = 2,
    progress: bool = True,
) -> int:
    """Copy STORE into a new store OUT with another image codec, labels and metadata included, checking every
    frame of the copy against the source (equal, or within the lossy codec's PSNR tolerance).

    Args:
        store: the source store.
        out: a new (or empty) directory for the copy.
        image_codec: none (raw, fastest training reads), zlib (lossless), av1 / h264 (lossy video, ~200x smaller
            than raw), lossless (bit-exact video).
        keyframe_interval: frames between keyframes of the video codecs (short = fast random access).
        progress: show a progress bar.
    """
    from recap.data.transcode import transcode

    report = transcode(
        EpisodeStore.open(store),
        out,
        image_codec=_codec(image_codec),
        keyframe_interval=keyframe_interval,
        progress=progress,
    )
    ratio = report.source_bytes / max(report.output_bytes, 1)
    print(
        f"copied {report.episodes} episodes ({report.steps} steps) and {len(report.label_sets)} label sets "
        f"to {out} ({image_codec}): {report.source_bytes / 2**20:.1f} MiB -> {report.output_bytes / 2**20:.1f} "
        f"MiB ({ratio:.1f}x smaller)"
    )
    print(
        f"verified frame by frame: worst camera {report.worst_psnr:.1f} dB, worst frame "
        f"{report.worst_frame_psnr:.1f} dB (inf = equal)"
    )
    return 0


def import_lerobot_cmd(
    path: _Path,
    store: _Store,
    image_codec: Literal["same", "none", "zlib", "av1", "h264", "lossless"] = "same",
    progress: bool = True,
) -> int:
    """Import a LeRobot v3 dataset directory into STORE (created with the dataset's spec if missing).

    Args:
        path: the LeRobot dataset root (holding meta/info.json).
        store: the episode store directory.
        image_codec: frame storage for a new store: same (video stays video, in the dataset's codec), none (raw,
            fastest reads), zlib, av1, h264 or lossless.
        progress: show a progress bar.
    """
    from recap.data.lerobot_import import SAME_CODEC, import_lerobot

    codec = SAME_CODEC if image_codec == "same" else _codec(image_codec)
    added = import_lerobot(path, store, image_codec=codec, progress=progress)
    print(f"imported {len(added)} episodes ({sum(m.length for m in added)} steps) into {store}")
    return 0


def export_lerobot_cmd(
    store: _Store,
    path: _Path,
    codec: Literal["av1", "h264", "lossless"] = "av1",
    task: str | None = None,
    source: str | None = None,
    frames_per_file: int = 20_000,
    progress: bool = True,
) -> int:
    """Export STORE (or the episodes of one task/source) as a LeRobot v3 dataset at PATH.

    Args:
        store: the episode store directory.
        path: a new directory for the dataset.
        codec: video codec: av1 (LeRobot's default, lossy), h264 (lossy) or lossless (libx264rgb, bit-exact).
        task: export only this task's episodes.
        source: export only episodes of this source (demonstration, autonomous, correction).
        frames_per_file: start new data/video files after this many frames.
        progress: show a progress bar.
    """
    from recap.data.lerobot_export import export_lerobot

    s = EpisodeStore.open(store)
    eps = s.episodes(task=task, source=source)
    info_ = export_lerobot(
        s, path, codec=codec, episodes=eps, frames_per_file=frames_per_file, progress=progress
    )
    print(f"exported {info_['total_episodes']} episodes ({info_['total_frames']} frames) to {path}")
    return 0

"""Copy an ``EpisodeStore`` into a new store with another image codec, checking every frame.

Raw -> video archives a store (~200x smaller); video -> raw gives the fastest local training copy. Episodes keep
their ids, every recorded field and their success-label history; label sets are copied. After each episode is
written, its frames are read back from the new store and compared with the source's, frame by frame: equal for
raw, zlib and ``lossless``, within the codec's ``min_psnr`` (per camera of an episode) and ``min_frame_psnr``
(per frame) for the lossy video codecs; every other array must be equal.
"""

from __future__ import annotations

import math
from pathlib import Path

import attrs
import numpy as np
from tqdm import tqdm

from recap.data import keys
from recap.data.store import EpisodeStore
from recap.data.video import DEFAULT_KEYFRAME_INTERVAL, VIDEO_CODECS, psnr
from recap.errors import StoreError


@attrs.frozen
class TranscodeReport:
    """What ``transcode`` copied and how close the copy is (PSNR in dB; inf where frames are equal)."""

    episodes: int
    steps: int
    label_sets: list[str]
    source_bytes: int
    output_bytes: int
    worst_psnr: float
    worst_frame_psnr: float


def _tolerance(image_codec: str | None) -> tuple[float, float]:
    """(min PSNR per camera of an episode, min PSNR per frame) the copy must reach; inf means equal."""
    settings = VIDEO_CODECS.get(image_codec or "", {})
    if settings.get("min_psnr") is None:
        return math.inf, math.inf
    return settings["min_psnr"], settings["min_frame_psnr"]


def verify_copy(source: EpisodeStore, copy: EpisodeStore, episode_id: str) -> tuple[float, float]:
    """Compare one episode of ``copy`` with ``source``; returns (worst camera PSNR, worst frame PSNR) or raises
    ``StoreError`` naming the episode, the array and the frame that differ beyond ``copy``'s codec tolerance."""
    min_psnr, min_frame_psnr = _tolerance(copy.image_codec)
    if copy.meta(episode_id) != source.meta(episode_id):
        raise StoreError(f"episode {episode_id}: its metadata changed in the copy")
    theirs, ours = source.arrays(episode_id), copy.arrays(episode_id)
    if sorted(theirs) != sorted(ours):
        raise StoreError(
            f"episode {episode_id}: arrays {sorted(ours)} in the copy, {sorted(theirs)} in the source"
        )
    worst, worst_frame = math.inf, math.inf
    for key in theirs:
        a, b = np.asarray(theirs[key]), np.asarray(ours[key])
        if not key.startswith(keys.IMAGE_PREFIX) or math.isinf(min_psnr):
            if a.shape != b.shape or not np.array_equal(a, b):
                raise StoreError(f"episode {episode_id}: array {key!r} differs in the copy")
            continue
        frames = [psnr(x, y) for x, y in zip(a, b, strict=True)]
        camera, frame = psnr(a, b), int(np.argmin(frames))
        if camera < min_psnr or frames[frame] < min_frame_psnr:
            raise StoreError(
                f"episode {episode_id}: {key!r} copied at {camera:.1f} dB (frame {frame}: {frames[frame]:.1f} dB); "
                f"{copy.image_codec} must reach {min_psnr} dB per camera and {min_frame_psnr} dB per frame"
            )
        worst, worst_frame = min(worst, camera), min(worst_frame, frames[frame])
    return worst, worst_frame


def transcode(
    source: EpisodeStore,
    out: str | Path,
    *,
    image_codec: str | None,
    keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL,
    progress: bool = False,
) -> TranscodeReport:
    """Copy every readable episode and label set of ``source`` into a new store at ``out`` (a new or empty
    directory) with ``image_codec``, verifying each episode as it is written (see the module docstring)."""
    problems = source.problems()
    if problems:
        eid, why = next(iter(problems.items()))
        raise StoreError(
            f"store {source.root} has {len(problems)} unreadable episode(s), e.g. {eid}: {why}; transcoding would "
            "drop them: inspect with `recap data info`, move them aside, then transcode"
        )
    copy = EpisodeStore.create(out, source.spec, image_codec=image_codec, keyframe_interval=keyframe_interval)
    metas = source.episodes()
    worst, worst_frame = math.inf, math.inf
    for m in tqdm(metas, desc=f"transcode to {image_codec or 'raw'}", unit="ep", disable=not progress):
        copy.copy_episode(source, m.episode_id)
        camera, frame = verify_copy(source, copy, m.episode_id)
        worst, worst_frame = min(worst, camera), min(worst_frame, frame)
    names = source.label_sets()
    for name in names:
        copy.copy_label_set(source, name)
    return TranscodeReport(
        episodes=len(metas),
        steps=sum(m.length for m in metas),
        label_sets=names,
        source_bytes=source.disk_usage(),
        output_bytes=copy.disk_usage(),
        worst_psnr=worst,
        worst_frame_psnr=worst_frame,
    )

"""The episode's cameras as one browser-playable video, encoded on first view into the store's cache.

Cameras are tiled side by side into one VP9 WebM, so a single ``<video>`` element shows them all in sync
and one ``currentTime`` maps to one step. VP9 in WebM plays in Debian's Chromium (as do AV1 and H.264; VP9
encodes fast enough in libvpx's realtime mode and carries no licensing caveats). Frame ``i`` has pts ``i``
in time base ``1/fps``, so the step shown at time ``t`` is ``floor(t * fps)``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import av
import numpy as np

from recap.data import keys
from recap.data.store import EpisodeStore
from recap.errors import StoreError

MEDIA_TYPE = "video/webm"
_SUFFIX = ".webm"
_CHUNK = 64  # frames read per camera at a time, so a long episode never sits in memory whole
_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "24", "b": "0"}


class NoVideo(StoreError):
    """The store records no cameras, so its episodes have no video."""


def _even(n: int) -> int:
    return n + (n % 2)  # yuv420p needs even sizes


class VideoCache:
    """Encodes each episode's video once (per process, one encode at a time per episode)."""

    def __init__(self, store: EpisodeStore) -> None:
        self.store = store
        self.directory = store.root / "cache" / "review" / "video"
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, episode_id: str) -> Path:
        return self.directory / f"{episode_id}{_SUFFIX}"

    def get(self, episode_id: str) -> Path:
        """The episode's video file, encoding it first if it is not cached yet."""
        if not self.store.spec.cameras:
            raise NoVideo(f"store {self.store.root} records no cameras, so its episodes have no video")
        path = self.path(episode_id)
        if path.is_file():
            return path
        with self._guard:
            lock = self._locks.setdefault(episode_id, threading.Lock())
        with lock:
            if not path.is_file():
                self._encode(episode_id, path)
        return path

    def _encode(self, episode_id: str, path: Path) -> None:
        spec = self.store.spec
        arrays = self.store.arrays(episode_id)
        cams = [arrays[keys.IMAGE_PREFIX + c.name] for c in spec.cameras]
        height = _even(max(c.height for c in spec.cameras))
        width = _even(sum(c.width for c in spec.cameras))
        self.directory.mkdir(parents=True, exist_ok=True)
        # a temporary name per writer, renamed into place: readers never see half a file, and two servers
        # encoding the same episode at once both end with a whole one
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}{_SUFFIX}")
        try:
            with av.open(str(tmp), "w", format="webm") as container:
                stream = container.add_stream("libvpx-vp9", rate=spec.fps)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = {**_OPTIONS, "g": str(spec.fps)}  # a keyframe a second: quick seeks
                length = len(cams[0])
                for start in range(0, length, _CHUNK):
                    tiles = _tile([np.asarray(c[start : start + _CHUNK]) for c in cams], height, width)
                    for i, frame in enumerate(tiles):
                        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
                        vf.pts = start + i
                        container.mux(stream.encode(vf))
                container.mux(stream.encode())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _tile(chunks: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Place each camera's frames ``[n, h, w, 3]`` left to right on a black ``[n, height, width, 3]`` canvas."""
    out = np.zeros((len(chunks[0]), height, width, 3), dtype=np.uint8)
    x = 0
    for frames in chunks:
        _, h, w, _ = frames.shape
        out[:, :h, x : x + w] = frames
        x += w
    return out

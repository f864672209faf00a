"""MP4 video files written and read with PyAV, for LeRobot v3 interop.

Codecs (``VIDEO_CODECS``):

* ``"av1"`` (default, LeRobot's default): libsvtav1, yuv420p, crf 30, a keyframe every 2 frames. Lossy.
* ``"h264"``: libx264, yuv420p, crf 23, keyframe every 2 frames. Lossy, decodable everywhere.
* ``"lossless"``: libx264rgb, rgb24, qp 0: decoded frames equal the stored frames bit for bit (about 3-6x
  larger than ``"av1"``).

Frame ``i`` of a file has pts ``i`` in time base ``1/fps``, so timestamp ``i / fps``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from recap.errors import SchemaError, StoreError

VIDEO_CODECS: dict[str, dict[str, Any]] = {
    "av1": {"codec": "libsvtav1", "pix_fmt": "yuv420p", "options": {"crf": "30", "g": "2"}, "name": "av1"},
    "h264": {"codec": "libx264", "pix_fmt": "yuv420p", "options": {"crf": "23", "g": "2"}, "name": "h264"},
    "lossless": {"codec": "libx264rgb", "pix_fmt": "rgb24", "options": {"qp": "0", "g": "2"}, "name": "h264"},
}

logging.getLogger("libav").setLevel(logging.ERROR)
os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its config banner to stderr unless told errors only


def codec_settings(name: str) -> dict[str, Any]:
    if name not in VIDEO_CODECS:
        raise SchemaError(f"video codec {name!r} is unknown; choose one of {sorted(VIDEO_CODECS)}")
    return VIDEO_CODECS[name]


class VideoWriter:
    """Appends RGB frames ``[n, H, W, 3]`` to one MP4 file."""

    def __init__(self, path: Path, height: int, width: int, fps: int, codec: str) -> None:
        settings = codec_settings(codec)
        if settings["pix_fmt"] == "yuv420p" and (height % 2 or width % 2):
            raise SchemaError(
                f"video codec {codec!r} needs even frame sizes, found {height}x{width}; use codec 'lossless'"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream(settings["codec"], rate=fps)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = settings["pix_fmt"]
        self.stream.options = dict(settings["options"])
        self.frames = 0

    def write(self, frames: np.ndarray) -> None:
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = self.frames
            self.frames += 1
            for packet in self.stream.encode(vf):
                self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


class VideoReader:
    """Reads frames by timestamp from a sequence of MP4 files, decoding each file once, front to back.

    ``take(path, from_ts, n)`` returns ``n`` frames starting at ``from_ts``; calls must move forward
    through a file (as the episodes of a LeRobot v3 file do), a new path reopens.
    """

    def __init__(self, fps: int) -> None:
        self.fps = fps
        self.path: Path | None = None
        self._frames: Iterator[tuple[int, np.ndarray]] | None = None
        self._container: Any = None
        self._next = 0

    def _open(self, path: Path) -> None:
        self.close()
        try:
            self._container = av.open(str(path))
        except (av.error.FFmpegError, FileNotFoundError) as exc:
            raise StoreError(f"video file {path} cannot be opened ({exc})") from exc
        self.path, self._next = path, 0
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"

        def gen() -> Iterator[tuple[int, np.ndarray]]:
            for frame in self._container.decode(stream):
                yield round(float(frame.time) * self.fps), frame.to_ndarray(format="rgb24")

        self._frames = gen()

    def take(self, path: Path, from_ts: float, n: int) -> np.ndarray:
        first = round(from_ts * self.fps)
        if path != self.path or first < self._next:
            self._open(path)
        assert self._frames is not None
        out: list[np.ndarray] = []
        try:
            for index, frame in self._frames:
                if index < first:
                    continue
                out.append(frame)
                self._next = index + 1
                if len(out) == n:
                    break
        except av.error.FFmpegError as exc:
            raise StoreError(f"video file {path}: decoding failed near {from_ts:.3f}s ({exc})") from exc
        if len(out) < n:
            raise StoreError(
                f"video file {path}: expected {n} frames from {from_ts:.3f}s, found {len(out)} (truncated video?)"
            )
        return np.stack(out)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._frames, self.path = None, None, None

"""Video with PyAV: MP4 files for LeRobot v3 interop, and in-memory MP4s for the episode store.

Codecs (``VIDEO_CODECS``; every one writes a keyframe every ``keyframe_interval`` frames, default 2 as
LeRobot does, so any frame decodes after at most one other):

* ``"av1"``: libsvtav1, yuv420p, crf 30, preset 10 (LeRobot's codec and crf; preset 10 instead of the default
  so three 480x640 cameras encode faster than 50 Hz on two cores). Lossy. Decoded by libdav1d.
* ``"h264"``: libx264, yuv420p, crf 23, preset veryfast, no B-frames. Lossy, decodable everywhere.
* ``"lossless"``: libx264rgb, rgb24, qp 0: decoded frames equal the stored frames bit for bit (about 3-10x
  larger than ``"av1"``).

``min_psnr`` / ``min_frame_psnr`` are the tolerances ``recap data transcode`` checks (per camera of an
episode / per frame); rendered sim frames pass them at 48x64 and reach about 42 dB at 480x640.
The lossy codecs need even frame sizes (yuv420p halves the chroma planes). Frame ``i`` of a file has timestamp
``i / fps``. libaom-av1 is not in PyAV's wheel; libsvtav1 (encode) and libdav1d (decode) are.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import av
import numpy as np

from recap.errors import SchemaError, StoreError

VIDEO_CODECS: dict[str, dict[str, Any]] = {
    "av1": {
        "codec": "libsvtav1",
        "pix_fmt": "yuv420p",
        "options": {"crf": "30", "preset": "10"},
        "name": "av1",
        "min_psnr": 30.0,
        "min_frame_psnr": 25.0,
    },
    "h264": {
        "codec": "libx264",
        "pix_fmt": "yuv420p",
        "options": {"crf": "23", "preset": "veryfast", "bf": "0"},
        "name": "h264",
        "min_psnr": 30.0,
        "min_frame_psnr": 25.0,
    },
    "lossless": {
        "codec": "libx264rgb",
        "pix_fmt": "rgb24",
        "options": {"qp": "0", "preset": "veryfast", "bf": "0"},
        "name": "h264",
        "min_psnr": None,  # exact
        "min_frame_psnr": None,
    },
}
DEFAULT_KEYFRAME_INTERVAL = 2

logging.getLogger("libav").setLevel(logging.ERROR)
os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its config banner to stderr unless told errors only


def codec_settings(name: str) -> dict[str, Any]:
    if name not in VIDEO_CODECS:
        raise SchemaError(f"video codec {name!r} is unknown; choose one of {sorted(VIDEO_CODECS)}")
    return VIDEO_CODECS[name]


def check_keyframe_interval(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 300:
        raise SchemaError(
            f"keyframe_interval: expected an integer from 1 (every frame a keyframe) to 300, found {value!r}; "
            "short intervals make random access fast, 2 is LeRobot's choice"
        )
    return value


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of uint8 images (inf when equal)."""
    mse = float(np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


class VideoWriter:
    """Appends RGB frames ``[n, H, W, 3]`` to one MP4 (a file, or a seekable binary buffer)."""

    def __init__(
        self,
        target: Path | BinaryIO,
        height: int,
        width: int,
        fps: int,
        codec: str,
        keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL,
    ) -> None:
        settings = codec_settings(codec)
        if settings["pix_fmt"] == "yuv420p" and (height % 2 or width % 2):
            raise SchemaError(
                f"video codec {codec!r} needs even frame sizes, found {height}x{width}; use codec 'lossless'"
            )
        if isinstance(target, Path):
            target.parent.mkdir(parents=True, exist_ok=True)
            self.container = av.open(str(target), "w")
        else:
            self.container = av.open(target, "w", format="mp4")
        self.stream = self.container.add_stream(settings["codec"], rate=fps)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = settings["pix_fmt"]
        self.stream.options = {**settings["options"], "g": str(check_keyframe_interval(keyframe_interval))}
        self.frames = 0

    def write(self, frames: np.ndarray, *, keyframe_first: bool = False) -> None:
        """Append ``frames``; ``keyframe_first`` makes the first one a keyframe (an episode start, so the
        episode can later be copied out of the file without re-encoding)."""
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            # convert here, single-threaded: the encoder's own converter keeps a thread pool alive, which a
            # DataLoader worker forked later would deadlock on when it frees it
            vf = vf.reformat(format=self.stream.pix_fmt, threads=1)
            if keyframe_first and i == 0:
                vf.pict_type = av.video.frame.PictureType.I
            vf.pts = self.frames
            self.frames += 1
            for packet in self.stream.encode(vf):
                self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def encode_video(frames: np.ndarray, fps: int, codec: str, keyframe_interval: int) -> bytes:
    """Frames ``[T, H, W, 3]`` uint8 -> the bytes of an MP4 holding them (frame i at timestamp i / fps)."""
    buffer = io.BytesIO()
    writer = VideoWriter(buffer, frames.shape[1], frames.shape[2], fps, codec, keyframe_interval)
    writer.write(frames)
    writer.close()
    return buffer.getvalue()


@attrs.frozen
class EncodedVideo:
    """One camera of an episode already encoded: an MP4 of ``shape[0]`` frames, frame i at timestamp i / fps."""

    data: bytes
    shape: tuple[int, int, int, int]
    keyframe_interval: int


def copy_episode_packets(path: Path, first: int, n: int, fps: int) -> EncodedVideo | None:
    """Frames ``first .. first + n - 1`` of the video file ``path`` as their own MP4, packets copied (no decode,
    no generation loss), or None when they do not form a closed group that starts on a keyframe (episodes
    encoded back to back without a keyframe at each start); the caller then decodes and re-encodes."""
    try:
        with av.open(str(path)) as source:
            stream = source.streams.video[0]
            start = stream.start_time or 0
            ticks = 1 / (fps * float(stream.time_base))
            source.seek(int(round(start + first * ticks)), stream=stream, backward=True, any_frame=False)
            packets = _episode_packets(source.demux(stream), start, ticks, first, n)
            if packets is None:
                return None
            keyframes = [round((p.pts - start) / ticks) for p in packets if p.is_keyframe]
            interval = int(np.diff([*keyframes, first + n]).max())
            buffer = io.BytesIO()
            with av.open(buffer, "w", format="mp4") as out:
                copy = out.add_stream_from_template(stream, opaque=True)
                shift = int(round(first * ticks))
                for packet in packets:
                    packet.pts -= shift
                    if packet.dts is not None:
                        packet.dts -= shift
                    packet.stream = copy
                    out.mux(packet)
            shape = (n, stream.codec_context.height, stream.codec_context.width, 3)
    except av.error.FFmpegError as exc:
        raise StoreError(
            f"video file {path}: frames {first}..{first + n - 1} cannot be copied ({exc})"
        ) from exc
    return EncodedVideo(buffer.getvalue(), shape, max(interval, 1))


def _episode_packets(
    demuxed: Iterator[Any], start: int, ticks: float, first: int, n: int
) -> list[Any] | None:
    """The packets of frames [first, first + n) in decode order, if they start on a keyframe and no frame
    outside the range sits between them; stops at the first keyframe past the range."""
    packets: list[Any] = []
    past_end = False
    for packet in demuxed:
        if packet.pts is None:  # the demuxer's final empty packet
            continue
        index = round((packet.pts - start) / ticks)
        if index >= first + n:
            if packet.is_keyframe:
                break
            past_end = True  # a later frame decoded before one of ours would be a reference we lack
            continue
        if index < first and not packets:
            continue
        if index < first or past_end or (not packets and (index != first or not packet.is_keyframe)):
            return None
        packets.append(packet)
    indices = sorted(round((p.pts - start) / ticks) for p in packets)
    return packets if indices == list(range(first, first + n)) else None


class _Decoder:
    """One open decoder over an in-memory MP4; decodes forward and seeks back to a keyframe when that is cheaper."""

    def __init__(self, blob: Any, fps: int, keyframe_interval: int, where: str) -> None:
        self.where, self.keyframe_interval = where, keyframe_interval
        try:
            self.container = av.open(io.BytesIO(blob))
        except av.error.FFmpegError as exc:
            raise StoreError(f"{where}: the video does not open ({exc})") from exc
        self.stream = self.container.streams.video[0]
        # One thread: frame threads would delay output, and a decoder with threads that a forked DataLoader worker
        # inherits deadlocks when the worker frees it (its threads did not survive the fork).
        self.stream.thread_type = "NONE"
        self.stream.codec_context.thread_count = 1
        self.start = self.stream.start_time or 0
        self.ticks = 1 / (fps * float(self.stream.time_base))  # stream timestamp units per frame
        self._frames: Iterator[Any] | None = None
        self._next = 0  # index of the frame the iterator yields next

    def _seek(self, index: int) -> None:
        self.container.seek(
            int(round(self.start + index * self.ticks)), stream=self.stream, backward=True, any_frame=False
        )
        self._frames = self.container.decode(self.stream)
        self._next = -1  # unknown until the first frame comes out

    def read(self, wanted: np.ndarray, out: np.ndarray) -> None:
        """Decode the frames ``wanted`` (sorted, unique) into ``out[j]`` for ``wanted[j]``."""
        try:
            for j, index in enumerate(wanted):
                index = int(index)
                ahead = index - self._next
                if self._frames is None or self._next < 0 or ahead < 0 or ahead >= self.keyframe_interval:
                    self._seek(index)
                out[j] = self._decode_until(index)
        except av.error.FFmpegError as exc:
            raise StoreError(f"{self.where}: decoding failed ({exc})") from exc

    def _decode_until(self, index: int) -> np.ndarray:
        assert self._frames is not None
        for frame in self._frames:
            found = int(round((frame.pts - self.start) / self.ticks))
            self._next = found + 1
            if found == index:
                return frame.to_ndarray(format="rgb24", threads=1)
            if found > index:
                break
        self._frames = None
        raise StoreError(f"{self.where}: frame {index} is missing from the video (truncated or corrupt?)")

    def close(self) -> None:
        self.container.close()


class VideoFrames:
    """Random access by frame index to the frames ``[T, H, W, 3]`` of one in-memory MP4 (decoded on read).

    The decoder opens on first use and is never pickled, so each DataLoader worker (forked or spawned) opens
    its own; ``close`` releases it. Reading frames in ascending order within a call decodes each group of
    pictures once.
    """

    def __init__(
        self, blob: Any, shape: tuple[int, ...], fps: int, keyframe_interval: int, where: str
    ) -> None:
        self.blob, self.shape, self.fps, self.where = blob, tuple(shape), fps, where
        self.keyframe_interval = keyframe_interval
        self.dtype = np.dtype(np.uint8)
        self._decoder: _Decoder | None = None
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self.shape[0]

    def _open(self) -> _Decoder:
        if self._decoder is None or self._pid != os.getpid():  # a forked child never reuses the parent's
            self._decoder = _Decoder(self.blob, self.fps, self.keyframe_interval, self.where)
            self._pid = os.getpid()
        return self._decoder

    def __getitem__(self, index: Any) -> np.ndarray:
        idx = np.arange(self.shape[0])[index]
        scalar = np.ndim(idx) == 0
        idx = np.atleast_1d(idx)
        wanted, position = np.unique(idx, return_inverse=True)
        frames = np.empty((len(wanted), *self.shape[1:]), dtype=np.uint8)
        self._open().read(wanted, frames)
        out = frames[position.reshape(-1)]
        return out[0] if scalar else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def close(self) -> None:
        if self._decoder is not None and self._pid == os.getpid():
            self._decoder.close()
        self._decoder = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_decoder"] = None
        state["blob"] = bytes(self.blob)  # a memory map does not travel; its bytes do
        return state


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

"""Files of one episode directory: ``data.bin`` holding every array back to back (64-byte aligned, read as
numpy memory maps), camera frames raw, zlib-compressed per frame or as one in-memory MP4 per camera
(``recap.data.video``), and ``meta.json`` describing each array
(offset, shape, dtype, sha256) plus a content hash over the episode's fields and all arrays.

Write order inside a private temporary directory: ``data.bin``, fsynced; ``meta.json``, fsynced; the
directory, fsynced. The caller commits by renaming the directory into place, so a reader sees either the
whole episode or nothing. Packing the arrays into one file keeps a commit at four fsyncs, which is what
bounds write throughput on most disks.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recap.data import keys
from recap.data.spec import RobotSpec
from recap.data.video import DEFAULT_KEYFRAME_INTERVAL, VIDEO_CODECS, EncodedVideo, VideoFrames, encode_video
from recap.errors import StoreError

META_FILE = "meta.json"
DATA_FILE = "data.bin"
FORMAT_VERSION = 1
IMAGE_CODECS: tuple[str | None, ...] = (None, "zlib", *VIDEO_CODECS)
ZLIB_LEVEL = 1  # level 1 keeps writes fast; higher levels buy a few % at several times the CPU
_ALIGN = 64


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_schema(directory: Path, meta: Mapping[str, Any], spec: RobotSpec) -> None:
    """Refuse an episode whose arrays do not have the shapes the store's spec declares."""
    arrays, length = meta["arrays"], meta["length"]
    expected = {cam.key: [length, *cam.shape] for cam in spec.cameras}
    expected[keys.STATE] = [length, spec.state_dim]
    expected[keys.ACTION] = [length, spec.action_dim]
    for key, shape in expected.items():
        found = arrays.get(key, {}).get("shape")
        if found != shape:
            raise StoreError(
                f"episode {meta['episode_id']}: file {directory / DATA_FILE}: array {key!r} should have shape "
                f"{shape} as the store's spec declares, found {found} (an episode of another schema)"
            )


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _up_filter(frame: np.ndarray) -> np.ndarray:
    """PNG's "Up" filter: each row minus the row above (mod 256). Smooth images become runs of small
    numbers that zlib compresses far better than raw pixels; a ``cumsum`` down the rows (whole-row vector
    adds, so cheap) undoes it."""
    out = np.array(frame, dtype=np.uint8, copy=True)
    out[1:] -= frame[:-1]
    return out


def _compress_frames(frames: np.ndarray) -> tuple[bytes, np.ndarray]:
    blobs = [zlib.compress(_up_filter(f).data, ZLIB_LEVEL) for f in frames]
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    return b"".join(blobs), offsets


class _Packer:
    """Appends aligned byte regions to ``data.bin`` and describes each one."""

    def __init__(self, f: Any) -> None:
        self.f, self.pos = f, 0

    def put(self, data: bytes | memoryview) -> dict[str, Any]:
        pad = -self.pos % _ALIGN
        if pad:
            self.f.write(b"\0" * pad)
            self.pos += pad
        view = memoryview(data).cast("B")
        self.f.write(view)
        region = {"offset": self.pos, "bytes": len(view), "sha256": hashlib.sha256(view).hexdigest()}
        self.pos += len(view)
        return region


def _array_bytes(arr: np.ndarray) -> memoryview:
    return memoryview(np.ascontiguousarray(arr).reshape(-1)).cast("B")


def content_hash(arrays: Mapping[str, Mapping[str, Any]], fields: Mapping[str, Any]) -> str:
    """sha256 over the episode's fields and every array's sha256 (canonical JSON)."""
    hashes = {k: [v["sha256"], v.get("index", {}).get("sha256")] for k, v in sorted(arrays.items())}
    payload = {"fields": dict(fields), "arrays": hashes}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def write_episode_dir(
    directory: Path,
    arrays: Mapping[str, np.ndarray | EncodedVideo],
    fields: Mapping[str, Any],
    *,
    image_codec: str | None,
    subtask_vocab: list[str],
    keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL,
) -> dict[str, Any]:
    """Write ``arrays`` and ``meta.json`` into the (new, empty) ``directory``; return the meta dict.

    Video codecs encode each camera here, before anything is committed, so a writer killed mid-encode
    leaves only its temporary directory."""
    described: dict[str, dict[str, Any]] = {}
    with open(directory / DATA_FILE, "wb") as f:
        packer = _Packer(f)
        for key, arr in arrays.items():
            if isinstance(arr, EncodedVideo):  # already encoded elsewhere: stored as it is
                described[key] = {"shape": list(arr.shape), "dtype": np.dtype(np.uint8).str}
                described[key].update(
                    packer.put(arr.data), codec=image_codec, keyframe_interval=arr.keyframe_interval
                )
                continue
            info: dict[str, Any] = {"shape": list(arr.shape), "dtype": np.dtype(arr.dtype).str}
            if key.startswith(keys.IMAGE_PREFIX) and image_codec == "zlib":
                blob, offsets = _compress_frames(arr)
                info.update(packer.put(blob), codec="zlib", index=packer.put(_array_bytes(offsets)))
            elif key.startswith(keys.IMAGE_PREFIX) and image_codec in VIDEO_CODECS:
                video = encode_video(arr, fields["fps"], image_codec, keyframe_interval)
                info.update(packer.put(video), codec=image_codec, keyframe_interval=keyframe_interval)
            else:
                info.update(packer.put(_array_bytes(arr)))
            described[key] = info
        f.flush()
        os.fsync(f.fileno())
    meta = {
        "format": FORMAT_VERSION,
        **fields,
        "image_codec": image_codec,
        "subtask_vocab": subtask_vocab,
        "hashed_fields": sorted(fields),
        "data_bytes": packer.pos,
        "arrays": described,
        "content_hash": content_hash(described, fields),
    }
    with open(directory / META_FILE, "wb") as f:
        f.write(json.dumps(meta, indent=1).encode())
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(directory)
    return meta


def read_meta(directory: Path, episode_id: str) -> dict[str, Any]:
    path = directory / META_FILE
    try:
        meta = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise StoreError(f"episode {episode_id}: file {path} is missing") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"episode {episode_id}: file {path} is corrupt or truncated ({exc})") from exc
    need = ("format", "episode_id", "task", "length", "arrays", "data_bytes", "content_hash")
    if not isinstance(meta, dict) or any(k not in meta for k in need):
        raise StoreError(f"episode {episode_id}: file {path} lacks fields; expected {list(need)}")
    if meta["format"] != FORMAT_VERSION:
        raise StoreError(
            f"episode {episode_id}: file {path} has format {meta['format']}, this recap reads {FORMAT_VERSION}"
        )
    return meta


def check_size(directory: Path, meta: Mapping[str, Any]) -> None:
    """Cheap truncation check (one stat); ``verify_files`` re-hashes the contents."""
    path = directory / DATA_FILE
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise StoreError(f"episode {meta['episode_id']}: file {path} is missing") from exc
    if size != meta["data_bytes"]:
        raise StoreError(
            f"episode {meta['episode_id']}: file {path} has {size} bytes, meta.json recorded "
            f"{meta['data_bytes']} (truncated or corrupt)"
        )


class ZlibFrames:
    """Random access to zlib-compressed frames ``[T, H, W, 3]`` (decompressed on read)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray, shape: tuple[int, ...], where: str) -> None:
        self.blob, self.offsets, self.shape, self.where = blob, offsets, tuple(shape), where
        self.dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        idx = np.arange(self.shape[0])[index]
        scalar = np.ndim(idx) == 0
        idx = np.atleast_1d(idx)
        out = np.empty((len(idx), *self.shape[1:]), dtype=np.uint8)
        for j, i in enumerate(idx):
            raw = self.blob[self.offsets[i] : self.offsets[i + 1]]
            try:
                filtered = np.frombuffer(zlib.decompress(raw), np.uint8).reshape(self.shape[1:])
            except (zlib.error, ValueError) as exc:
                raise StoreError(f"{self.where}: frame {i} does not decompress ({exc})") from exc
            np.cumsum(filtered, axis=0, dtype=np.uint8, out=out[j])  # undo the Up filter (mod 256)
        return out[0] if scalar else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def _region(mm: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
    return mm[info["offset"] : info["offset"] + info["bytes"]]


Frames = np.ndarray | ZlibFrames | VideoFrames


def open_arrays(directory: Path, meta: Mapping[str, Any]) -> dict[str, Frames]:
    """Memory-map every array of an episode (read-only), checking the data file against ``meta``."""
    check_size(directory, meta)
    path = directory / DATA_FILE
    where = f"episode {meta['episode_id']}: file {path}"
    try:
        mm = np.memmap(path, dtype=np.uint8, mode="r")
    except (ValueError, OSError) as exc:
        raise StoreError(f"{where} cannot be memory-mapped ({exc})") from exc
    out: dict[str, Frames] = {}
    for key, info in meta["arrays"].items():
        try:
            if info.get("codec") == "zlib":
                offsets = _region(mm, info["index"]).view(np.int64)
                if len(offsets) != info["shape"][0] + 1 or offsets[-1] != info["bytes"]:
                    raise ValueError("the frame index does not match the frame data")
                out[key] = ZlibFrames(
                    _region(mm, info), offsets, tuple(info["shape"]), f"{where} (array {key})"
                )
            elif info.get("codec") in VIDEO_CODECS:
                out[key] = VideoFrames(
                    _region(mm, info),
                    tuple(info["shape"]),
                    meta["fps"],
                    info["keyframe_interval"],
                    f"{where} (array {key})",
                )
            else:
                out[key] = _region(mm, info).view(np.dtype(info["dtype"])).reshape(info["shape"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{where}: array {key!r} does not match meta.json ({exc})") from exc
    return out


def verify_files(directory: Path, meta: Mapping[str, Any]) -> None:
    """Re-hash every array and compare with ``meta.json`` (slow: reads everything)."""
    check_size(directory, meta)
    path = directory / DATA_FILE
    mm = np.memmap(path, dtype=np.uint8, mode="r") if meta["data_bytes"] else np.zeros(0, np.uint8)
    for key, info in meta["arrays"].items():
        for region in (info, info.get("index")):
            if region is not None and hashlib.sha256(_region(mm, region)).hexdigest() != region["sha256"]:
                raise StoreError(
                    f"episode {meta['episode_id']}: file {path}: array {key!r} does not match its sha256 (corrupt)"
                )
    fields = {k: meta[k] for k in meta.get("hashed_fields", [])}
    if content_hash(meta["arrays"], fields) != meta["content_hash"]:
        raise StoreError(
            f"episode {meta['episode_id']}: file {directory / META_FILE} has a wrong content hash"
        )

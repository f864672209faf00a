"""Lazy reading of a checkpoint's safetensors files: one file or a sharded ``model.safetensors.index.json``.

Only the headers are read up front (shapes, dtypes, byte offsets). Each tensor is then read with plain file reads
straight into the parameter it fills (through a bounded scratch buffer when the dtype changes), one shard file
open at a time, so peak memory is the model plus at most one chunk, and the file is never memory-mapped (mapped
pages would count as resident memory on top of the model).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

from recap.errors import ConfigError

INDEX = "model.safetensors.index.json"
#: safetensors dtype names -> torch dtypes
DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
#: bytes read at a time when a tensor is converted to another dtype
CHUNK_BYTES = 64 * 2**20


class CheckpointFiles:
    """The tensors of a checkpoint directory (or one ``.safetensors`` file), by key."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.root = path if path.is_dir() else path.parent
        self.shard_of: dict[str, Path] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, torch.dtype] = {}
        self._offsets: dict[str, tuple[int, int]] = {}  # absolute byte range in its file
        for shard in self._shards(path):
            for key, (dtype, shape, start, stop) in read_header(shard).items():
                self.shard_of[key], self.shapes[key], self.dtypes[key] = shard, shape, dtype
                self._offsets[key] = (start, stop)

    @staticmethod
    def _shards(path: Path) -> list[Path]:
        if path.is_file():
            return [path]
        if not path.is_dir():
            raise ConfigError(f"checkpoint {str(path)!r} does not exist; pass a checkpoint directory")
        if (path / INDEX).exists():
            try:
                weight_map = json.loads((path / INDEX).read_text())["weight_map"]
            except (ValueError, KeyError) as exc:
                raise ConfigError(
                    f"{path / INDEX} is not a safetensors index (no weight_map): {exc}"
                ) from None
            shards = sorted({path / name for name in weight_map.values()})
            missing = [s.name for s in shards if not s.exists()]
            if missing:
                raise ConfigError(f"{path / INDEX} names shards that are not there: {missing}")
            return shards
        shards = sorted(path.glob("*.safetensors"))
        if not shards:
            raise ConfigError(
                f"no model.safetensors, {INDEX} or other .safetensors file in {str(path)!r}; point at the "
                "directory the checkpoint was downloaded to"
            )
        return shards

    def names(self) -> list[str]:
        return list(self.shapes)

    def copy_into(self, assignments: dict[str, torch.Tensor], progress=None) -> None:
        """Fill each target tensor (contiguous, CPU, the key's shape) with the key's data, shard by shard."""
        by_shard: dict[Path, list[str]] = {}
        for key in assignments:
            by_shard.setdefault(self.shard_of[key], []).append(key)
        done = iter(range(len(assignments)))
        ticks = progress(done, len(assignments)) if progress else done
        for shard, keys in by_shard.items():
            with open(shard, "rb", buffering=0) as f:
                for key in sorted(keys, key=lambda k: self._offsets[k][0]):  # sequential reads
                    self._read(f, key, assignments[key])
                    next(ticks, None)

    def _read(self, f, key: str, target: torch.Tensor) -> None:
        start, stop = self._offsets[key]
        stored = self.dtypes[key]
        if not target.is_contiguous() or tuple(target.shape) != self.shapes[key]:
            raise ValueError(f"{key}: target must be contiguous of shape {self.shapes[key]}")
        f.seek(start)
        flat = target.detach().view(-1)
        if target.dtype == stored:
            _read_exact(f, flat.view(torch.uint8), key)
            return
        item = torch.empty(0, dtype=stored).element_size()
        step = max(1, CHUNK_BYTES // item)
        scratch = torch.empty(min(step, flat.numel()), dtype=stored)
        for first in range(0, flat.numel(), step):
            part = scratch[: min(step, flat.numel() - first)]
            _read_exact(f, part.view(torch.uint8), key)
            flat[first : first + part.numel()].copy_(part)
        assert f.tell() == stop

    def config_json(self) -> dict:
        """The directory's ``config.json`` (empty when there is none)."""
        path = self.root / "config.json"
        return json.loads(path.read_text()) if path.exists() else {}


def _read_exact(f, buffer: torch.Tensor, key: str) -> None:
    view = memoryview(buffer.numpy())
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            raise ConfigError(f"{key}: the file ends before the tensor does (a truncated download?)")
        got += n


def read_header(path: Path) -> dict[str, tuple[torch.dtype, tuple[int, ...], int, int]]:
    """``key -> (dtype, shape, first byte, end byte)`` from a safetensors file's header."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise ConfigError(f"{path} is not a safetensors file (shorter than its header size)")
        (length,) = struct.unpack("<Q", raw)
        if length > size - 8:
            raise ConfigError(
                f"{path} is not a safetensors file (header of {length} bytes in a {size}-byte file)"
            )
        try:
            header = json.loads(f.read(length))
        except ValueError as exc:
            raise ConfigError(f"{path} has an unreadable safetensors header: {exc}") from None
    base = 8 + length
    out = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if entry["dtype"] not in DTYPES:
            raise ConfigError(f"{path}: {key} has dtype {entry['dtype']}, which recap does not read")
        begin, end = entry["data_offsets"]
        dtype, shape = DTYPES[entry["dtype"]], tuple(entry["shape"])
        if (
            end - begin != torch.Size(shape).numel() * torch.empty(0, dtype=dtype).element_size()
            or base + end > size
        ):
            raise ConfigError(
                f"{path}: {key}'s byte range does not match its shape {list(shape)} (corrupt file?)"
            )
        out[key] = (dtype, shape, base + begin, base + end)
    return out

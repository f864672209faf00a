"""Lazy reading of a checkpoint's safetensors files: one file or a sharded ``model.safetensors.index.json``.

Only shapes are read up front (from the headers); tensors are read one shard at a time, in the order the caller
asks for them, so peak memory stays near the size of the model being filled plus one tensor.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors import safe_open

from recap.errors import ConfigError

INDEX = "model.safetensors.index.json"


class CheckpointFiles:
    """The tensors of a checkpoint directory (or one ``.safetensors`` file), by key."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.root = path if path.is_dir() else path.parent
        self.shard_of: dict[str, Path] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for shard in self._shards(path):
            with safe_open(str(shard), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                    self.shard_of[key] = shard
                    self.shapes[key] = tuple(f.get_slice(key).get_shape())

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

    def read(
        self, keys: Iterable[str], dtype: torch.dtype | None = None
    ) -> Iterator[tuple[str, torch.Tensor]]:
        """``(key, tensor)`` for ``keys``, grouped shard by shard (one shard file open at a time)."""
        by_shard: dict[Path, list[str]] = {}
        for key in keys:
            by_shard.setdefault(self.shard_of[key], []).append(key)
        for shard, names in by_shard.items():
            with safe_open(str(shard), framework="pt") as f:
                for key in names:
                    tensor = f.get_tensor(key)
                    yield key, tensor if dtype is None or not tensor.is_floating_point() else tensor.to(dtype)

    def config_json(self) -> dict:
        """The directory's ``config.json`` (empty when there is none)."""
        path = self.root / "config.json"
        return json.loads(path.read_text()) if path.exists() else {}

"""Training-state checkpoints for exact resume, sharded with ``torch.distributed.checkpoint`` (DCP).

Each checkpoint is a directory ``<out>/checkpoints/step_<N>/``, written by every rank under a temporary name and
renamed into place by rank 0 once all ranks have finished, so a run killed mid-write (SIGKILL included) leaves
either a complete checkpoint or none:

    .metadata, __<rank>_<i>.distcp   DCP: model weights, optimiser state and EMA weights (each rank writes its
                                     shards; tensors are keyed by parameter name and global shape, so a
                                     checkpoint saved on N ranks loads on M ranks, sharded or not)
    trainer_state.json               step, EMA update count, per-rank RNG states (torch, numpy, random, CUDA)

The learning rate is a pure function of the step (``schedule.warmup_cosine_lr``), so the step is the whole
scheduler state.

Resuming never executes code from the checkpoint: DCP's metadata file is a pickle, read here by an unpickler
that admits only DCP's own metadata classes, dtypes and paths; non-tensor entries (optimiser hyper-parameters)
are read with ``torch.load(weights_only=True)``; the trainer state is JSON.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.planner import ReadItem

from recap.errors import StoreError

CHECKPOINTS = "checkpoints"
STATE = "trainer_state.json"
DCP_METADATA = ".metadata"
_STEP_DIR = re.compile(r"^step_(\d+)$")


# -- RNG state as JSON ---------------------------------------------------------------------------------------


def _bytes(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode()


def _tensor(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def rng_state() -> dict[str, Any]:
    """This process's random generators (torch CPU/CUDA, numpy, Python) as JSON-ready values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": _bytes(torch.get_rng_state()),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(internal), gauss_next],
    }
    if torch.cuda.is_available():
        state["cuda"] = [_bytes(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(_tensor(state["torch"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_tensor(s) for s in state["cuda"]])


# -- reading DCP without running code -----------------------------------------------------------------------

_DCP_CLASSES = {
    ("torch.distributed.checkpoint.metadata", n)
    for n in (
        "Metadata",
        "MetadataIndex",
        "StorageMeta",
        "TensorProperties",
        "TensorStorageMetadata",
        "BytesStorageMetadata",
        "ChunkStorageMetadata",
        "_MEM_FORMAT_ENCODING",
    )
} | {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),  # maps a layout's name to the torch.layout object
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
    ("pathlib", "PurePosixPath"),
    ("collections", "OrderedDict"),
}


class _MetadataUnpickler(pickle.Unpickler):
    """Admits only the classes DCP metadata is made of; anything else (``os.system``...) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _DCP_CLASSES or (
            module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)
        ):
            return super().find_class(module, name)
        raise StoreError(
            f"checkpoint metadata refers to {module}.{name}, which a DCP checkpoint never holds; refusing to "
            "load it (the file may have been crafted to run code)"
        )


class SafeReader(FileSystemReader):
    """``FileSystemReader`` whose metadata is unpickled through the allow-list above."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
        rank = kwargs.get("rank")
        path = Path(self.path) / (DCP_METADATA if rank is None else f"__{rank}{DCP_METADATA}")
        with open(path, "rb") as fh:
            metadata = _MetadataUnpickler(fh).load()
        from torch.distributed.checkpoint.metadata import Metadata, StorageMeta

        if not isinstance(metadata, Metadata):
            raise StoreError(f"{path} does not hold DCP metadata (got {type(metadata).__name__})")
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


class SafeLoadPlanner(DefaultLoadPlanner):
    """Non-tensor entries are read with ``torch.load(weights_only=True)`` (plain containers and numbers)."""

    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        from torch.distributed.checkpoint._nested_dict import set_element  # noqa: PLC0415

        loaded = torch.load(value, weights_only=True)
        if self.flatten_state_dict:
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], loaded)
        else:
            self.state_dict[read_item.dest_index.fqn] = loaded


def read_metadata(directory: str | Path) -> Any:
    """The DCP metadata of a checkpoint directory (read safely)."""
    return SafeReader(str(directory)).read_metadata()


def load_dcp(state: dict[str, Any], directory: str | Path) -> None:
    """Load ``directory`` into ``state`` in place (every rank; without a process group it runs alone)."""
    read_metadata(directory)  # refuses a crafted metadata file before DCP reads anything else
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.load(state, storage_reader=SafeReader(str(directory)), planner=SafeLoadPlanner())
    except Exception as exc:  # missing keys or shapes: name the checkpoint and the likely cause
        raise StoreError(
            f"cannot load checkpoint {directory}: {exc}. Was it saved from a different model or trainer config?"
        ) from exc


# -- the checkpoint directory --------------------------------------------------------------------------------


def checkpoint_dirs(out_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``out_dir``, sorted by step."""
    root = Path(out_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and (d / STATE).exists() and (d / DCP_METADATA).exists():
            found.append((int(m.group(1)), d))
    return sorted(found)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    dirs = checkpoint_dirs(out_dir)
    return dirs[-1][1] if dirs else None


def temporary_dir(out_dir: str | Path, step: int) -> Path:
    """Where every rank writes step ``step`` before rank 0 renames it (the same path on every rank)."""
    return Path(out_dir) / CHECKPOINTS / f".tmp-step_{step:08d}"


def write_shards(directory: Path, state: dict[str, Any]) -> None:
    """Every rank: write its shards of ``state`` (collective)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.save(state, checkpoint_id=str(directory))


def publish(out_dir: str | Path, step: int, trainer_state: dict[str, Any], keep: int) -> Path:
    """Rank 0, after every rank wrote its shards: add the JSON state, rename into place, prune old ones."""
    tmp = temporary_dir(out_dir, step)
    (tmp / STATE).write_text(json.dumps({"step": step, **trainer_state}))
    final = Path(out_dir) / CHECKPOINTS / f"step_{step:08d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for _, old in checkpoint_dirs(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_trainer_state(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / STATE).read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"cannot read {directory / STATE}: {exc}; delete that checkpoint to resume from an older one"
        ) from exc


def prepare_temporary(out_dir: str | Path, step: int) -> None:
    """Rank 0, before a save: an empty temporary directory."""
    tmp = temporary_dir(out_dir, step)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)


def remove_stale_temporaries(out_dir: str | Path) -> None:
    """Drop half-written checkpoints left by a killed run."""
    root = Path(out_dir) / CHECKPOINTS
    if root.is_dir():
        for d in root.glob(".tmp-step_*"):
            shutil.rmtree(d, ignore_errors=True)


def export_weights(directory: str | Path, out_file: str | Path, *, key: str = "model") -> Path:
    """Write the full (unsharded) weights of checkpoint ``directory`` to one safetensors file, for serving.

    Needs no model and no process group: the tensors are allocated from the checkpoint's own metadata.
    """
    from safetensors.torch import save_file
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    directory = Path(directory)
    if not (directory / DCP_METADATA).exists():
        raise StoreError(
            f"{directory} is not a training checkpoint (no {DCP_METADATA}); pass checkpoints/step_N"
        )
    prefix = key + "."
    state = {
        fqn[len(prefix) :]: torch.empty(md.size, dtype=md.properties.dtype)
        for fqn, md in read_metadata(directory).state_dict_metadata.items()
        if fqn.startswith(prefix) and isinstance(md, TensorStorageMetadata)
    }
    if not state:
        raise StoreError(f"{directory} holds no {key!r} tensors")
    load_dcp({key: state}, directory)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(out_file.name + ".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    os.replace(tmp, out_file)
    return out_file

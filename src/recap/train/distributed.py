"""Data-parallel helpers on ``torch.distributed``, so the same trainer runs alone or under ``torchrun``.

Under ``torchrun`` the environment carries ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``; the process group is
initialised with gloo on CPU and NCCL on GPU (each process takes GPU ``LOCAL_RANK``). The strategies that use the
group (DDP, FSDP2) live in ``recap.train.parallel``.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
import torch
import torch.distributed as dist


@attrs.frozen
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device | None = None) -> DistInfo:
    """Join the process group described by the environment (torchrun), or run alone when there is none."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), True)


def local_device(required: bool = False) -> torch.device:
    """This process's device: GPU ``LOCAL_RANK`` when CUDA is available (torchrun sets it), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if required:
        raise RuntimeError("device 'cuda' was asked for but torch sees no GPU; use device 'cpu' or 'auto'")
    return torch.device("cpu")


def shutdown(info: DistInfo) -> None:
    if info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_parameters(module: torch.nn.Module, info: DistInfo) -> None:
    """Make every rank start from rank 0's weights and buffers."""
    if info.world_size == 1:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def average_scalars(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Mean of each metric over ranks (all ranks must pass the same keys)."""
    if info.world_size == 1 or not values:
        return values
    names = sorted(values)
    t = torch.tensor([values[k] for k in names], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: float(v) / info.world_size for k, v in zip(names, t.tolist(), strict=True)}


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order (only meaningful on rank 0, returned everywhere)."""
    if info.world_size == 1:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        dist.barrier()

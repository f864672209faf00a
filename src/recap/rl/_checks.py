"""Input checks shared by the rl functions: say what was expected and how to fix it."""

from __future__ import annotations

import torch

from recap.errors import LabelError, SchemaError


def check_lengths(lengths: torch.Tensor) -> torch.Tensor:
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1 or lengths.numel() == 0:
        raise SchemaError(f"lengths must be a non-empty 1-D tensor [N], got shape {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise SchemaError(f"lengths must be integers, got {lengths.dtype}")
    if (lengths < 1).any():
        raise SchemaError(f"every episode needs at least one step; got lengths {lengths.tolist()}")
    return lengths.long()


def check_success(success: torch.Tensor | list, n: int) -> torch.Tensor:
    if isinstance(success, (list, tuple)) and any(s is None for s in success):
        bad = [i for i, s in enumerate(success) if s is None]
        raise LabelError(
            f"episodes {bad} have no success label; label them (`recap data label-success STORE ID "
            "--success/--failure`) or leave them out (`--skip-unlabelled`)"
        )
    success = torch.as_tensor(success)
    if success.shape != (n,):
        raise SchemaError(
            f"success must be a bool tensor [{n}] (one per episode), got shape {tuple(success.shape)}"
        )
    return success.bool()


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise SchemaError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}; "
            "pass one value per step of each episode"
        )


def check_finite(name: str, x: torch.Tensor) -> None:
    if x.is_floating_point() and not torch.isfinite(x).all():
        n = int((~torch.isfinite(x)).sum())
        raise SchemaError(
            f"{name} contains {n} NaN/inf values; check the value model's predictions and inputs"
        )

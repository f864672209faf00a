"""Discretised values (paper Eq. 1): bin centres on [-1, 0], categorical targets and expected values.

B bin centres are evenly spaced and include both ends: v(b) = -1 + b / (B - 1), b = 0..B-1, so the bin width
is w = 1 / (B - 1) (0.005 for the default B = 201).
"""

from __future__ import annotations

from typing import Literal

import torch

from recap.errors import SchemaError

TargetKind = Literal["two_hot", "one_hot"]


def bin_centers(num_bins: int, low: float = -1.0, high: float = 0.0) -> torch.Tensor:
    """v(b) for b = 0..B-1, float32 ``[B]``."""
    if num_bins < 2:
        raise ValueError(f"num_bins must be >= 2, got {num_bins}")
    return torch.linspace(low, high, num_bins)


def _check_returns(returns: torch.Tensor) -> torch.Tensor:
    if returns.ndim != 1:
        raise SchemaError(f"returns must be [B], got shape {tuple(returns.shape)}")
    if not torch.isfinite(returns).all():
        raise SchemaError("returns contain NaN/inf; check the episode success labels and lengths")
    return returns.float().clamp(-1.0, 0.0)


def two_hot(returns: torch.Tensor, num_bins: int) -> torch.Tensor:
    """Split each return between its two neighbouring bins so the target's mean equals the return:

    x = (R + 1) (B - 1),  p[floor(x)] = 1 - frac(x),  p[floor(x) + 1] = frac(x).
    """
    x = (_check_returns(returns) + 1.0) * (num_bins - 1)
    lo = x.floor().clamp(0, num_bins - 1)
    frac = x - lo
    hi = (lo + 1).clamp(max=num_bins - 1)
    target = torch.zeros(returns.shape[0], num_bins, dtype=torch.float32, device=returns.device)
    target.scatter_add_(1, lo.long()[:, None], (1.0 - frac)[:, None])
    target.scatter_add_(1, hi.long()[:, None], frac[:, None])
    return target


def one_hot(returns: torch.Tensor, num_bins: int) -> torch.Tensor:
    """All mass on the nearest bin centre (the paper's "bin of the return"): ``round((R + 1)(B - 1))``."""
    idx = ((_check_returns(returns) + 1.0) * (num_bins - 1)).round().long()
    return torch.nn.functional.one_hot(idx, num_bins).float()


def targets(returns: torch.Tensor, num_bins: int, kind: TargetKind) -> torch.Tensor:
    """Categorical targets ``[B, num_bins]`` for normalised returns ``[B]``."""
    if kind == "two_hot":
        return two_hot(returns, num_bins)
    if kind == "one_hot":
        return one_hot(returns, num_bins)
    raise ValueError(f"unknown target kind {kind!r}; use 'two_hot' or 'one_hot'")


def expected_value(logits: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """V = sum_b softmax(logits)_b * v(b), ``[B]``."""
    return torch.softmax(logits.float(), dim=-1) @ centers.to(logits.device)

"""Evaluation metrics: success rate, throughput (successes per hour of robot time), time to success."""

from __future__ import annotations

import math

import torch

from recap.errors import SchemaError

Z95 = 1.959963984540054


def _episodes(successes: torch.Tensor, durations_s: torch.Tensor | None = None) -> None:
    if successes.ndim != 1 or successes.numel() == 0:
        raise SchemaError(
            f"need a non-empty 1-D tensor of episode outcomes, got shape {tuple(successes.shape)}"
        )
    if durations_s is not None:
        if durations_s.shape != successes.shape:
            raise SchemaError(
                f"durations {tuple(durations_s.shape)} must match outcomes {tuple(successes.shape)}: one per episode"
            )
        if (durations_s <= 0).any() or not torch.isfinite(durations_s).all():
            raise SchemaError("episode durations must be positive and finite (seconds of robot time)")


def success_rate(successes: torch.Tensor) -> tuple[float, float, float]:
    """Success rate with a Wilson 95% interval: (rate, low, high)."""
    _episodes(successes)
    n = successes.numel()
    p = float(successes.float().mean())
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def throughput_per_hour(successes: torch.Tensor, durations_s: torch.Tensor) -> float:
    """Successful episodes per hour of robot time; failures count at their full duration."""
    _episodes(successes, durations_s)
    return float(successes.float().sum() / durations_s.double().sum() * 3600.0)


def throughput_ci(
    successes: torch.Tensor, durations_s: torch.Tensor, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Throughput with a percentile-bootstrap 95% interval over episodes: (value, low, high)."""
    value = throughput_per_hour(successes, durations_s)
    g = torch.Generator().manual_seed(seed)
    n = successes.numel()
    idx = torch.randint(n, (n_boot, n), generator=g)
    boot = successes.float()[idx].sum(1) / durations_s.double()[idx].sum(1) * 3600.0
    low, high = torch.quantile(boot.double(), torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return value, low, high


def mean_time_to_success(successes: torch.Tensor, durations_s: torch.Tensor) -> float:
    """Mean duration of the successful episodes (NaN when there are none)."""
    _episodes(successes, durations_s)
    ok = successes.bool()
    return float(durations_s[ok].double().mean()) if ok.any() else float("nan")

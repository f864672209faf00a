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


#: two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (beyond: the normal's)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)  # fmt: skip


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean of independent runs' results with a Student-t 95% interval: (mean, low, high).

    One run gives (value, NaN, NaN): a single run says nothing about the spread between runs.
    """
    if not values:
        raise SchemaError("need at least one run's value for a mean")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan, math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = (_T975[n - 2] if n - 1 <= len(_T975) else Z95) * std / math.sqrt(n)
    return mean, mean - half, mean + half

"""Per-task improvement thresholds eps_l and the indicator I_t = 1[A_t > eps_l] (docs/method.md)."""

from __future__ import annotations

import torch

from recap.errors import SchemaError
from recap.rl._checks import check_finite


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"positive fraction must be in [0, 1], got {fraction}")


def threshold_for_fraction(advantages: torch.Tensor, fraction: float) -> float:
    """eps such that the share of ``advantages > eps`` is as close as possible to ``fraction``.

    With ties no strict threshold may hit the fraction exactly; :func:`indicators_for_fraction` breaks them.
    """
    _check_fraction(fraction)
    adv = advantages.flatten().double()
    if adv.numel() == 0:
        raise SchemaError("cannot set a threshold on an empty set of advantages; label at least one episode")
    check_finite("advantages", adv)
    values = adv.sort(descending=True).values
    k = round(fraction * adv.numel())
    if k <= 0:
        return float(values[0])
    if k >= adv.numel():
        return float(values[-1]) - 1e-9
    # Midpoint between the k-th and (k+1)-th largest keeps held-out points on the right side of the gap.
    return float((values[k - 1] + values[k]) / 2)


def indicators_for_fraction(
    advantages: torch.Tensor, fraction: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, float]:
    """I = 1 for exactly round(fraction * M) steps: those above eps, plus a seeded random share of the
    steps tied at eps so that ties do not move the fraction. Returns (indicator bool [M], eps)."""
    eps = threshold_for_fraction(advantages, fraction)
    adv = advantages.flatten()
    k = round(fraction * adv.numel())
    # Rank by advantage, breaking ties by a random key: exactly k positives.
    jitter = torch.rand(adv.shape, generator=generator, dtype=torch.float64)
    order = torch.from_numpy(_lexsort(adv.double(), jitter))
    indicator = torch.zeros(adv.numel(), dtype=torch.bool)
    indicator[order[:k]] = True
    return indicator.view(advantages.shape), eps


def _lexsort(primary: torch.Tensor, secondary: torch.Tensor):
    """Indices sorting by primary descending, then secondary descending."""
    import numpy as np

    return np.lexsort((-secondary.numpy(), -primary.numpy())).copy()


def apply_threshold(advantages: torch.Tensor, eps: float) -> torch.Tensor:
    """I_t = 1[A_t > eps] (for data labelled with a threshold set elsewhere)."""
    return advantages > eps


def force_interventions(indicator: torch.Tensor, is_intervention: torch.Tensor) -> torch.Tensor:
    """Steps recorded under a human correction are always positive: I_t = I_t OR is_intervention_t."""
    if indicator.shape != is_intervention.shape:
        raise SchemaError(
            f"indicator {tuple(indicator.shape)} and is_intervention {tuple(is_intervention.shape)} must match"
        )
    return indicator.bool() | is_intervention.bool()

"""Recap math as pure, shape-checked tensor functions: rewards, returns, advantages, thresholds, metrics.

No I/O and no modules here; every function documents the equation it implements (docs/method.md).
"""

from recap.rl.advantages import mc_advantages, nstep_advantages, standardize_advantages
from recap.rl.metrics import mean_ci, mean_time_to_success, success_rate, throughput_ci, throughput_per_hour
from recap.rl.returns import (
    episode_rewards,
    episode_rewards_batched,
    normalize_returns,
    normalized_mc_returns,
    normalized_mc_returns_batched,
    returns_to_go,
    valid_mask,
)
from recap.rl.thresholds import (
    apply_threshold,
    force_interventions,
    indicators_for_fraction,
    threshold_for_fraction,
)

__all__ = [
    "apply_threshold",
    "episode_rewards",
    "episode_rewards_batched",
    "force_interventions",
    "indicators_for_fraction",
    "mc_advantages",
    "mean_ci",
    "mean_time_to_success",
    "normalize_returns",
    "normalized_mc_returns",
    "normalized_mc_returns_batched",
    "nstep_advantages",
    "returns_to_go",
    "standardize_advantages",
    "success_rate",
    "threshold_for_fraction",
    "throughput_ci",
    "throughput_per_hour",
    "valid_mask",
]

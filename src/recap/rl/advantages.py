"""Advantages from values and normalised rewards (docs/method.md).

All inputs are padded ``[N, T_max]`` with ``lengths [N]``; values are in normalised return units [-1, 0].
"""

from __future__ import annotations

import torch

from recap.errors import SchemaError
from recap.rl._checks import check_finite, check_lengths, check_same_shape
from recap.rl.returns import returns_to_go, valid_mask


def nstep_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    lengths: torch.Tensor,
    lookahead: int = 50,
    success: torch.Tensor | None = None,
    max_length: int | None = None,
) -> torch.Tensor:
    """Fine-tuning advantage, n-step with Monte-Carlo fallback near the end:

        A_t = clip(sum_{t'=t}^{t+N-1} r_t', -1, 0) + V(o_{t+N}) - V(o_t)   if t + N < T
        A_t = clip(R_t, -1, 0) - V(o_t)                                     otherwise (window reaches the end)

    Only the reward sums are clipped (a failure's -C_fail), never the bootstrapped target: clipping it at -1
    would give every step of a doomed episode (V = -1 before and after) the same A = 0, a tie that a
    percentile threshold then splits at random; unclipped, such steps keep A = -N / L like any wasted step.

    With ``success`` given, a window that reaches the end of a *failed* episode does not fall back to the
    clipped return (which, against a value that cannot go below -1, gives the last N steps of every failure
    A = -1 - V ~ 0, above the steps before them): the failure is an absorbing "lost" state where time still
    costs, so the target is -N/L - 1 and those steps get A = -N/L - 1 - V <= -N/L.

    Args:
        rewards: normalised rewards r_t / L ``[N, T_max]`` (0 in padding).
        values: V(o_t) ``[N, T_max]``.
        lengths: int ``[N]``.
        lookahead: N >= 1.
        success: bool ``[N]`` episode outcomes (optional; see above), given with ``max_length``.
        max_length: L, the task's normalising length (the rewards are r / L).

    Returns:
        float ``[N, T_max]`` advantages, 0 in padding.
    """
    lengths = check_lengths(lengths)
    check_same_shape("rewards", rewards, "values", values)
    check_finite("values", values)
    if lookahead < 1:
        raise ValueError(f"lookahead must be >= 1, got {lookahead}")
    n, t_max = values.shape
    mask = valid_mask(lengths, t_max)
    ret = returns_to_go(rewards * mask)
    pad = torch.zeros(n, lookahead, dtype=ret.dtype, device=ret.device)
    ret_ahead = torch.cat([ret, pad], 1)[:, lookahead:]
    val_ahead = torch.cat([values, pad.to(values.dtype)], 1)[:, lookahead:]
    t = torch.arange(t_max, device=values.device)[None, :]
    bootstrap = (t + lookahead) < lengths[:, None]
    window = (ret - ret_ahead).clamp(-1.0, 0.0)
    fallback = ret.clamp(-1.0, 0.0)
    if (success is None) != (max_length is None):
        raise ValueError("give success and max_length together (the lost-state target needs both)")
    if success is not None:
        if success.shape != lengths.shape:
            raise ValueError(f"success must have shape {tuple(lengths.shape)}, got {tuple(success.shape)}")
        lost = torch.full_like(fallback, -1.0 - lookahead / max_length)
        fallback = torch.where(success.to(values.device).bool()[:, None], fallback, lost)
    target = torch.where(bootstrap, window + val_ahead, fallback)
    return (target - values) * mask


def mc_advantages(returns: torch.Tensor, values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Pre-training advantage A_t = R_t - V(o_t) (one value call per sample), 0 in padding."""
    lengths = check_lengths(lengths)
    check_same_shape("returns", returns, "values", values)
    check_finite("values", values)
    return (returns - values) * valid_mask(lengths, values.shape[1])


#: added to the batch std before dividing, so a batch of equal advantages standardises to zeros, not NaN
ADVANTAGE_STD_EPS = 1e-5


def standardize_advantages(advantages: torch.Tensor, eps: float = ADVANTAGE_STD_EPS) -> torch.Tensor:
    """Per-batch standardisation used by AWR and PPO, with no gradient and in float32::

        A_hat = (A - mean_B(A)) / (std_B(A) + eps)      (population std over the batch)

    Args:
        advantages: ``[B]`` advantages of one training batch (B >= 1, finite).
        eps: added to the std (see ``ADVANTAGE_STD_EPS``).
    """
    if advantages.ndim != 1 or advantages.numel() == 0:
        raise SchemaError(f"advantages must be a non-empty [B] tensor, got shape {tuple(advantages.shape)}")
    check_finite("advantages", advantages)
    adv = advantages.detach().float()
    return (adv - adv.mean()) / (adv.std(unbiased=False) + eps)

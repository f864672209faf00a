"""Rewards and returns from one success label per episode (paper Eq. 5).

Episodes of different lengths are batched as padded ``[N, T_max]`` tensors plus ``lengths [N]``; padded
entries are 0 in every output. Single-episode helpers wrap the batched functions.
"""

from __future__ import annotations

import torch

from recap.rl._checks import check_lengths, check_success


def valid_mask(lengths: torch.Tensor, t_max: int | None = None) -> torch.Tensor:
    """Bool ``[N, T_max]``: True for steps inside each episode."""
    lengths = check_lengths(lengths)
    t_max = int(lengths.max()) if t_max is None else t_max
    return torch.arange(t_max, device=lengths.device)[None, :] < lengths[:, None]


def episode_rewards_batched(lengths: torch.Tensor, success: torch.Tensor, c_fail: float) -> torch.Tensor:
    """Eq. 5: r_t = -1 before the last step; at t = T-1, r = 0 on success and -C_fail on failure.

    Args:
        lengths: int ``[N]``, episode lengths (>= 1).
        success: bool ``[N]``, success labels.
        c_fail: the failure penalty C_fail (>= 0).

    Returns:
        float32 ``[N, T_max]`` rewards, 0 past each episode's end.
    """
    lengths = check_lengths(lengths)
    success = check_success(success, lengths.shape[0])
    if c_fail < 0:
        raise ValueError(f"c_fail must be >= 0, got {c_fail}")
    mask = valid_mask(lengths)
    rewards = torch.where(mask, -1.0, 0.0)
    last = lengths - 1
    rows = torch.arange(lengths.shape[0], device=lengths.device)
    rewards[rows, last] = torch.where(success, 0.0, -float(c_fail)).to(rewards.dtype)
    return rewards


def returns_to_go(rewards: torch.Tensor) -> torch.Tensor:
    """Undiscounted R_t = sum_{t' >= t} r_t' along the last dimension (padding must be 0)."""
    if rewards.ndim < 1:
        raise ValueError(f"rewards must have a time dimension, got shape {tuple(rewards.shape)}")
    return rewards.flip(-1).cumsum(-1).flip(-1)


def normalize_returns(returns: torch.Tensor, max_length: torch.Tensor | float) -> torch.Tensor:
    """Per-task normalisation into [-1, 0]: R_t / L_task, clipped at -1 (L = the task's maximum length).

    ``max_length`` is a scalar or ``[N]`` (one per episode, broadcast over time).
    """
    max_length = torch.as_tensor(max_length, dtype=returns.dtype, device=returns.device)
    if (max_length <= 0).any():
        raise ValueError("max_length must be positive: it is the task's longest episode in steps")
    if max_length.ndim == 1:
        max_length = max_length[:, None]
    return (returns / max_length).clamp(-1.0, 0.0)


def normalized_mc_returns_batched(
    lengths: torch.Tensor,
    success: torch.Tensor,
    max_length: torch.Tensor | float,
    c_fail: float | None = None,
) -> torch.Tensor:
    """Normalised Monte-Carlo returns ``[N, T_max]`` (0 in padding); ``c_fail=None`` means C_fail = max_length,
    so every step of a failed episode normalises to -1."""
    max_length_t = torch.as_tensor(max_length, dtype=torch.float32)
    if c_fail is None:
        c_fail = float(max_length_t.max())
    rewards = episode_rewards_batched(lengths, success, c_fail)
    out = normalize_returns(returns_to_go(rewards), max_length_t)
    return out * valid_mask(lengths, rewards.shape[1])


def episode_rewards(length: int, success: bool, c_fail: float) -> torch.Tensor:
    """Eq. 5 for one episode: float32 ``[T]``."""
    return episode_rewards_batched(torch.tensor([length]), torch.tensor([success]), c_fail)[0]


def normalized_mc_returns(
    length: int, success: bool, max_length: int, c_fail: float | None = None
) -> torch.Tensor:
    """Normalised return-to-go of every step of one episode: float32 ``[T]`` in [-1, 0].

    A success ends at 0 and counts -1/L per remaining step; a failure reaches -1 (clipped) when
    C_fail >= L - steps left (the default C_fail = L).
    """
    if max_length < length:
        raise ValueError(
            f"max_length ({max_length}) is shorter than the episode ({length} steps); use the task's longest "
            "episode (EpisodeStore.max_length_per_task) or a larger time limit"
        )
    return normalized_mc_returns_batched(torch.tensor([length]), torch.tensor([success]), max_length, c_fail)[
        0
    ]

"""The flow-matching pieces every flow policy (and PPO's likelihood ratio) shares, in normalised action units
(pi0 convention, docs/method.md)::

    x_tau = tau * eps + (1 - tau) * a,   u = eps - a,   loss = mean || v_theta(x_tau, tau, c) - u ||^2
    tau ~ Beta(1.5, 1) mapped to [0.001, 1],   eps ~ N(0, I)

A draw (``noise`` eps ``[B, H, A]`` and ``time`` tau ``[B]``) is a ``TensorDict`` so that two calls, e.g. a
PPO reference policy and the current one, can share it through ``Policy.per_sample_loss(flow_draws=...)``.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from tensordict import TensorDict

from recap.errors import SchemaError

#: shape parameter a of tau ~ Beta(a, 1): more weight on noisy times (pi0)
FLOW_TIME_BETA = 1.5
#: smallest flow time: the velocity target is undefined at tau = 0
FLOW_TIME_MIN = 0.001


class ChunkShaped(Protocol):
    """What a draw needs to know of a policy: the shape of its action chunks."""

    chunk_size: int
    action_dim: int


def sample_flow_time(
    batch_size: int, *, generator: torch.Generator | None = None, device: Any = None
) -> torch.Tensor:
    """tau ~ Beta(1.5, 1) mapped to [0.001, 1], shape ``[batch_size]``.

    Beta(a, 1) has CDF x^a, so tau = U^(1/a) is exact and takes a generator (torch.distributions does not).
    """
    u = torch.rand(batch_size, generator=generator, device=device)
    return u.pow(1.0 / FLOW_TIME_BETA) * (1.0 - FLOW_TIME_MIN) + FLOW_TIME_MIN


def draw_flow(
    policy: ChunkShaped,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    device: Any = None,
) -> TensorDict:
    """Fresh ``flow_draws`` for ``Policy.per_sample_loss``: ``noise`` ``[B, H, A]`` and ``time`` ``[B]``.

    ``device`` defaults to the device of the policy's parameters (CPU for a policy without any).
    """
    if device is None and hasattr(policy, "parameters"):
        device = next(iter(policy.parameters())).device
    noise = torch.randn(batch_size, policy.chunk_size, policy.action_dim, generator=generator, device=device)
    time = sample_flow_time(batch_size, generator=generator, device=device)
    return TensorDict({"noise": noise, "time": time}, batch_size=[batch_size])


def flow_matching_path(
    actions: torch.Tensor, flow_draws: TensorDict | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_tau, tau, u)`` for normalised action chunks ``[B, H, A]``: the noisy input, the flow time ``[B]``
    and the velocity target ``eps - a``. Draws fresh (eps, tau) unless ``flow_draws`` is given."""
    size = actions.shape[0]
    if flow_draws is None:
        noise = torch.randn_like(actions)
        tau = sample_flow_time(size, device=actions.device).to(actions.dtype)
    else:
        noise, tau = flow_draws.get("noise").to(actions), flow_draws.get("time").to(actions)
        if noise.shape != actions.shape or tau.shape != (size,):
            raise SchemaError(
                f"flow_draws must hold noise {tuple(actions.shape)} and time ({size},); got noise "
                f"{tuple(noise.shape)} and time {tuple(tau.shape)} (draw them with recap.nn.draw_flow)"
            )
    t = tau[:, None, None]
    return t * noise + (1.0 - t) * actions, tau, noise - actions


def masked_chunk_mean(per_step: torch.Tensor, is_pad: torch.Tensor | None) -> torch.Tensor:
    """Mean over the valid chunk steps of ``per_step`` ``[B, H]`` -> ``[B]`` (``is_pad`` bool ``[B, H]`` marks
    steps past the end of the episode; a chunk with no valid step gives 0)."""
    if is_pad is None:
        return per_step.mean(-1)
    valid = (~is_pad.to(per_step.device)).to(per_step.dtype)
    return (per_step * valid).sum(-1) / valid.sum(-1).clamp_min(1.0)

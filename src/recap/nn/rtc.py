"""Real-time chunking: guided inpainting of a flow-matching sampler (Black et al., 2025).

Flow convention (pi0, as every recap flow policy): ``x_tau = tau * eps + (1 - tau) * a`` with the velocity
``v = eps - a``, sampled by Euler steps from tau = 1 (noise) to tau = 0 (actions). The paper writes time the
other way round (t = 1 - tau, velocity -v); the formulas below are the paper's, translated.

At each denoising step the clean chunk is predicted as ``a_hat = x - tau * v``. With the inpainting target Y
(the previous chunk's remaining actions, normalised) and per-step weights W, the velocity is corrected by the
vector-Jacobian product that moves ``a_hat`` towards Y::

    g = (d a_hat / d x)^T  [W * (Y - a_hat)]
    v' = v - min(beta, (1 - t) / (t * r_t^2)) * g,    t = 1 - tau,  r_t^2 = (1 - t)^2 / (t^2 + (1 - t)^2)

Weights (d = frozen steps, H - s = end of the guided region)::

    W_i = 1                                     i < d
    W_i = c_i (e^{c_i} - 1) / (e - 1),           d <= i < H - s,   c_i = (H - s - i) / (H - s - d + 1)
    W_i = 0                                     i >= H - s
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def inpainting_weights(horizon: int, frozen: int, guided: int) -> torch.Tensor:
    """The per-step weights W ``[horizon]`` above (1 on the frozen prefix, decaying to 0 at ``guided``)."""
    if not 0 <= frozen <= guided <= horizon:
        raise ValueError(f"need 0 <= frozen ({frozen}) <= guided ({guided}) <= horizon ({horizon})")
    i = torch.arange(horizon, dtype=torch.float32)
    c = (guided - i) / (guided - frozen + 1)
    decaying = c * (torch.exp(c) - 1.0) / (math.e - 1.0)
    weights = torch.where(i < frozen, torch.ones_like(i), decaying)
    return torch.where(i < guided, weights, torch.zeros_like(i))


def guidance_weight(tau: float, max_guidance: float) -> float:
    """``min(beta, (1 - t) / (t * r_t^2))`` with t = 1 - tau (infinite at pure noise, so clipped there)."""
    t = 1.0 - tau
    if t <= 0.0 or t >= 1.0:
        return max_guidance
    r2 = (1.0 - t) ** 2 / (t**2 + (1.0 - t) ** 2)
    return min(max_guidance, (1.0 - t) / (t * r2))


def guided_velocity(
    velocity: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tau: float,
    target: torch.Tensor,
    weights: torch.Tensor,
    max_guidance: float,
) -> torch.Tensor:
    """The RTC-corrected velocity at ``x`` ``[B, H, A]`` (normalised units); ``target`` is Y, ``weights`` W [H].

    ``velocity(x)`` must be differentiable in x; gradients are enabled here even under ``torch.no_grad``.
    """
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        v = velocity(x_in)
        predicted = x_in - tau * v
        error = (target - predicted) * weights.to(x)[None, :, None]
        (correction,) = torch.autograd.grad(predicted, x_in, grad_outputs=error)
    return v.detach() - guidance_weight(tau, max_guidance) * correction

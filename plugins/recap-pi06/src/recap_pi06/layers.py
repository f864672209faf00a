"""Transformer pieces shared by the backbone and the action expert: RMSNorm, adaptive RMSNorm, rotary positions,
grouped-query attention with boolean masks, and the gated (GeGLU) MLP."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Gemma RMSNorm: ``y = x / sqrt(mean(x^2) + eps) * (1 + w)`` with ``w`` initialised at zero (so a checkpoint's
    weights are offsets from one, not scales)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in float32 whatever the model's dtype, as Gemma computes it (the bf16 checkpoints were trained so)
        wide = x.float()
        normed = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * (1.0 + self.weight.float())).to(x.dtype)


class AdaRMSNorm(nn.Module):
    """Adaptive RMSNorm in openpi's pi0.5 convention: ``dense(c)`` splits into a per-channel scale, shift and
    residual gate, ``y = rms(x) * (1 + scale) + shift``, and the caller adds ``x + y' * gate`` with the gate taken
    raw. The dense weights start at zero and the gate bias at one, so a fresh layer is a plain RMSNorm with a unit
    gate (an all-zero ``dense``, as a checkpoint may carry, gives gate 0: the layer is skipped)."""

    def __init__(self, dim: int, cond_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.dense = nn.Linear(cond_dim, 3 * dim)
        nn.init.zeros_(self.dense.weight)
        with torch.no_grad():
            self.dense.bias.copy_(torch.cat([torch.zeros(2 * dim), torch.ones(dim)]))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift, gate = self.dense(cond)[:, None, :].chunk(3, dim=-1)
        normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed * (1.0 + scale) + shift, gate


def rope_tables(
    positions: torch.Tensor, head_dim: int, theta: float, scaling: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin ``[B, 1, L, head_dim / 2]`` of rotary positions (computed once per forward, shared by layers);
    ``scaling`` divides the frequencies (linear position interpolation)."""
    half = head_dim // 2
    freqs = theta ** (-torch.arange(half, device=positions.device, dtype=torch.float32) / half) / scaling
    angles = positions.to(torch.float32)[:, None, :, None] * freqs
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotary positions on ``x`` ``[B, heads, L, d]`` (rotate-half form) with tables from :func:`rope_tables`."""
    cos, sin = (t.to(x.dtype) for t in tables)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    """Grouped-query attention. ``q`` ``[B, Hq, Lq, d]``, ``k``/``v`` ``[B, Hkv, Lk, d]``, ``mask`` bool
    ``[B, Lq, Lk]`` (True = may attend); logits scaled by ``scale`` (default ``d ** -0.5``). A query row with no
    allowed key (a padding token) attends everywhere so that it stays finite; padding keys are masked for every
    real query, so this never leaks into real tokens."""
    repeat = q.shape[1] // k.shape[1]
    if repeat > 1:
        k = k.repeat_interleave(repeat, dim=1)
        v = v.repeat_interleave(repeat, dim=1)
    mask = mask | ~mask.any(-1, keepdim=True)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None], scale=scale)


class GatedMLP(nn.Module):
    """Gemma's GeGLU MLP: ``down(gelu_tanh(gate(x)) * up(x))``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=False)
        self.up = nn.Linear(dim, hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.gate(x), approximate="tanh") * self.up(x))


class QKV(nn.Module):
    """Query/key/value/output projections from a stream of width ``dim`` into a shared head layout.
    ``qk_norm_eps`` set: queries and keys are RMS-normed over head_dim before rotation (Gemma 3's QK-norm)."""

    def __init__(
        self, dim: int, num_heads: int, num_kv_heads: int, head_dim: int, qk_norm_eps: float | None = None
    ) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.q = nn.Linear(dim, num_heads * head_dim, bias=False)
        self.k = nn.Linear(dim, num_kv_heads * head_dim, bias=False)
        self.v = nn.Linear(dim, num_kv_heads * head_dim, bias=False)
        self.o = nn.Linear(num_heads * head_dim, dim, bias=False)
        if qk_norm_eps is not None:
            self.q_norm = RMSNorm(head_dim, qk_norm_eps)
            self.k_norm = RMSNorm(head_dim, qk_norm_eps)
        self.qk_norm = qk_norm_eps is not None

    def project(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` ``[B, L, dim]`` -> rotated q ``[B, Hq, L, d]``, rotated k and v ``[B, Hkv, L, d]``."""
        b, l, _ = x.shape
        q = self.q(x).view(b, l, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, l, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, l, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        return apply_rope(q, rope), apply_rope(k, rope), v

    def out(self, attended: torch.Tensor) -> torch.Tensor:
        b, _, l, _ = attended.shape
        return self.o(attended.transpose(1, 2).reshape(b, l, self.num_heads * self.head_dim))


def self_attention(
    attn: QKV,
    x: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor],
    mask: torch.Tensor,
    past: tuple[torch.Tensor, torch.Tensor] | None,
    scale: float | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """A decoder layer's attention over its (normed) input ``x`` and the cached keys/values ``past``: the output
    ``[B, L, dim]`` and the grown ``(keys, values)``."""
    q, k, v = attn.project(x, rope)
    if past is not None:
        k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
    return attn.out(attend(q, k, v, mask, scale)), (k, v)


def sincos_embedding(
    values: torch.Tensor, dim: int, min_period: float = 4e-3, max_period: float = 4.0
) -> torch.Tensor:
    """Sine-cosine features of scalars ``[B]`` -> ``[B, dim]`` with periods from ``min_period`` to ``max_period``
    (pi0's flow-time embedding)."""
    half = dim // 2
    # float32 in this exact order of operations: what transformers' PI0 computes on CPU
    fraction = torch.linspace(0.0, 1.0, half, device=values.device, dtype=torch.float32)
    period = min_period * (max_period / min_period) ** fraction
    angles = (1.0 / period * 2 * math.pi)[None, :] * values.to(torch.float32)[:, None]
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(emb, (0, dim - 2 * half))

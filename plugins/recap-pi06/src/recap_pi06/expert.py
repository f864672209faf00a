"""The flow-matching action expert (pi0 / pi0.5 with knowledge insulation).

One expert layer per backbone layer, with its own (smaller) width and weights but the backbone's head layout, so
that at layer l the action tokens attend to the concatenation of the backbone's keys/values of layer l (the
context: images, prompt, state, sub-task and indicator, never the FAST tokens) and their own. The context
keys/values are detached: the flow loss cannot reach the backbone (knowledge insulation, Driess et al. 2025).
The flow time tau enters every layer through adaptive RMSNorm.

Velocity field: ``v_theta(x_tau, tau, context) ~ u = eps - a`` (DESIGN.md section 2).
"""

from __future__ import annotations

import torch
from torch import nn

from recap_pi06.backbone import KVCache
from recap_pi06.config import DecoderShape, ExpertShape
from recap_pi06.layers import QKV, AdaRMSNorm, GatedMLP, attend, rope_tables, sincos_embedding


class ExpertLayer(nn.Module):
    def __init__(self, backbone: DecoderShape, shape: ExpertShape) -> None:
        super().__init__()
        self.attn_norm = AdaRMSNorm(shape.width, shape.width)
        self.attn = QKV(shape.width, backbone.num_heads, backbone.num_kv_heads, backbone.head_dim)
        self.mlp_norm = AdaRMSNorm(shape.width, shape.width)
        self.mlp = GatedMLP(shape.width, shape.mlp_dim)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        context: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor,
    ) -> torch.Tensor:
        h, gate = self.attn_norm(x, cond)
        q, k, v = self.attn.project(h, rope)
        k = torch.cat([context[0].detach(), k], dim=2)  # stop-gradient into the backbone
        v = torch.cat([context[1].detach(), v], dim=2)
        x = x + gate * self.attn.out(attend(q, k, v, mask))
        h, gate = self.mlp_norm(x, cond)
        return x + gate * self.mlp(h)


class ActionExpert(nn.Module):
    """Maps a noisy normalised chunk ``x_tau`` ``[B, H, A]`` and ``tau`` ``[B]`` to a velocity ``[B, H, A]``."""

    def __init__(self, backbone: DecoderShape, shape: ExpertShape, action_dim: int) -> None:
        super().__init__()
        self.width, self.head_dim, self.theta = shape.width, backbone.head_dim, backbone.rope_theta
        self.action_in = nn.Linear(action_dim, shape.width)
        self.time_mlp = nn.Sequential(
            nn.Linear(shape.width, shape.width), nn.SiLU(), nn.Linear(shape.width, shape.width), nn.SiLU()
        )
        self.layers = nn.ModuleList(ExpertLayer(backbone, shape) for _ in range(backbone.depth))
        self.final_norm = AdaRMSNorm(shape.width, shape.width, gated=False)
        self.action_out = nn.Linear(shape.width, action_dim)

    def forward(
        self,
        x_tau: torch.Tensor,
        tau: torch.Tensor,
        context: KVCache,
        context_valid: torch.Tensor,
        start_positions: torch.Tensor,
    ) -> torch.Tensor:
        """``context`` holds per-layer backbone keys/values ``[B, Hkv, Lc, d]`` with validity ``[B, Lc]``; action
        tokens sit at rotary positions ``start_positions[b] + k`` and attend to each other bidirectionally."""
        b, h, _ = x_tau.shape
        cond = self.time_mlp(sincos_embedding(tau, self.width))
        x = self.action_in(x_tau)
        positions = start_positions[:, None] + torch.arange(h, device=x.device)[None, :]
        rope = rope_tables(positions, self.head_dim, self.theta)
        own = torch.ones(b, h, h, dtype=torch.bool, device=x.device)
        mask = torch.cat([context_valid[:, None, :].expand(b, h, -1), own], dim=-1)
        for layer, kv in zip(self.layers, context, strict=True):
            x = layer(x, cond, rope, kv, mask)
        x, _ = self.final_norm(x, cond)
        return self.action_out(x)

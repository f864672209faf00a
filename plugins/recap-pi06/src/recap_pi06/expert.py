"""The flow-matching action expert (pi0 / pi0.5 with knowledge insulation).

One expert layer per backbone layer, with its own (smaller) width and weights but the backbone's head layout, so
that at layer l the expert's tokens attend to the concatenation of the backbone's keys/values of layer l (the
context: images, prompt, state, sub-task and indicator, never the FAST tokens) and their own. The context
keys/values are detached: the flow loss cannot reach the backbone (knowledge insulation, Driess et al. 2025).

Flow time tau enters in one of two ways (``ExpertShape.time_conditioning``):

* ``adarms`` (pi0.5): ``c = silu(time_mlp(sincos(tau)))`` modulates every norm of the expert (adaptive RMSNorm,
  residual ``x + y * gate``);
* ``concat`` (pi0): each action token is ``mlp_out(silu(mlp_in([action_in(x), sincos(tau)])))`` and the norms are
  plain Gemma RMSNorms. With ``state_token`` (pi0), ``state_proj(state)`` is one more token in front of the
  actions: it sees the context and itself, the actions see the context, the state and each other.

With a Gemma 3 backbone (``DecoderShape.flavour = "gemma3"``) the expert is Gemma 3 style too: QK-norm, a plain
RMSNorm after attention and after the MLP (inside the gated residual: ``x + post_norm(attn(ada_norm(x))) * gate``),
the backbone's attention scale, and layer l is local (sliding window, local rotary base) exactly when backbone
layer l is.

Velocity field: ``v_theta(x_tau, tau, context) ~ u = eps - a`` (see ``docs/vla.md``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recap_pi06.backbone import KVCache
from recap_pi06.config import DecoderShape, ExpertShape
from recap_pi06.gemma3 import layer_masks, layer_ropes, valid_positions
from recap_pi06.layers import QKV, AdaRMSNorm, GatedMLP, RMSNorm, attend, sincos_embedding


class ExpertNorm(nn.Module):
    """The expert's norm: adaptive (returns the raw gate) or a plain Gemma RMSNorm (gate None: plain residual)."""

    def __init__(self, dim: int, shape: ExpertShape, eps: float) -> None:
        super().__init__()
        self.adaptive = shape.time_conditioning == "adarms"
        self.norm = AdaRMSNorm(dim, shape.width, eps) if self.adaptive else RMSNorm(dim, eps)
        self.register_load_state_dict_pre_hook(_older_adaptive_norm)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.adaptive:
            return self.norm(x, cond)
        return self.norm(x), None


def _older_adaptive_norm(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Checkpoints written before openpi's convention: ``modulation`` (the same Linear) gave gate ``1 + g``, and
    the final norm had no gate rows. The raw gate is ``1 + g``, so its bias moves up by one."""
    weight = state_dict.pop(f"{prefix}modulation.weight", None)
    bias = state_dict.pop(f"{prefix}modulation.bias", None)
    if weight is None or bias is None or not module.adaptive:
        return
    dim = module.norm.dense.out_features // 3
    if bias.shape[0] == 2 * dim:  # the ungated final norm: gate rows giving a unit gate (unused there anyway)
        weight = torch.cat([weight, weight.new_zeros(dim, weight.shape[1])])
        bias = torch.cat([bias, bias.new_zeros(dim)])
    state_dict.setdefault(f"{prefix}norm.dense.weight", weight)
    state_dict.setdefault(f"{prefix}norm.dense.bias", torch.cat([bias[: 2 * dim], bias[2 * dim :] + 1.0]))


def gated_residual(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
    return x + y if gate is None else x + y * gate


class ExpertLayer(nn.Module):
    def __init__(self, backbone: DecoderShape, shape: ExpertShape) -> None:
        super().__init__()
        gemma3, eps = backbone.flavour == "gemma3", backbone.norm_eps
        self.scale = backbone.attention_scale
        self.attn_norm = ExpertNorm(shape.width, shape, eps)
        self.attn = QKV(
            shape.width, backbone.num_heads, backbone.num_kv_heads, backbone.head_dim, eps if gemma3 else None
        )
        self.mlp_norm = ExpertNorm(shape.width, shape, eps)
        self.mlp = GatedMLP(shape.width, shape.mlp_dim)
        # Gemma 3's norms after each sublayer (parameter-free identities for Gemma 1)
        self.post_attn_norm = RMSNorm(shape.width, eps) if gemma3 else nn.Identity()
        self.post_mlp_norm = RMSNorm(shape.width, eps) if gemma3 else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None,
        rope: tuple[torch.Tensor, torch.Tensor],
        context: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor,
    ) -> torch.Tensor:
        h, gate = self.attn_norm(x, cond)
        q, k, v = self.attn.project(h, rope)
        k = torch.cat([context[0].detach(), k], dim=2)  # stop-gradient into the backbone
        v = torch.cat([context[1].detach(), v], dim=2)
        x = gated_residual(x, self.post_attn_norm(self.attn.out(attend(q, k, v, mask, self.scale))), gate)
        h, gate = self.mlp_norm(x, cond)
        return gated_residual(x, self.post_mlp_norm(self.mlp(h)), gate)


class ActionExpert(nn.Module):
    """Maps a noisy normalised chunk ``x_tau`` ``[B, H, A]`` and ``tau`` ``[B]`` to a velocity ``[B, H, A]``."""

    def __init__(
        self, backbone: DecoderShape, shape: ExpertShape, action_dim: int, *, state_dim: int = 0
    ) -> None:
        super().__init__()
        self.width, self.backbone_shape = shape.width, backbone
        self.adaptive = shape.time_conditioning == "adarms"
        self.action_in = nn.Linear(action_dim, shape.width)
        if self.adaptive:
            self.time_mlp = nn.Sequential(
                nn.Linear(shape.width, shape.width), nn.SiLU(), nn.Linear(shape.width, shape.width), nn.SiLU()
            )
        else:
            self.time_mix = nn.Sequential(
                nn.Linear(2 * shape.width, shape.width), nn.SiLU(), nn.Linear(shape.width, shape.width)
            )
        self.state_proj = nn.Linear(state_dim, shape.width) if state_dim > 0 else None
        self.layers = nn.ModuleList(ExpertLayer(backbone, shape) for _ in range(backbone.depth))
        self.final_norm = ExpertNorm(shape.width, shape, backbone.norm_eps)
        self.action_out = nn.Linear(shape.width, action_dim)

    def embed(
        self, x_tau: torch.Tensor, tau: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The expert's input tokens (``[state] + actions``) and the adaptive-norm condition (None for pi0)."""
        time = sincos_embedding(tau, self.width).to(x_tau.dtype)
        x = self.action_in(x_tau)
        if self.adaptive:
            cond = self.time_mlp(time)
        else:
            cond = None
            x = self.time_mix(torch.cat([x, time[:, None, :].expand_as(x)], dim=-1))
        if self.state_proj is not None:
            if state is None:
                raise ValueError("this expert takes the robot state as a token; pass state [B, state_dim]")
            x = torch.cat([self.state_proj(state)[:, None, :], x], dim=1)
        return x, cond

    def forward(
        self,
        x_tau: torch.Tensor,
        tau: torch.Tensor,
        context: KVCache,
        context_valid: torch.Tensor,
        start_positions: torch.Tensor,
        state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``context`` holds per-layer backbone keys/values ``[B, Hkv, Lc, d]`` with validity ``[B, Lc]``; the
        expert's tokens sit at rotary positions ``start_positions[b] + k``; the action tokens attend to each other
        bidirectionally (and to the state token, which does not see them)."""
        b, h, _ = x_tau.shape
        x, cond = self.embed(x_tau, tau, state)
        n = x.shape[1]
        positions = start_positions[:, None] + torch.arange(n, device=x.device)[None, :]
        ropes = layer_ropes(self.backbone_shape, positions)
        own = torch.ones(n, n, dtype=torch.bool, device=x.device)
        if n > h:  # the state token sees only itself among the expert's tokens
            own[0, 1:] = False
        mask = torch.cat([context_valid[:, None, :].expand(b, n, -1), own.expand(b, n, n)], dim=-1)
        key_positions = torch.cat([valid_positions(context_valid), positions], dim=1)
        masks = layer_masks(self.backbone_shape, mask, positions, key_positions)
        kinds = self.backbone_shape.layer_kinds
        for layer, kv, kind in zip(self.layers, context, kinds, strict=True):
            x = layer(x, cond, ropes[kind], kv, masks[kind])
        x, _ = self.final_norm(x, cond)
        return self.action_out(x[:, n - h :])

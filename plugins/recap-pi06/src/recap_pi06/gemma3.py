"""The Gemma 3 decoder flavour (``DecoderShape.flavour = "gemma3"``) and the Gemma 3 image projector.

A Gemma 3 layer differs from a Gemma 1 layer in three ways:

* queries and keys are RMS-normed over head_dim before rotation (QK-norm, in :class:`~recap_pi06.layers.QKV`);
* four norms: ``x + post_attn_norm(attn(attn_norm(x)))`` then ``x + post_mlp_norm(mlp(mlp_norm(x)))``;
* layers come in two kinds (``DecoderShape.layer_kinds``): ``global`` layers attend to every key the mask allows,
  with rotary base ``rope_theta`` (frequencies divided by ``rope_scaling``); ``local`` layers additionally only
  see keys fewer than ``sliding_window`` positions before the query, with rotary base ``local_rope_theta``.

The sliding window is applied on top of whatever mask the caller builds (our prefix-LM mask for the VLA): a key
is visible to a local layer iff the mask allows it and ``key_position > query_position - sliding_window``, which
is transformers' composition ``AND(window, OR(causal, bidirectional block))`` when the positions are indices.
``local_mask`` replaces the derived mask (the explicit-mask path: equivalence tests hand in transformers' own).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recap_pi06.config import DecoderShape, VisionShape
from recap_pi06.layers import QKV, GatedMLP, RMSNorm, rope_tables, self_attention

Rope = tuple[torch.Tensor, torch.Tensor]


def layer_ropes(shape: DecoderShape, positions: torch.Tensor) -> dict[str, Rope]:
    """The rotary tables of each layer kind the decoder has, for ``positions`` ``[B, L]``."""
    kinds = set(shape.layer_kinds)
    ropes = {}
    if "global" in kinds:
        scaling = shape.rope_scaling if shape.flavour == "gemma3" else 1.0
        ropes["global"] = rope_tables(positions, shape.head_dim, shape.rope_theta, scaling)
    if "local" in kinds:
        ropes["local"] = rope_tables(positions, shape.head_dim, shape.local_rope_theta)
    return ropes


def layer_masks(
    shape: DecoderShape,
    mask: torch.Tensor,
    query_positions: torch.Tensor,
    key_positions: torch.Tensor,
    local_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The attention mask of each layer kind: ``mask`` for global layers, ``mask`` cut to the sliding window (or
    ``local_mask`` when given) for local ones. Positions: ``[B, Lq]`` and ``[B, Lk]``."""
    masks = {"global": mask}
    if "local" in shape.layer_kinds:
        if local_mask is None:
            window = key_positions[:, None, :] > query_positions[:, :, None] - shape.sliding_window
            local_mask = mask & window
        masks["local"] = local_mask
    return masks


def valid_positions(valid: torch.Tensor) -> torch.Tensor:
    """Rotary positions of a row of tokens: the count of valid tokens before each (padding takes no position)."""
    return (valid.long().cumsum(1) - 1).clamp_min(0)


class Gemma3Layer(nn.Module):
    """A Gemma 3 decoder layer (QK-norm, four norms); maps ``(x, rope, mask, past) -> (x, (keys, values))`` like
    :class:`~recap_pi06.backbone.GemmaLayer`, the decoder handing it the rope and mask of its kind."""

    def __init__(self, shape: DecoderShape) -> None:
        super().__init__()
        self.scale = shape.attention_scale
        self.attn_norm = RMSNorm(shape.width, shape.norm_eps)
        self.attn = QKV(shape.width, shape.num_heads, shape.num_kv_heads, shape.head_dim, shape.norm_eps)
        self.post_attn_norm = RMSNorm(shape.width, shape.norm_eps)
        self.mlp_norm = RMSNorm(shape.width, shape.norm_eps)
        self.mlp = GatedMLP(shape.width, shape.mlp_dim)
        self.post_mlp_norm = RMSNorm(shape.width, shape.norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        rope: Rope,
        mask: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        attended, kv = self_attention(self.attn, self.attn_norm(x), rope, mask, past, self.scale)
        x = x + self.post_attn_norm(attended)
        x = x + self.post_mlp_norm(self.mlp(self.mlp_norm(x)))
        return x, kv


class Gemma3Projector(nn.Module):
    """Gemma 3's multi-modal projector: patch features ``[B, side^2, W]`` are average-pooled in square windows
    (``VisionShape.pool_kernel``: 4x4 for the 64x64 grid of 896 px frames, 1x1 at 224 px) down to
    ``tokens_per_image`` tokens, RMS-normed (``mm_soft_emb_norm``) and multiplied by a bare matrix ``weight``
    ``[vision width, decoder width]`` (``mm_input_projection_weight``: ``x @ W``)."""

    def __init__(self, shape: VisionShape, out_dim: int) -> None:
        super().__init__()
        self.kernel = shape.pool_kernel
        self.norm = RMSNorm(shape.width, shape.layer_norm_eps)
        self.weight = nn.Parameter(torch.randn(shape.width, out_dim) / math.sqrt(shape.width))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, n, w = features.shape
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"the gemma3 projector pools a square grid of patches; got {n} patches")
        grid = features.transpose(1, 2).reshape(b, w, side, side)
        pooled = F.avg_pool2d(grid, self.kernel).flatten(2).transpose(1, 2)
        return self.norm(pooled) @ self.weight


def interpolate_positions(table: torch.Tensor, side: int) -> torch.Tensor:
    """A learned SigLIP position table ``[n*n, W]`` resized to ``[side*side, W]`` (bicubic, as transformers'
    ``interpolate_pos_encoding``): how an 896 px checkpoint (64x64 patches) runs at 224 px (16x16)."""
    n = math.isqrt(table.shape[0])
    if n * n != table.shape[0]:
        raise ValueError(f"a position table of {table.shape[0]} rows is not a square grid")
    if n == side:
        return table
    grid = table.float().reshape(1, n, n, -1).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
    return resized.permute(0, 2, 3, 1).reshape(side * side, -1).to(table.dtype)

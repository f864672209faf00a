"""The Gemma-style decoder (the VLM backbone) with a prefix KV cache, and the ViT patch encoder."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recap_pi06.config import DecoderShape, VisionShape
from recap_pi06.gemma3 import Gemma3Layer, Gemma3Projector, layer_masks, layer_ropes
from recap_pi06.layers import QKV, GatedMLP, RMSNorm, self_attention

#: per-layer (keys, values), each ``[B, Hkv, L, d]``, keys already rotated
KVCache = list[tuple[torch.Tensor, torch.Tensor]]


class GemmaLayer(nn.Module):
    """A Gemma 1 decoder layer: ``x + attn(norm(x))`` then ``x + mlp(norm(x))`` (the checkpoints call the second
    norm ``post_attention_layernorm``, but it is the pre-MLP norm)."""

    def __init__(self, shape: DecoderShape) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(shape.width, shape.norm_eps)
        self.attn = QKV(shape.width, shape.num_heads, shape.num_kv_heads, shape.head_dim)
        self.mlp_norm = RMSNorm(shape.width, shape.norm_eps)
        self.mlp = GatedMLP(shape.width, shape.mlp_dim)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        attended, kv = self_attention(self.attn, self.attn_norm(x), rope, mask, past)
        x = x + attended
        x = x + self.mlp(self.mlp_norm(x))
        return x, kv


#: The layer class of each decoder flavour (``DecoderShape.flavour``); every layer maps
#: ``(x, rope, mask, past) -> (x, (keys, values))`` so the caches and masks around it do not change.
DECODER_LAYERS: dict[str, type[nn.Module]] = {"gemma": GemmaLayer, "gemma3": Gemma3Layer}


class Decoder(nn.Module):
    """Gemma-style decoder over token embeddings. The embedding table doubles as the output head (tied weights,
    read with ``F.linear`` so no tensor is shared in the state dict)."""

    def __init__(self, shape: DecoderShape, vocab_size: int) -> None:
        super().__init__()
        self.shape = shape
        self.embed = nn.Embedding(vocab_size, shape.width)
        nn.init.normal_(self.embed.weight, std=1.0 / math.sqrt(shape.width))
        layer = DECODER_LAYERS[shape.flavour]
        self.layers = nn.ModuleList(layer(shape) for _ in range(shape.depth))
        self.final_norm = RMSNorm(shape.width, shape.norm_eps)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Gemma scales input embeddings by sqrt(width), rounded to the table's dtype (as the checkpoints were
        trained: 55.5 rather than 55.43 for width 3072 in bf16)."""
        weight = self.embed.weight
        return self.embed(ids) * torch.tensor(math.sqrt(self.shape.width), dtype=weight.dtype)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        past: KVCache | None = None,
        *,
        key_positions: torch.Tensor | None = None,
        local_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """``x`` ``[B, L, width]`` embeddings; ``mask`` ``[B, L, L_past + L]``. Returns the final-normed hidden
        states and the per-layer keys/values of past + new tokens (the grown cache).

        Gemma 3's local layers cut ``mask`` to their sliding window using ``key_positions`` ``[B, L_past + L]``
        (default: ``positions``, right without a cache), or use ``local_mask`` as it is (``recap_pi06.gemma3``).
        """
        kinds = self.shape.layer_kinds
        if key_positions is None:
            if past is not None and "local" in kinds and local_mask is None:
                raise ValueError("a cached forward through sliding-window layers needs key_positions")
            key_positions = positions
        ropes = layer_ropes(self.shape, positions)
        masks = layer_masks(self.shape, mask, positions, key_positions, local_mask)
        cache: KVCache = []
        for i, (layer, kind) in enumerate(zip(self.layers, kinds, strict=True)):
            x, kv = layer(x, ropes[kind], masks[kind], None if past is None else past[i])
            cache.append(kv)
        return self.final_norm(x), cache

    def logits(self, hidden: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Logits over the vocabulary rows ``[start, stop)`` (one token family: text or FAST)."""
        return F.linear(hidden, self.embed.weight[start:stop])


class VisionEncoder(nn.Module):
    """ViT patch encoder shared by all cameras, projected to the decoder width: conv patchify, positions (fixed 2D
    sine-cosine, or SigLIP's learned table), pre-LayerNorm blocks with GELU(tanh) MLPs, a final LayerNorm and a
    linear projection (PaliGemma's multi-modal projector)."""

    def __init__(self, shape: VisionShape, out_dim: int) -> None:
        super().__init__()
        self.shape = shape
        self.patchify = nn.Conv2d(3, shape.width, kernel_size=shape.patch_size, stride=shape.patch_size)
        if shape.flavour == "siglip":
            patches = (shape.image_size // shape.patch_size) ** 2
            self.positions = nn.Parameter(torch.randn(patches, shape.width) / math.sqrt(shape.width))
        self.blocks = nn.Sequential(*(VisionBlock(shape) for _ in range(shape.depth)))
        self.norm = nn.LayerNorm(shape.width, eps=shape.layer_norm_eps)
        self.project: nn.Module = (
            Gemma3Projector(shape, out_dim)
            if shape.projector == "gemma3"
            else nn.Linear(shape.width, out_dim)
        )

    def frame_size(self, height: int, width: int) -> tuple[int, int]:
        """The size frames are brought to: the configured square, or the native size cut to whole patches."""
        p, s = self.shape.patch_size, self.shape.image_size
        if s > 0:
            return (s // p) * p, (s // p) * p
        return (height // p) * p, (width // p) * p

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, H, W, 3]`` -> tokens ``[B, N, out_dim]``."""
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        size = self.frame_size(x.shape[-2], x.shape[-1])
        if size[0] < self.shape.patch_size or size[1] < self.shape.patch_size:
            raise ValueError(
                f"frames of {tuple(frames.shape[1:3])} are smaller than one {self.shape.patch_size} patch"
            )
        if self.shape.image_size > 0 and tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        else:
            x = x[..., : size[0], : size[1]]
        return self.encode_pixels(x)

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, 3, H, W]`` in ``[-1, 1]`` (whole patches) -> tokens ``[B, N, out_dim]``."""
        return self.project(self.features(pixels))

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The tower's final-normed patch features ``[B, N, width]`` (SigLIP's ``last_hidden_state``)."""
        x = self.patchify(pixels)  # [B, W, h, w]
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        if self.shape.flavour == "siglip":
            if x.shape[1] != self.positions.shape[0]:
                raise ValueError(
                    f"the siglip tower has {self.positions.shape[0]} learned positions but the frames give "
                    f"{x.shape[1]} patches; feed {self.shape.image_size}x{self.shape.image_size} frames"
                )
            x = x + self.positions
        else:
            x = x + _sincos_2d(h, w, self.shape.width, x.device)
        return self.norm(self.blocks(x))


class VisionBlock(nn.Module):
    """Pre-LayerNorm ViT block (SigLIP): biased attention projections and a GELU(tanh) MLP. Written out rather
    than ``nn.TransformerEncoderLayer``, whose eval-mode fast path changes the numbers between train and eval."""

    def __init__(self, shape: VisionShape) -> None:
        super().__init__()
        if shape.width % shape.heads:
            raise ValueError(f"vision width {shape.width} is not a multiple of its {shape.heads} heads")
        self.heads = shape.heads
        self.norm1 = nn.LayerNorm(shape.width, eps=shape.layer_norm_eps)
        self.q = nn.Linear(shape.width, shape.width)
        self.k = nn.Linear(shape.width, shape.width)
        self.v = nn.Linear(shape.width, shape.width)
        self.out = nn.Linear(shape.width, shape.width)
        self.norm2 = nn.LayerNorm(shape.width, eps=shape.layer_norm_eps)
        self.fc1 = nn.Linear(shape.width, shape.mlp_dim)
        self.fc2 = nn.Linear(shape.mlp_dim, shape.width)
        self.register_load_state_dict_pre_hook(_split_fused_qkv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        h = self.norm1(x)
        q, k, v = (
            proj(h).view(b, n, self.heads, w // self.heads).transpose(1, 2)
            for proj in (self.q, self.k, self.v)
        )
        x = x + self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, w))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))


def _split_fused_qkv(_module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Checkpoints written before the SigLIP flavour kept one fused ``qkv`` projection (rows q, then k, then v)."""
    for kind in ("weight", "bias"):
        fused = state_dict.pop(f"{prefix}qkv.{kind}", None)
        if fused is not None:
            for name, part in zip("qkv", fused.chunk(3), strict=True):
                state_dict.setdefault(f"{prefix}{name}.{kind}", part)


def _sincos_2d(h: int, w: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed 2D sine-cosine patch positions ``[h*w, dim]`` (no parameters, any frame size)."""
    quarter = dim // 4
    omega = 1.0 / 10_000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / max(quarter, 1))
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    parts = [f(c.flatten()[:, None] * omega[None, :]) for c in (ys, xs) for f in (torch.sin, torch.cos)]
    return F.pad(torch.cat(parts, dim=-1), (0, dim - 4 * quarter))

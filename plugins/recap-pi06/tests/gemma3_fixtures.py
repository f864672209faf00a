"""Tiny random transformers Gemma 3 reference models (multimodal and text only), built from configs and saved with
``save_pretrained``. Seven layers, so local (sliding-window) layers come before and after the global sixth one;
the window (4) is shorter than the test sequences; global layers use linear rope scaling x8 as Gemma 3 4B does;
the attention scale (query_pre_attn_scalar 16) differs from head_dim's."""

from __future__ import annotations

from pathlib import Path

import hf_fixtures
import torch
from hf_fixtures import _randomise

IMAGE = 32  # 4x4 patches of 8, pooled 2x2 to 4 tokens per image (Gemma 3 4B: 64x64 pooled 4x4 to 256)
TOKENS_PER_IMAGE = 4
IMAGE_TOKEN = 299
TEXT = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=7,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    vocab_size=300,
    sliding_window=4,
    query_pre_attn_scalar=16,
    rope_parameters={
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
        "sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
    },
)
VISION = {**hf_fixtures.VISION, "image_size": IMAGE}


def gemma3_vlm(directory: Path, seed: int = 0):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    config = Gemma3Config(
        text_config=TEXT,
        vision_config=dict(model_type="siglip_vision_model", **VISION),
        mm_tokens_per_image=TOKENS_PER_IMAGE,
        image_token_index=IMAGE_TOKEN,
        boi_token_index=297,
        eoi_token_index=298,
    )
    model = Gemma3ForConditionalGeneration(config).eval()
    _randomise(model, seed)
    model.save_pretrained(directory)
    return model


def gemma3_text(directory: Path, seed: int = 0, **overrides):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(**{**TEXT, **overrides})
    config._attn_implementation = "eager"  # sdpa hands a plain causal mask over as None; eager builds it
    model = Gemma3ForCausalLM(config).eval()
    _randomise(model, seed)
    model.save_pretrained(directory)
    return model


def siglip_tower(directory: Path, seed: int = 0, image_size: int = IMAGE):
    from transformers import SiglipVisionConfig, SiglipVisionModel

    model = SiglipVisionModel(SiglipVisionConfig(**{**VISION, "image_size": image_size})).eval()
    _randomise(model, seed)
    model.save_pretrained(directory)
    return model


def capture_masks(model) -> dict[str, list]:
    """Forward pre-hooks on one sliding-window and one global attention module, recording the attention mask
    transformers hands them (``[B, 1, Lq, Lk]``, bool or additive float)."""
    text = model.config.get_text_config()
    layers = (
        model.model.language_model.layers if hasattr(model.model, "language_model") else model.model.layers
    )
    seen: dict[str, list] = {"local": [], "global": []}
    for kind, name in (("local", "sliding_attention"), ("global", "full_attention")):
        layer = layers[text.layer_types.index(name)]

        def hook(module, args, kwargs, kind=kind):
            seen[kind].append(kwargs["attention_mask"])

        layer.self_attn.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def as_bool(mask: torch.Tensor) -> torch.Tensor:
    """transformers' ``[B, 1, Lq, Lk]`` mask (bool, or additive float with 0 where attending) as ``[B, Lq, Lk]``."""
    return mask[:, 0] if mask.dtype == torch.bool else mask[:, 0] == 0

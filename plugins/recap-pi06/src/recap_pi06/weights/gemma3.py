"""Gemma 3 checkpoints: key layouts, the decoder and projector settings from ``config.json``, a SigLIP position
table resized to the preset's resolution, and several checkpoints read as one (a text-only Gemma 3 beside a SigLIP
tower, for the value model).

Layouts (on top of those of ``layouts.py``):

* ``Gemma3ForConditionalGeneration``: ``model.language_model.*`` (transformers 5) or ``language_model.model.*``
  (the hub files of Gemma 3 4B), ``[model.]vision_tower.vision_model.*``, and the projector
  ``[model.]multi_modal_projector.{mm_input_projection_weight, mm_soft_emb_norm.weight}``;
* ``Gemma3ForCausalLM`` (text only, e.g. Gemma 3 270M): ``model.{embed_tokens, layers, norm}.*``.

A Gemma 3 layer's ``post_attention_layernorm`` follows attention (in Gemma 1 it is the pre-MLP norm), so a
checkpoint is read as Gemma 3 when it has ``pre_feedforward_layernorm`` keys or the Gemma 3 projector.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs
import torch

from recap.errors import ConfigError
from recap_pi06.config import DecoderShape, VisionShape
from recap_pi06.gemma3 import interpolate_positions
from recap_pi06.weights.layouts import target_of
from recap_pi06.weights.reader import CheckpointFiles

C = TypeVar("C")

_NORMS = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "post_attn_norm",
    "pre_feedforward_layernorm": "mlp_norm",
    "post_feedforward_layernorm": "post_mlp_norm",
    "self_attn.q_norm": "attn.q_norm",
    "self_attn.k_norm": "attn.k_norm",
}
_LAYER_NORM = re.compile(r"(.*\.layers\.\d+\.)(" + "|".join(re.escape(n) for n in _NORMS) + r")\.weight")
_PROJECTOR = {
    "mm_input_projection_weight": "trunk.vision.project.weight",
    "mm_soft_emb_norm.weight": "trunk.vision.project.norm.weight",
}
_TEXT_ONLY = re.compile(r"model\.(?=embed_tokens\.|layers\.|norm\.)")
POSITIONS = "trunk.vision.positions"


def is_gemma3(names: Iterable[str]) -> bool:
    return any("pre_feedforward_layernorm" in n or "mm_input_projection_weight" in n for n in names)


def gemma3_target_of(key: str) -> str | None:
    """The pi06 parameter a Gemma 3 checkpoint key fills (``layouts.target_of`` for what Gemma 3 shares with
    PaliGemma: the SigLIP tower, the embedding, the projections of each layer)."""
    key = _TEXT_ONLY.sub("model.language_model.", key, count=1) if _TEXT_ONLY.match(key) else key
    name = key.rpartition("multi_modal_projector.")[2] if "multi_modal_projector." in key else None
    if name is not None:
        return _PROJECTOR.get(name)
    m = _LAYER_NORM.fullmatch(key)
    if m is None:
        return target_of(key)
    probe = target_of(m.group(1) + "self_attn.q_proj.weight")  # where this layer lives: decoder or expert
    if probe is None or not probe.startswith("trunk.decoder."):
        return None
    return probe.removesuffix("attn.q.weight") + _NORMS[m.group(2)] + ".weight"


def _rope(params: dict[str, Any], kind: str, default_theta: float) -> tuple[float, float]:
    """(theta, linear scaling factor) of one layer kind from transformers' ``rope_parameters``."""
    entry = params.get(kind) or {}
    kind_of_rope = entry.get("rope_type", "default")
    if kind_of_rope not in ("default", "linear"):
        raise ConfigError(
            f"Gemma 3 {kind} layers use rope_type {kind_of_rope!r}; recap reads default and linear"
        )
    return float(entry.get("rope_theta", default_theta)), float(entry.get("factor", 1.0))


def gemma3_decoder(text: dict[str, Any], shape: DecoderShape) -> DecoderShape:
    """``shape`` (its sizes already read from the tensors) as the Gemma 3 decoder ``text`` (a text config)
    describes: layer pattern, window, rotary bases and scaling, attention scale."""
    layer_types = text.get("layer_types")
    pattern = int(text.get("sliding_window_pattern", 6))
    if layer_types:
        if "full_attention" not in layer_types:
            pattern = shape.depth + 1  # no global layer
        else:
            pattern = layer_types.index("full_attention") + 1
        decoded = [
            "full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(shape.depth)
        ]
        if list(layer_types) != decoded:
            raise ConfigError(
                f"config.json's layer_types {layer_types} is not one global layer every {pattern}; recap's Gemma 3 "
                "decoder takes that pattern only"
            )
    params = text.get("rope_parameters") or {}
    rope_theta, scaling = _rope(params, "full_attention", float(text.get("rope_theta", 1e6)))
    local_theta, local_scaling = _rope(
        params, "sliding_attention", float(text.get("rope_local_base_freq", 1e4))
    )
    if local_scaling != 1.0:
        raise ConfigError("Gemma 3 local layers with scaled rotary positions are not supported")
    if "rope_scaling" in text and text["rope_scaling"]:  # transformers 4 files
        scaling = float(text["rope_scaling"].get("factor", 1.0))
    return attrs.evolve(
        shape,
        flavour="gemma3",
        sliding_window=int(text.get("sliding_window", shape.sliding_window)),
        sliding_window_pattern=pattern,
        rope_theta=rope_theta,
        local_rope_theta=local_theta,
        rope_scaling=scaling,
        query_pre_attn_scalar=float(text.get("query_pre_attn_scalar", shape.head_dim)),
    )


def gemma3_config(files: Any, config: C, base: C) -> C:
    """``config`` (shapes from the tensors) with the Gemma 3 decoder settings when the checkpoint has a Gemma 3
    decoder and, when it brings a vision tower, the Gemma 3 projector at the preset's resolution
    (``base.vision.image_size``; the position table is interpolated to it on load:
    :meth:`CombinedCheckpoint.fit_positions`). Tokens per image: the checkpoint's ``mm_tokens_per_image`` (256
    for Gemma 3), else the preset's."""
    meta = files.config_json()
    if any("pre_feedforward_layernorm" in n for n in files.names()):
        config = attrs.evolve(config, backbone=gemma3_decoder(meta.get("text_config", meta), config.backbone))
    if any(gemma3_target_of(k) == POSITIONS for k in files.names()):
        size = base.vision.image_size if base.vision.image_size > 0 else config.vision.image_size
        tokens = int(meta.get("mm_tokens_per_image", base.vision.tokens_per_image))
        vision = attrs.evolve(config.vision, projector="gemma3", image_size=size, tokens_per_image=tokens)
        config = attrs.evolve(config, vision=vision)
    return config


class CombinedCheckpoint:
    """One or several checkpoints read as one (``CheckpointFiles``' interface): e.g. a text-only Gemma 3 and a
    SigLIP tower for the value model; a key in two of them is refused. After :meth:`fit_positions` a SigLIP
    position table of another grid is resized (bicubic) as it is read."""

    def __init__(self, paths: list[str | Path]) -> None:
        self.parts = [CheckpointFiles(p) for p in paths]
        self.root = self.parts[0].root
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.owner: dict[str, CheckpointFiles] = {}
        for part in self.parts:
            for key, shape in part.shapes.items():
                if key in self.owner:
                    raise ConfigError(f"{key} is in both {self.owner[key].root} and {part.root}")
                self.owner[key], self.shapes[key] = part, shape
        self.resize_to: dict[str, int] = {}

    def fit_positions(self, vision: VisionShape) -> None:
        """Read the position table at ``vision``'s grid (the preset's resolution, not the checkpoint's)."""
        side = vision.image_size // vision.patch_size
        for key, shape in list(self.shapes.items()):
            if gemma3_target_of(key) == POSITIONS and vision.image_size > 0 and shape[0] != side * side:
                self.resize_to[key] = side
                self.shapes[key] = (side * side, *shape[1:])

    def names(self) -> list[str]:
        return list(self.shapes)

    def copy_into(self, assignments: dict[str, torch.Tensor], progress: Any = None) -> None:
        """``CheckpointFiles.copy_into`` over every part, one progress display for all; a resized position table
        is read at its stored shape, then interpolated into its target."""
        total = len(assignments)
        shared = progress(iter(range(total)), total) if progress else iter(range(total))

        def tick(items: Iterable[int], _: int) -> Iterator[int]:
            for item in items:
                next(shared, None)
                yield item

        for part in self.parts:
            mine = {k: t for k, t in assignments.items() if self.owner[k] is part}
            part.copy_into({k: t for k, t in mine.items() if k not in self.resize_to}, tick)
            for key in mine.keys() & self.resize_to.keys():
                stored = torch.empty(part.shapes[key], dtype=mine[key].dtype)
                part.copy_into({key: stored}, tick)
                mine[key].copy_(interpolate_positions(stored, self.resize_to[key]))
        for _ in shared:  # let the display finish
            pass

    def config_json(self) -> dict[str, Any]:
        """The checkpoint's ``config.json``; for several, the text model's as ``text_config`` and the vision
        tower's as ``vision_config``."""
        metas = [p.config_json() for p in self.parts]
        if len(metas) == 1:
            return metas[0]
        merged: dict[str, Any] = {}
        for meta in metas:
            if "text_config" in meta or "num_hidden_layers" in meta and "vocab_size" in meta:
                merged["text_config"] = meta.get("text_config", meta)
            if "vision_config" in meta or "patch_size" in meta:
                merged["vision_config"] = meta.get("vision_config", meta)
        return merged

"""Key layouts of public checkpoints, translated to the pi0.6-style VLA's parameter names.

Accepted layouts (detected per key, so a checkpoint mixing them is fine):

* pi0 / pi0.5 as openpi's converter and LeRobot write them: ``[model.]paligemma_with_expert.paligemma.model.
  {vision_tower, multi_modal_projector, language_model}.*``, ``paligemma_with_expert.gemma_expert.model.*``, the
  tied language-model embedding stored as ``paligemma_with_expert.paligemma.lm_head.weight``, and the projections
  ``action_in_proj``, ``action_out_proj``, ``state_proj``, ``action_time_mlp_*`` (pi0) or ``time_mlp_*`` (pi0.5);
* transformers' ``PI0ForConditionalGeneration`` in memory (``model.vlm.*``, ``model.dit.*``, ``embed_action_time.*``);
* ``PaliGemmaForConditionalGeneration`` (``language_model.model.*`` or ``model.language_model.*``, ``vision_tower.*``
  or ``vision_tower.vision_model.*``, ``multi_modal_projector.*``, ``lm_head``) and ``SiglipVisionModel``.
"""

from __future__ import annotations

import re

#: a key we know and deliberately do not load, with the reason (reported by name)
SKIP = "skip"
#: the tied output head: loaded as the embedding table when that is not stored itself
TIED_HEAD = "tied-head"

_TOP = {
    "action_in_proj": "expert.action_in",
    "action_out_proj": "expert.action_out",
    "state_proj": "expert.state_proj",
    "action_time_mlp_in": "expert.time_mix.0",
    "action_time_mlp_out": "expert.time_mix.2",
    "time_mlp_in": "expert.time_mlp.0",
    "time_mlp_out": "expert.time_mlp.2",
}
_LAYER = {
    "self_attn.q_proj": "attn.q",
    "self_attn.k_proj": "attn.k",
    "self_attn.v_proj": "attn.v",
    "self_attn.o_proj": "attn.o",
    "mlp.gate_proj": "mlp.gate",
    "mlp.up_proj": "mlp.up",
    "mlp.down_proj": "mlp.down",
}
_VISION_LAYER = {
    "layer_norm1": "norm1",
    "layer_norm2": "norm2",
    "self_attn.q_proj": "q",
    "self_attn.k_proj": "k",
    "self_attn.v_proj": "v",
    "self_attn.out_proj": "out",
    "mlp.fc1": "fc1",
    "mlp.fc2": "fc2",
}
_NORMS = {"input_layernorm": "attn_norm", "post_attention_layernorm": "mlp_norm"}


def _part(key: str) -> tuple[str, str] | None:
    """``(part, rest)`` with part one of vision, projector, lm, lm_head, expert, expert_head, top."""
    key = re.sub(r"^model\.(?=paligemma_with_expert\.|action_|state_proj|time_mlp)", "", key)
    for prefix, part in (
        ("paligemma_with_expert.paligemma.lm_head.", "lm_head"),
        ("paligemma_with_expert.gemma_expert.lm_head.", "expert_head"),
        ("paligemma_with_expert.gemma_expert.model.", "expert"),
        ("model.dit.", "expert"),
        ("embed_action_time.", "top"),
    ):
        if key.startswith(prefix):
            return part, key[len(prefix) :]
    for prefix in (
        "paligemma_with_expert.paligemma.model.",
        "paligemma_with_expert.paligemma.",
        "model.vlm.",
        "model.",
    ):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    for prefix, part in (
        ("language_model.model.", "lm"),
        ("language_model.", "lm"),
        ("lm_head.", "lm_head"),
        ("vision_tower.vision_model.", "vision"),
        ("vision_tower.", "vision"),
        ("vision_model.", "vision"),
        ("multi_modal_projector.", "projector"),
    ):
        if key.startswith(prefix):
            return part, key[len(prefix) :]
    if key.startswith(("embeddings.", "encoder.", "post_layernorm.", "head.")):
        return "vision", key  # a bare SiglipVisionModel
    head = key.split(".")[0]
    return ("top", key) if head in _TOP else None


def _vision(rest: str) -> str | None:
    if rest.startswith("head."):
        return SKIP  # SigLIP's attention-pooling head: PaliGemma and pi0 use every patch token instead
    fixed = {
        "embeddings.patch_embedding.weight": "patchify.weight",
        "embeddings.patch_embedding.bias": "patchify.bias",
        "embeddings.position_embedding.weight": "positions",
        "post_layernorm.weight": "norm.weight",
        "post_layernorm.bias": "norm.bias",
    }
    if rest in fixed:
        return "trunk.vision." + fixed[rest]
    m = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", rest)
    if m and m.group(2) in _VISION_LAYER:
        return f"trunk.vision.blocks.{m.group(1)}.{_VISION_LAYER[m.group(2)]}.{m.group(3)}"
    return None


def _decoder_layer(rest: str, root: str, adaptive_norms: bool) -> str | None:
    m = re.fullmatch(r"layers\.(\d+)\.(.+)", rest)
    if m is None:
        return None
    layer, name = m.groups()
    base, _, leaf = name.rpartition(".")
    if base in _LAYER and leaf == "weight":
        return f"{root}.layers.{layer}.{_LAYER[base]}.weight"
    norm, _, tail = name.partition(".")
    if norm in _NORMS:
        inner = ".norm" if adaptive_norms else ""
        return f"{root}.layers.{layer}.{_NORMS[norm]}{inner}.{tail}"
    return None


#: LeRobot policies saved before its processor pipelines kept their normalisation buffers in the weights file
LEROBOT_NORMALIZERS = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")


def target_of(key: str) -> str | None:
    """The pi06 parameter a checkpoint key fills, ``SKIP`` / ``TIED_HEAD`` for known unused keys, or None for a
    key of no known layout."""
    if key.removeprefix("model.").startswith(LEROBOT_NORMALIZERS):
        return SKIP
    found = _part(key)
    if found is None:
        return None
    part, rest = found
    if part == "vision":
        return _vision(rest)
    if part == "projector":
        return "trunk.vision.project." + rest.removeprefix("linear.") if rest.startswith("linear.") else None
    if part == "lm_head":
        return TIED_HEAD if rest == "weight" else None
    if part == "expert_head":
        return SKIP  # the expert never reads or writes text tokens
    if part == "lm":
        if rest == "embed_tokens.weight":
            return "trunk.decoder.embed.weight"
        if rest == "norm.weight":
            return "trunk.decoder.final_norm.weight"
        return _decoder_layer(rest, "trunk.decoder", adaptive_norms=False)
    if part == "expert":
        if rest == "embed_tokens.weight":
            return SKIP
        if rest.startswith("norm."):
            return "expert.final_norm.norm." + rest.removeprefix("norm.")
        return _decoder_layer(rest, "expert", adaptive_norms=True)
    name, _, leaf = rest.partition(".")
    return f"{_TOP[name]}.{leaf}" if name in _TOP else None


def skip_reason(key: str) -> str:
    if key.removeprefix("model.").startswith(LEROBOT_NORMALIZERS):
        return "LeRobot's normalisation buffers (statistics come from norm_stats.json or the store)"
    if ".head." in f".{key}" or key.startswith("head."):
        return "SigLIP's attention-pooling head (unused: every patch token is fed to the decoder)"
    return "the action expert's token embedding (the expert never reads text)"

"""Configs and presets of the pi0.6-style VLA (docs/pi06.md) and its value-network variant.

Shapes are nested frozen attrs classes, so a run overrides one field with e.g. ``--policy.backbone.width 256``.
The full-size presets follow the paper: ``pi06`` is the public Gemma 3 4B VLM (its SigLIP So400m tower at 224 px,
the Gemma 3 projector, the 34-layer decoder) with an ~860M-parameter action expert; ``pi06-value`` is Gemma 3 270M
with a SigLIP So400m/14 tower at 224 px (~670M in all).
"""

from __future__ import annotations

import math

import attrs
from attrs.validators import ge, gt, in_

from recap.config import PolicyConfig, ValueNetworkConfig
from recap.nn.normalizer import DEFAULT_MIN_STD

#: How patch features become decoder tokens: ``linear`` (PaliGemma: one biased linear layer per patch) or
#: ``gemma3`` (Gemma 3: an average pool down to ``tokens_per_image`` tokens, RMSNorm, a bare matrix; see
#: ``recap_pi06.gemma3``).
PROJECTORS = ("linear", "gemma3")


@attrs.frozen
class VisionShape:
    """ViT patch encoder applied to every camera (shared weights), SigLIP-style pre-norm blocks.

    ``image_size`` > 0 resizes every frame to a square of that size; 0 keeps the spec's size (cropped down to a
    multiple of ``patch_size``). Tokens per camera = (size / patch_size)^2.

    ``flavour``: ``vit`` (fixed 2D sine-cosine positions, LayerNorm eps 1e-5) or ``siglip`` (SigLIP's learned
    position table, one row per patch of an ``image_size`` frame, LayerNorm eps 1e-6), the tower of PaliGemma and
    of pi0 / pi0.5 checkpoints.

    ``projector`` (see ``PROJECTORS``); for ``gemma3``, ``tokens_per_image`` (a square) fixes the pool: a grid of
    (image_size / patch_size)^2 patches is averaged in square windows down to that many tokens.
    """

    width: int = attrs.field(default=64, validator=ge(8))
    depth: int = attrs.field(default=2, validator=ge(1))
    heads: int = attrs.field(default=4, validator=ge(1))
    mlp_dim: int = attrs.field(default=256, validator=ge(1))
    patch_size: int = attrs.field(default=8, validator=ge(1))
    image_size: int = attrs.field(default=32, validator=ge(0))
    flavour: str = attrs.field(default="vit", validator=in_(("vit", "siglip")))
    projector: str = attrs.field(default="linear", validator=in_(PROJECTORS))
    tokens_per_image: int = attrs.field(default=256, validator=ge(1))

    def __attrs_post_init__(self) -> None:
        if self.flavour == "siglip" and (self.image_size <= 0 or self.image_size % self.patch_size):
            raise ValueError(
                f"the siglip flavour learns one position per patch, so image_size must be a positive multiple of "
                f"patch_size ({self.patch_size}); got {self.image_size}"
            )
        if self.projector == "gemma3":
            _ = self.pool_kernel  # raises on a grid that does not pool evenly

    @property
    def pool_kernel(self) -> int:
        """The side of the Gemma 3 projector's average-pool window (patches per side / tokens per side)."""
        side, tokens_side = self.image_size // self.patch_size, math.isqrt(self.tokens_per_image)
        if self.image_size <= 0 or tokens_side**2 != self.tokens_per_image or side % tokens_side:
            raise ValueError(
                f"the gemma3 projector pools a square grid of patches to tokens_per_image "
                f"({self.tokens_per_image}, a square); image_size {self.image_size} / patch_size "
                f"{self.patch_size} = {side} patches a side is not a multiple of {tokens_side}"
            )
        return side // tokens_side

    @property
    def layer_norm_eps(self) -> float:
        return 1e-6 if self.flavour == "siglip" else 1e-5


#: Decoder flavours: ``gemma`` is Gemma 1 (PaliGemma, the pi0 / pi0.5 backbone and expert): RMSNorm scaling by
#: ``1 + w``, embeddings times sqrt(width), GELU(tanh) GeGLU MLP, pre-attention and pre-MLP norms only.
#: ``gemma3`` (``recap_pi06.gemma3``) adds RMSNorms over head_dim on queries and keys, norms after attention and
#: MLP, and sliding-window (local) layers between the global ones.
DECODER_FLAVOURS = ("gemma", "gemma3")


@attrs.frozen
class DecoderShape:
    """Gemma-style decoder: RMSNorm, rotary positions, gated (GeGLU) MLP, grouped-query attention.

    ``rope_theta`` is the rotary base of the global layers. Gemma 3 only (``flavour = gemma3``): layer i is global
    when ``(i + 1) % sliding_window_pattern == 0``, the others local: a query sees keys fewer than
    ``sliding_window`` positions before it, with rotary base ``local_rope_theta``; ``rope_scaling`` divides the
    global layers' rotary frequencies (linear scaling, x8 in Gemma 3 4B). ``query_pre_attn_scalar`` > 0 scales
    attention logits by its inverse square root (0: by head_dim's).
    """

    width: int = attrs.field(default=128, validator=ge(8))
    depth: int = attrs.field(default=4, validator=ge(1))
    num_heads: int = attrs.field(default=4, validator=ge(1))
    num_kv_heads: int = attrs.field(default=2, validator=ge(1))
    head_dim: int = attrs.field(default=32, validator=ge(2))
    mlp_dim: int = attrs.field(default=512, validator=ge(1))
    rope_theta: float = attrs.field(default=10_000.0, validator=gt(0.0))
    norm_eps: float = attrs.field(default=1e-6, validator=gt(0.0))
    flavour: str = attrs.field(default="gemma", validator=in_(DECODER_FLAVOURS))
    sliding_window: int = attrs.field(default=1024, validator=ge(1))
    sliding_window_pattern: int = attrs.field(default=6, validator=ge(1))
    local_rope_theta: float = attrs.field(default=10_000.0, validator=gt(0.0))
    rope_scaling: float = attrs.field(default=1.0, validator=gt(0.0))
    query_pre_attn_scalar: float = attrs.field(default=0.0, validator=ge(0.0))

    @property
    def layer_kinds(self) -> tuple[str, ...]:
        """``global`` or ``local`` per layer (every layer is global but in Gemma 3)."""
        if self.flavour != "gemma3":
            return ("global",) * self.depth
        pattern = self.sliding_window_pattern
        return tuple("global" if (i + 1) % pattern == 0 else "local" for i in range(self.depth))

    @property
    def attention_scale(self) -> float:
        return (self.query_pre_attn_scalar or self.head_dim) ** -0.5

    def __attrs_post_init__(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even for rotary positions, got {self.head_dim}")


@attrs.frozen
class ExpertShape:
    """Action expert: one layer per backbone layer with the backbone's head layout, its own (smaller) width.

    ``time_conditioning``: ``adarms`` (pi0.5: the flow-time embedding goes through ``time_mlp`` and modulates every
    norm of the expert) or ``concat`` (pi0: each action token is ``mlp([action, time])``, plain norms).
    """

    width: int = attrs.field(default=64, validator=ge(8))
    mlp_dim: int = attrs.field(default=256, validator=ge(1))
    time_conditioning: str = attrs.field(default="adarms", validator=in_(("adarms", "concat")))


@attrs.frozen
class Pi06Config(PolicyConfig):
    """The pi0.6-style policy (registered as policy ``pi06``).

    Training sequence: ``[images][env][Task: prompt][state bins] -> [sub-task] -> [Advantage: positive|negative|
    absent] -> [FAST]``, with the flow-matching action expert attending to the backbone up to the indicator.

    Attributes:
        chunk_size: actions per chunk H (50 at 50 Hz).
        text_vocab_size: text BPE vocabulary (fitted by ``fit_to_data`` or loaded from ``text_tokenizer_path``).
        state_bins: state discretisation bins (each state dimension becomes one token).
        fast_vocab_size: FAST BPE vocabulary.
        fast_scale: FAST scale applied to the DCT coefficients before rounding (paper default 10).
        max_prompt_tokens / max_subtask_tokens / max_fast_tokens: segment length caps (longer is truncated).
        num_steps: Euler steps from tau = 1 to 0 when sampling.
        noise_scale: initial-noise scale when sampling; 0 is deterministic (docs/method.md, flow matching).
        uses_env_state: feed ``observation.environment_state`` as one token when the spec has it.
        kv_cache: encode the prefix once into a KV cache when sampling (False re-runs the decoder every step).
        text_tokenizer_path: a local HF ``tokenizers`` JSON file (or a SentencePiece ``.model``) to use instead
            of fitting one.
        state_input: how the robot state enters: ``bins`` (one token per dimension from its own vocabulary rows,
            after ``Task: <task>. State:``), ``text`` (pi0.5: the bin numbers written as text in
            ``Task: <task>, State: <bins>;\nAction: ``) or ``token`` (pi0: one continuous token, ``state_proj``
            of the state, first in the expert's sequence; the prompt is ``<task>\n``).
        action_pad_dim: 0, or the width actions and state are zero-padded to (32 for pi0 / pi0.5 checkpoints);
            the expert works in the padded space and sampled actions are cut back to the spec's dimension.
        normalization: ``mean_std`` (std floored at ``min_std``) or ``quantile`` (pi0.5: the 1st and 99th
            percentiles map to -1 and 1) for actions, state and env state.
        subtask: predict (and decode) the sub-task text; False leaves the segment out, so with the indicator
            dropped the context is exactly pi0's / pi0.5's ``[images][prompt]``.
        lora_rank / lora_alpha: > 0 wraps the decoder's and the expert's attention and MLP projections in LoRA
            adapters (``recap_pi06.lora``) and freezes the rest but the expert's input/output projections.
        min_std: floor on the standard deviations that normalise actions and environment state (raw units), as
            for the MLP policy (``recap.nn.Normalizer``): a joint that barely moves in the demonstrations would
            otherwise make the robot's own small deviations targets of 10+ standard deviations.
    """

    vision: VisionShape = VisionShape()
    backbone: DecoderShape = DecoderShape()
    expert: ExpertShape = ExpertShape()
    chunk_size: int = attrs.field(default=50, validator=ge(1))
    text_vocab_size: int = attrs.field(default=512, validator=ge(264))
    state_bins: int = attrs.field(default=256, validator=ge(2))
    fast_vocab_size: int = attrs.field(default=512, validator=ge(16))
    fast_scale: float = attrs.field(default=10.0, validator=gt(0.0))
    max_prompt_tokens: int = attrs.field(default=48, validator=ge(1))
    max_subtask_tokens: int = attrs.field(default=24, validator=ge(1))
    max_fast_tokens: int = attrs.field(default=256, validator=ge(2))
    num_steps: int = attrs.field(default=10, validator=ge(1))
    noise_scale: float = attrs.field(default=1.0, validator=ge(0.0))
    uses_env_state: bool = True
    kv_cache: bool = True
    text_tokenizer_path: str = ""
    state_input: str = attrs.field(default="bins", validator=in_(("bins", "text", "token")))
    action_pad_dim: int = attrs.field(default=0, validator=ge(0))
    normalization: str = attrs.field(default="mean_std", validator=in_(("mean_std", "quantile")))
    subtask: bool = True
    lora_rank: int = attrs.field(default=0, validator=ge(0))
    lora_alpha: float = attrs.field(default=16.0, validator=gt(0.0))
    min_std: float = attrs.field(default=DEFAULT_MIN_STD, validator=gt(0.0))


@attrs.frozen
class Pi06ValueConfig(ValueNetworkConfig):
    """The value-network variant (registered as value network ``pi06-value``): the same vision tower and decoder
    over ``[images][env][Task: prompt][state bins][VALUE]``, a linear head on the VALUE token gives bin logits.
    ``min_std`` floors the std that normalises environment state, as in :class:`Pi06Config`."""

    vision: VisionShape = VisionShape()
    backbone: DecoderShape = DecoderShape()
    text_vocab_size: int = attrs.field(default=512, validator=ge(264))
    state_bins: int = attrs.field(default=256, validator=ge(2))
    max_prompt_tokens: int = attrs.field(default=48, validator=ge(1))
    uses_env_state: bool = True
    text_tokenizer_path: str = ""
    min_std: float = attrs.field(default=DEFAULT_MIN_STD, validator=gt(0.0))


_TINY_VISION = VisionShape(width=16, depth=1, heads=2, mlp_dim=32, patch_size=8, image_size=16)
_TINY_DECODER = DecoderShape(width=32, depth=2, num_heads=2, num_kv_heads=1, head_dim=16, mlp_dim=64)
_SMALL_VISION = VisionShape(width=64, depth=2, heads=4, mlp_dim=256, patch_size=8, image_size=32)
_SMALL_DECODER = DecoderShape(width=128, depth=4, num_heads=4, num_kv_heads=2, head_dim=32, mlp_dim=512)
#: SigLIP So400m/14 at 224 px: width 1152, 27 blocks, 16 heads, MLP 4304.
_SO400M = VisionShape(width=1152, depth=27, heads=16, mlp_dim=4304, patch_size=14, image_size=224)
#: Gemma 3's tower: So400m with the Gemma 3 projector, 256 tokens per image. The public checkpoint is at 896 px
#: (64x64 patches pooled 4x4); at 224 px the 16x16 patches are the 256 tokens (positions interpolated on import).
_GEMMA3_VISION = attrs.evolve(_SO400M, flavour="siglip", projector="gemma3", tokens_per_image=256)
#: Gemma 3 4B language model: width 2560, 34 layers, 8 query / 4 KV heads of 256, MLP 10240, every sixth layer
#: global (rotary base 1e6 with linear scaling x8), the others a 1024-token sliding window (base 1e4).
_GEMMA3_4B = DecoderShape(
    width=2560,
    depth=34,
    num_heads=8,
    num_kv_heads=4,
    head_dim=256,
    mlp_dim=10240,
    flavour="gemma3",
    rope_theta=1e6,
    rope_scaling=8.0,
    sliding_window=1024,
    query_pre_attn_scalar=256,
)
#: Gemma 3 270M: width 640, 18 layers, 4 query / 1 KV head of 256, MLP 2048, a 512-token window, no scaling.
_GEMMA3_270M = DecoderShape(
    width=640,
    depth=18,
    num_heads=4,
    num_kv_heads=1,
    head_dim=256,
    mlp_dim=2048,
    flavour="gemma3",
    rope_theta=1e6,
    sliding_window=512,
    query_pre_attn_scalar=256,
)
#: Gemma 3's vocabulary: 262,208 rows in the 4B model's table, 262,144 in 270M's (plus rows for recap's four
#: special tokens). An import sizes the table from the checkpoint and its tokenizer (``weights.importer``).
GEMMA3_4B_VOCAB, GEMMA3_270M_VOCAB = 262_208, 262_144 + 4

PI06_TINY = Pi06Config(
    vision=_TINY_VISION,
    backbone=_TINY_DECODER,
    expert=ExpertShape(width=16, mlp_dim=32),
    chunk_size=10,
    text_vocab_size=300,
    state_bins=32,
    fast_vocab_size=320,
    max_prompt_tokens=16,
    max_subtask_tokens=12,
    max_fast_tokens=96,
)
PI06_SMALL = Pi06Config(
    vision=_SMALL_VISION,
    backbone=_SMALL_DECODER,
    expert=ExpertShape(width=64, mlp_dim=256),
    chunk_size=50,
    fast_vocab_size=1024,
    noise_scale=0.0,  # deterministic sampling: far more reliable for small CPU policies (docs/sim.md)
)
PI06_FULL = Pi06Config(
    vision=_GEMMA3_VISION,
    backbone=_GEMMA3_4B,
    expert=ExpertShape(width=1024, mlp_dim=4096),
    chunk_size=50,
    text_vocab_size=GEMMA3_4B_VOCAB,
    fast_vocab_size=2048,
    max_prompt_tokens=200,
    max_subtask_tokens=48,
    max_fast_tokens=400,
)
PI06_VALUE_TINY = Pi06ValueConfig(
    vision=_TINY_VISION, backbone=_TINY_DECODER, text_vocab_size=300, state_bins=32, max_prompt_tokens=16
)
PI06_VALUE_SMALL = Pi06ValueConfig(
    vision=_SMALL_VISION,
    backbone=DecoderShape(width=96, depth=3, num_heads=4, num_kv_heads=2, head_dim=24, mlp_dim=384),
)
#: tiny Gemma 3-flavoured presets (tests, smoke runs, imports of tiny Gemma 3 checkpoints): seven layers, so a
#: global layer sits between local ones; a 4-token tower pooled from a 2x2 or 4x4 grid
_TINY_GEMMA3_VISION = attrs.evolve(_TINY_VISION, flavour="siglip", projector="gemma3", tokens_per_image=4)
_TINY_GEMMA3 = attrs.evolve(
    _TINY_DECODER, depth=7, flavour="gemma3", rope_theta=1e6, rope_scaling=8.0, sliding_window=8
)
PI06_GEMMA3_TINY = attrs.evolve(PI06_TINY, vision=_TINY_GEMMA3_VISION, backbone=_TINY_GEMMA3)
PI06_VALUE_GEMMA3_TINY = attrs.evolve(PI06_VALUE_TINY, vision=_TINY_GEMMA3_VISION, backbone=_TINY_GEMMA3)
PI06_896 = attrs.evolve(PI06_FULL, vision=attrs.evolve(_GEMMA3_VISION, image_size=896))
PI06_VALUE_FULL = Pi06ValueConfig(
    vision=_GEMMA3_VISION, backbone=_GEMMA3_270M, text_vocab_size=GEMMA3_270M_VOCAB, max_prompt_tokens=200
)

#: The pi0 / pi0.5 checkpoints' shapes: SigLIP So400m/14 at 224 px, a Gemma-2B backbone (width 2048, 18 layers,
#: 8 query heads and 1 KV head of 256, MLP 16384, PaliGemma's 257,152-entry vocabulary plus recap's 4 special
#: tokens) and a Gemma-300M expert (width 1024, MLP 4096); actions and state padded to 32. ``recap weights import``
#: reads every shape from the checkpoint itself; these presets give the head layout and the pi0 / pi0.5 behaviour.
_GEMMA_2B = DecoderShape(width=2048, depth=18, num_heads=8, num_kv_heads=1, head_dim=256, mlp_dim=16384)
PI0 = Pi06Config(
    vision=attrs.evolve(_SO400M, flavour="siglip"),
    backbone=_GEMMA_2B,
    expert=ExpertShape(width=1024, mlp_dim=4096, time_conditioning="concat"),
    chunk_size=50,
    text_vocab_size=257_152 + 4,
    fast_vocab_size=1024,
    max_prompt_tokens=48,
    state_input="token",
    action_pad_dim=32,
    subtask=False,
)
PI05 = attrs.evolve(
    PI0,
    expert=ExpertShape(width=1024, mlp_dim=4096, time_conditioning="adarms"),
    max_prompt_tokens=200,
    state_input="text",
    normalization="quantile",
)

#: Parameter-count targets of the full presets (per part), checked on the meta device within 5%: pi0.6 is
#: Gemma 3 4B (SigLIP So400m ~412M with the projector, a 3.88B language model) and an 860M expert.
FULL_TARGETS: dict[str, float] = {"vision": 412e6, "backbone": 3.88e9, "expert": 860e6}
#: pi0: SigLIP So400m (~400M) + projector, Gemma 2B (~2.5B with its 0.53B embedding), Gemma 300M expert (~0.3B).
PI0_TARGETS: dict[str, float] = {"vision": 414e6, "backbone": 2.51e9, "expert": 315e6}
#: pi0.5: the same, with a 3-way adaptive-norm ``dense`` on each of the expert's 37 norms (~0.43B expert).
PI05_TARGETS: dict[str, float] = {"vision": 414e6, "backbone": 2.51e9, "expert": 430e6}
#: the paper's 670M value model read as the whole VLM: Gemma 3 270M and SigLIP So400m
VALUE_FULL_TARGETS: dict[str, float] = {"vision": 412e6, "backbone": 270e6, "total": 670e6}
#: the targets of each full-size preset (``python -m recap_pi06.params NAME`` prints counts against them)
PRESET_TARGETS: dict[str, dict[str, float]] = {
    "pi06": FULL_TARGETS,
    "pi06-896": FULL_TARGETS,
    "pi06-value": VALUE_FULL_TARGETS,
    "pi0": PI0_TARGETS,
    "pi05": PI05_TARGETS,
}

POLICY_PRESETS: dict[str, Pi06Config] = {
    "pi06-tiny": PI06_TINY,
    "pi06-small": PI06_SMALL,
    "pi06": PI06_FULL,
    "pi06-896": PI06_896,
    "pi06-gemma3-tiny": PI06_GEMMA3_TINY,
    "pi0": PI0,
    "pi05": PI05,
}
VALUE_PRESETS: dict[str, Pi06ValueConfig] = {
    "pi06-value-tiny": PI06_VALUE_TINY,
    "pi06-value-small": PI06_VALUE_SMALL,
    "pi06-value": PI06_VALUE_FULL,
    "pi06-value-gemma3-tiny": PI06_VALUE_GEMMA3_TINY,
}

"""pi0.5: the expert's adaptive RMSNorm, time embedding and time MLP against hand computations in openpi's
convention, and a tiny checkpoint in openpi's key layout importing with nothing missing or unexpected."""

from __future__ import annotations

import math

import attrs
import safetensors.torch
import torch
import torch.nn.functional as F
from hf_fixtures import IMAGE, one_camera_spec
from recap_pi06.config import PI05, DecoderShape, ExpertShape
from recap_pi06.expert import ActionExpert, ExpertLayer
from recap_pi06.layers import AdaRMSNorm, rope_tables, sincos_embedding
from recap_pi06.weights.importer import RECAP_OWN, import_policy
from tensordict import NonTensorStack, TensorDict

from recap.data import keys

BACKBONE = DecoderShape(width=32, depth=2, num_heads=4, num_kv_heads=1, head_dim=8, mlp_dim=64)
ADARMS = ExpertShape(width=16, mlp_dim=32, time_conditioning="adarms")


def _rms(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def test_adaptive_norm_follows_openpi():
    """``dense(c)`` -> (scale, shift, gate); ``rms(x) * (1 + scale) + shift``; the gate comes back raw."""
    torch.manual_seed(0)
    norm = AdaRMSNorm(8, 5)
    torch.nn.init.normal_(norm.dense.weight)
    torch.nn.init.normal_(norm.dense.bias)
    x, c = torch.randn(2, 3, 8), torch.randn(2, 5)
    y, gate = norm(x, c)
    mod = c @ norm.dense.weight.T + norm.dense.bias
    scale, shift, raw_gate = mod[:, :8], mod[:, 8:16], mod[:, 16:]
    torch.testing.assert_close(y, _rms(x) * (1 + scale[:, None]) + shift[:, None])
    torch.testing.assert_close(gate, raw_gate[:, None])


def _layer_input():
    g = torch.Generator().manual_seed(1)
    x, cond = torch.randn(2, 3, 16, generator=g), torch.randn(2, 16, generator=g)
    ctx = (torch.randn(2, 1, 4, 8, generator=g), torch.randn(2, 1, 4, 8, generator=g))
    rope = rope_tables(torch.arange(4, 7)[None].expand(2, 3), 8, 10_000.0)
    mask = torch.ones(2, 3, 7, dtype=torch.bool)
    return x, cond, rope, ctx, mask


def _randomised(layer: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return layer


def test_zero_dense_gives_gate_zero_and_skips_the_layer():
    layer = _randomised(ExpertLayer(BACKBONE, ADARMS), 2)
    for norm in (layer.attn_norm.norm, layer.mlp_norm.norm):
        torch.nn.init.zeros_(norm.dense.weight)
        torch.nn.init.zeros_(norm.dense.bias)
    x, cond, rope, ctx, mask = _layer_input()
    torch.testing.assert_close(layer(x, cond, rope, ctx, mask), x)


def test_unit_gate_equals_a_plain_gemma_layer():
    """Dense weights zero and gate bias one: the expert layer is a plain Gemma layer with unit norm scale."""
    adaptive = _randomised(ExpertLayer(BACKBONE, ADARMS), 3)
    plain = ExpertLayer(BACKBONE, attrs.evolve(ADARMS, time_conditioning="concat"))
    plain.attn.load_state_dict(adaptive.attn.state_dict())
    plain.mlp.load_state_dict(adaptive.mlp.state_dict())
    for norm in (adaptive.attn_norm.norm, adaptive.mlp_norm.norm):
        torch.nn.init.zeros_(norm.dense.weight)
        norm.dense.bias.data = torch.cat([torch.zeros(32), torch.ones(16)])
    for norm in (plain.attn_norm.norm, plain.mlp_norm.norm):
        torch.nn.init.zeros_(norm.weight)  # Gemma's (1 + w): unit scale
    x, cond, rope, ctx, mask = _layer_input()
    torch.testing.assert_close(adaptive(x, cond, rope, ctx, mask), plain(x, None, rope, ctx, mask))
    # the gate matters: a gate bias of 0.5 halves both residual branches, which changes the output
    for norm in (adaptive.attn_norm.norm, adaptive.mlp_norm.norm):
        norm.dense.bias.data[32:] = 0.5
    assert (adaptive(x, cond, rope, ctx, mask) - plain(x, None, rope, ctx, mask)).abs().max() > 1e-2


def test_time_embedding_and_time_mlp_by_hand():
    """Periods from 4e-3 to 4.0 (log-spaced), [sin, cos]; then silu(out(silu(in(emb))))."""
    tau = torch.tensor([0.0, 0.25, 1.0])
    emb = sincos_embedding(tau, 16)
    periods = [4e-3 * (4.0 / 4e-3) ** (i / 7) for i in range(8)]
    want = torch.tensor(
        [
            [math.sin(2 * math.pi * t / p) for p in periods]
            + [math.cos(2 * math.pi * t / p) for p in periods]
            for t in tau.tolist()
        ]
    )
    torch.testing.assert_close(emb, want, atol=1e-4, rtol=0)  # float32 angles up to 2*pi/4e-3 ~ 1571
    expert = _randomised(ActionExpert(BACKBONE, ADARMS, 6), 4)
    x, cond = expert.embed(torch.randn(3, 5, 6), tau, None)
    w_in, w_out = expert.time_mlp[0], expert.time_mlp[2]
    hand = F.silu(F.silu(emb @ w_in.weight.T + w_in.bias) @ w_out.weight.T + w_out.bias)
    torch.testing.assert_close(cond, hand)
    assert x.shape == (3, 5, 16)


def openpi_pi05_state(seed: int = 0, pad: int = 6) -> dict[str, torch.Tensor]:
    """A tiny pi0.5 state dict named the way openpi's PyTorch converter names it (transformers 4.5x layout),
    actions padded to ``pad`` dimensions."""
    g = torch.Generator().manual_seed(seed)
    shapes: dict[str, tuple[int, ...]] = {}
    vt = "paligemma_with_expert.paligemma.model.vision_tower.vision_model."
    shapes[vt + "embeddings.patch_embedding.weight"] = (16, 3, 8, 8)
    shapes[vt + "embeddings.patch_embedding.bias"] = (16,)
    shapes[vt + "embeddings.position_embedding.weight"] = ((IMAGE // 8) ** 2, 16)
    for i in range(2):
        layer = f"{vt}encoder.layers.{i}."
        for name in (
            "layer_norm1",
            "layer_norm2",
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.out_proj",
        ):
            shapes[layer + name + ".bias"] = (16,)
            shapes[layer + name + ".weight"] = (16,) if "norm" in name else (16, 16)
        shapes[layer + "mlp.fc1.weight"], shapes[layer + "mlp.fc1.bias"] = (32, 16), (32,)
        shapes[layer + "mlp.fc2.weight"], shapes[layer + "mlp.fc2.bias"] = (16, 32), (16,)
    shapes[vt + "post_layernorm.weight"] = shapes[vt + "post_layernorm.bias"] = (16,)
    mm = "paligemma_with_expert.paligemma.model.multi_modal_projector.linear."
    shapes[mm + "weight"], shapes[mm + "bias"] = (32, 16), (32,)
    shapes["paligemma_with_expert.paligemma.lm_head.weight"] = (300, 32)
    for root, width, mlp, adaptive in (
        ("paligemma_with_expert.paligemma.model.language_model.", 32, 64, False),
        ("paligemma_with_expert.gemma_expert.model.", 16, 32, True),
    ):
        for i in range(2):
            layer = f"{root}layers.{i}."
            shapes[layer + "self_attn.q_proj.weight"] = (32, width)
            shapes[layer + "self_attn.k_proj.weight"] = shapes[layer + "self_attn.v_proj.weight"] = (8, width)
            shapes[layer + "self_attn.o_proj.weight"] = (width, 32)
            shapes[layer + "mlp.gate_proj.weight"] = shapes[layer + "mlp.up_proj.weight"] = (mlp, width)
            shapes[layer + "mlp.down_proj.weight"] = (width, mlp)
            for norm in ("input_layernorm", "post_attention_layernorm"):
                if adaptive:
                    shapes[f"{layer}{norm}.dense.weight"] = (3 * width, width)
                    shapes[f"{layer}{norm}.dense.bias"] = (3 * width,)
                else:
                    shapes[f"{layer}{norm}.weight"] = (width,)
        if adaptive:
            shapes[root + "norm.dense.weight"], shapes[root + "norm.dense.bias"] = (48, 16), (48,)
        else:
            shapes[root + "norm.weight"] = (width,)
    shapes["paligemma_with_expert.gemma_expert.lm_head.weight"] = (300, 16)
    for name, shape in {
        "action_in_proj": (16, pad),
        "action_out_proj": (pad, 16),
        "time_mlp_in": (16, 16),
        "time_mlp_out": (16, 16),
    }.items():
        shapes[name + ".weight"], shapes[name + ".bias"] = shape, (shape[0],)
    return {k: torch.randn(s, generator=g) * 0.3 for k, s in shapes.items()}


TINY_PI05 = attrs.evolve(
    PI05,
    backbone=attrs.evolve(PI05.backbone, head_dim=8),
    vision=attrs.evolve(PI05.vision, heads=2),
    chunk_size=5,
)


def test_openpi_layout_imports_with_nothing_missing_or_unexpected(tmp_path):
    state = openpi_pi05_state()
    safetensors.torch.save_file(state, str(tmp_path / "model.safetensors"))
    policy, config, report = import_policy(str(tmp_path), TINY_PI05, one_camera_spec(), None)
    assert set(report.loaded) | set(report.skipped) == set(state), "every key is loaded or named as skipped"
    assert set(report.skipped) == {"paligemma_with_expert.gemma_expert.lm_head.weight"}
    assert all(
        name.startswith(RECAP_OWN) or name == "trunk.decoder.embed.weight" for name in report.initialised
    )
    assert config.expert.time_conditioning == "adarms" and config.state_input == "text"
    assert config.normalization == "quantile" and config.action_pad_dim == 6
    for key, target in report.loaded.items():
        got = policy.get_parameter(target)
        want = state[key]
        assert torch.equal(got[: want.shape[0]], want), key
    # the state goes into the prompt as bin numbers, pi0.5's way (padding dimensions in the middle bin)
    obs = TensorDict(
        {
            "observation.images.cam_high": torch.zeros(1, IMAGE, IMAGE, 3, dtype=torch.uint8),
            keys.STATE: torch.tensor([[-1.0, 0.0, 0.999, 5.0]]),
            keys.TASK: NonTensorStack("fold"),
        },
        batch_size=[1],
    )
    assert policy.trunk.prompts(obs) == ["Task: fold, State: 0 128 255 255 128 128;\nAction: "]
    actions = policy.sample_actions(
        obs, indicator=True, guidance=1.5, generator=torch.Generator().manual_seed(0)
    )
    assert actions.shape == (1, 5, 3) and torch.isfinite(actions).all()

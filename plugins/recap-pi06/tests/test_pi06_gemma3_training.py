"""Gemma 3-based models at work: a tiny imported pi06 (Gemma 3 VLM backbone and tower, fresh Gemma 3-style expert)
trains through advantage conditioning and samples with classifier-free guidance (the KV cache giving the same
chunk as re-running the decoder); a value model from a tiny Gemma 3 270M-shaped checkpoint and a SigLIP tower
trains under the distributional estimator."""

from __future__ import annotations

import attrs
import pytest
import torch
from gemma3_fixtures import TOKENS_PER_IMAGE, gemma3_text, gemma3_vlm, siglip_tower
from hf_fixtures import one_camera_spec
from recap_pi06.config import PI06_TINY, PI06_VALUE_TINY
from recap_pi06.weights.importer import import_policy
from recap_pi06.weights.value_import import import_value_network

from recap.data import keys
from recap.nn import draw_flow
from recap.testing.policy_suite import make_batch

pytest.importorskip("transformers")

CHUNK = 6
SIZE = 16  # the checkpoints' towers are at 32 px: positions interpolated to 2x2 patches, no pooling left
VISION = attrs.evolve(
    PI06_TINY.vision, image_size=SIZE, projector="gemma3", tokens_per_image=TOKENS_PER_IMAGE
)


def _spec():
    spec = one_camera_spec(state_dim=4, action_dim=3)
    return attrs.evolve(spec, cameras=(attrs.evolve(spec.cameras[0], height=SIZE, width=SIZE),))


@pytest.fixture
def imported(tmp_path):
    gemma3_vlm(tmp_path)
    base = attrs.evolve(PI06_TINY, vision=VISION, chunk_size=CHUNK)
    policy, config, report = import_policy(str(tmp_path), base, _spec(), None)
    return policy, config, report


def test_imported_pi06_mirrors_the_backbone_in_its_expert(imported):
    policy, config, report = imported
    assert config.vision.pool_kernel == 1 and config.vision.tokens_per_image == TOKENS_PER_IMAGE
    assert "expert.layers.0.attn.q.weight" in report.initialised  # the expert starts fresh
    expert = policy.expert.layers
    assert len(expert) == config.backbone.depth == 7
    assert expert[0].attn.q.weight.shape[0] == config.backbone.num_heads * config.backbone.head_dim
    assert hasattr(expert[5].attn, "q_norm") and hasattr(expert[5], "post_mlp_norm")
    # the expert's local layers see only the window of the context (with the local rotary base): widening the
    # window or making every layer global changes its velocity for the same context
    g = torch.Generator().manual_seed(0)
    shape = config.backbone
    context = [
        (torch.randn(1, shape.num_kv_heads, 20, shape.head_dim, generator=g),) * 2 for _ in range(shape.depth)
    ]
    valid, start = torch.ones(1, 20, dtype=torch.bool), torch.tensor([20])
    x, tau = torch.randn(1, config.chunk_size, policy.flow_dim, generator=g), torch.tensor([0.5])

    def velocity(backbone):
        policy.expert.backbone_shape = backbone
        with torch.no_grad():
            return policy.expert(x, tau, context, valid, start)

    windowed = velocity(shape)
    for other in (attrs.evolve(shape, sliding_window=100), attrs.evolve(shape, sliding_window_pattern=1)):
        assert (velocity(other) - windowed).abs().max() > 1e-4
    assert torch.equal(velocity(shape), windowed)


def test_imported_pi06_trains_through_advantage_conditioning_and_samples_with_cfg(imported):
    ac = pytest.importorskip("recap_advantage_conditioning.extractor")  # the plugin alone runs without it
    AdvantageConditioning, AdvantageConditioningConfig = (
        ac.AdvantageConditioning,
        ac.AdvantageConditioningConfig,
    )

    policy, _, spec = imported[0], imported[1], _spec()
    batch = make_batch(spec, batch_size=4, chunk_size=CHUNK)
    policy.fit_to_data(batch)
    torch.manual_seed(0)
    extractor = AdvantageConditioning(AdvantageConditioningConfig(dropout=0.3))
    draws = draw_flow(policy, 4, generator=torch.Generator().manual_seed(1))

    def fixed_loss() -> float:
        with torch.no_grad():
            losses = policy.per_sample_loss(batch, batch[keys.INDICATOR], flow_draws=draws)
        return float(sum(v.mean() for v in losses.values()))

    first = fixed_loss()
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    for _ in range(20):
        opt.zero_grad()
        out = extractor.loss(policy, batch)
        sum(v for k, v in out.items() if k.startswith("loss_")).backward()
        opt.step()
    assert fixed_loss() < 0.7 * first

    policy.eval()
    obs = batch.exclude(keys.ACTION, keys.ACTION_IS_PAD)
    noise = torch.randn(4, CHUNK, policy.flow_dim, generator=torch.Generator().manual_seed(2))
    cached = policy.sample_actions(obs, True, guidance=2.0, noise=noise, use_cache=True)
    rerun = policy.sample_actions(obs, True, guidance=2.0, noise=noise, use_cache=False)
    plain = policy.sample_actions(obs, True, guidance=1.0, noise=noise, use_cache=True)
    assert cached.shape == (4, CHUNK, 3) and torch.isfinite(cached).all()
    assert (cached - rerun).abs().max() <= 1e-4  # sliding windows line up with and without the cache
    assert (cached - plain).abs().max() > 1e-4  # guidance changes the chunk


def test_value_model_from_gemma3_text_and_siglip_trains_under_the_distributional_estimator(tmp_path):
    dv = pytest.importorskip("recap_distributional_value.estimator")
    gemma3_text(tmp_path / "lm", num_hidden_layers=6, sliding_window=3)
    siglip_tower(tmp_path / "siglip")
    spec = _spec()
    base = attrs.evolve(PI06_VALUE_TINY, vision=VISION)
    net, config, report = import_value_network(
        [str(tmp_path / "lm"), str(tmp_path / "siglip")], base, spec, 11, None
    )
    assert config.backbone.flavour == "gemma3" and config.backbone.layer_kinds[-1] == "global"
    assert config.backbone.sliding_window == 3 and config.vision.depth == 2
    assert {"trunk.vision.project.weight", "head.weight"} <= set(report.initialised)
    assert "trunk.decoder.layers.5.post_attn_norm.weight" in report.loaded.values()
    batch = make_batch(spec, batch_size=6, chunk_size=4)
    net.fit_to_data(batch)
    estimator = dv.DistributionalValue(
        dv.DistributionalValueConfig(num_bins=11, network=config), spec, None, network=net
    )
    opt = torch.optim.Adam(estimator.parameters(), lr=3e-3)
    first = estimator.loss(batch)["loss_value"].item()
    for _ in range(15):
        opt.zero_grad()
        estimator.loss(batch)["loss_value"].backward()
        opt.step()
    assert estimator.loss(batch)["loss_value"].item() < 0.7 * first


def test_gemma3_policy_under_bf16_autocast_stays_close_to_float32(imported):
    """The trainer's bf16 mode (autocast): the loss and the sampled chunk stay near the float32 model's."""
    policy = imported[0]
    batch = make_batch(_spec(), batch_size=2, chunk_size=CHUNK)
    policy.fit_to_data(batch)
    draws = draw_flow(policy, 2, generator=torch.Generator().manual_seed(4))
    obs = batch.exclude(keys.ACTION, keys.ACTION_IS_PAD)
    noise = torch.randn(2, CHUNK, policy.flow_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want_loss = policy.per_sample_loss(batch, batch[keys.INDICATOR], flow_draws=draws)["flow"]
        want = policy.sample_actions(obs, True, guidance=1.5, noise=noise)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got_loss = policy.per_sample_loss(batch, batch[keys.INDICATOR], flow_draws=draws)["flow"]
            got = policy.sample_actions(obs, True, guidance=1.5, noise=noise)
    assert (got_loss.float() - want_loss).abs().max() <= 0.05 * want_loss.abs().max()
    assert (got.float() - want).abs().max() <= 0.05 * want.abs().max()


def test_rms_norm_of_bf16_inputs_is_computed_in_float32():
    """Gemma computes its norms in float32 and casts the result back (the bf16 checkpoints were trained so)."""
    from recap_pi06.layers import RMSNorm

    norm = RMSNorm(64)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(64, generator=torch.Generator().manual_seed(0)))
    x = (torch.randn(8, 64, generator=torch.Generator().manual_seed(1)) * 30).to(torch.bfloat16)
    wide = x.float()
    want = (wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + 1e-6) * (1 + norm.weight)).to(
        torch.bfloat16
    )
    got = norm(x)
    assert got.dtype == torch.bfloat16 and torch.equal(got, want)
    narrow = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * (1 + norm.weight.to(torch.bfloat16))
    assert not torch.equal(narrow, want)  # computing in bf16 gives other numbers


def test_gemma3_policy_under_activation_checkpointing_gives_the_same_gradients(imported):
    """The trainer's activation checkpointing wraps every transformer block (Gemma 3 layers, local and global)."""
    import copy

    from recap.train.parallel import apply_activation_checkpointing

    plain = imported[0]
    batch = make_batch(_spec(), batch_size=2, chunk_size=CHUNK)
    plain.fit_to_data(batch)
    wrapped = copy.deepcopy(plain)
    assert apply_activation_checkpointing(wrapped) == len(plain.transformer_blocks())
    draws = draw_flow(plain, 2, generator=torch.Generator().manual_seed(5))
    grads = []
    for model in (plain, wrapped):
        losses = model.per_sample_loss(batch, batch[keys.INDICATOR], flow_draws=draws)
        (losses["flow"].mean() + losses["fast"].mean()).backward()
        grads.append(model.trunk.decoder.layers[0].attn.q_norm.weight.grad)
    assert grads[0].abs().max() > 0 and torch.allclose(grads[0], grads[1], atol=1e-6)

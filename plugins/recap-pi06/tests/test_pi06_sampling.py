"""Inference on pi06-tiny: KV cache equivalence, guidance semantics, sub-task decoding and noise scale."""

import attrs
import pytest
import torch
from recap_pi06.config import PI06_TINY
from recap_pi06.inference import sample_chunk
from recap_pi06.policy import Pi06Policy
from recap_pi06.tokens import IMAGE
from tensordict import NonTensorStack

from recap.testing.policy_suite import observation_of


def _sample(policy, obs, indicator=True, guidance=1.0, *, use_cache=True, seed=7):
    gen = torch.Generator().manual_seed(seed)
    return sample_chunk(policy, obs, indicator, guidance, generator=gen, use_cache=use_cache)


@pytest.mark.parametrize(("indicator", "guidance"), [(True, 1.0), (None, 1.0), (False, 1.0), (True, 2.0)])
def test_kv_cache_matches_no_cache(policy, tiny_batch, indicator, guidance):
    obs = observation_of(tiny_batch).exclude("subtask")
    cached, sub_c = _sample(policy, obs, indicator, guidance, use_cache=True)
    plain, sub_p = _sample(policy, obs, indicator, guidance, use_cache=False)
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=0)
    assert sub_c == sub_p


def test_guidance_one_is_conditional_and_zero_is_unconditional(policy, tiny_batch):
    obs = observation_of(tiny_batch)
    cond = policy.sample_actions(obs, True, 1.0, generator=torch.Generator().manual_seed(1))
    uncond = policy.sample_actions(obs, None, 1.0, generator=torch.Generator().manual_seed(1))
    g1 = policy.sample_actions(obs, True, 1.0, generator=torch.Generator().manual_seed(1))
    g0 = policy.sample_actions(obs, True, 0.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(g1, cond, atol=0, rtol=0)
    torch.testing.assert_close(g0, uncond, atol=1e-5, rtol=0)
    assert not torch.allclose(cond, uncond)
    # per-sample indicator tensor conditions each row on its own value
    mixed = policy.sample_actions(
        obs, torch.tensor([True, False, True, False]), generator=torch.Generator().manual_seed(1)
    )
    neg = policy.sample_actions(obs, False, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(mixed[0::2], cond[0::2], atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed[1::2], neg[1::2], atol=1e-5, rtol=0)


def test_given_subtask_is_used_and_decoded_one_is_returned(policy, tiny_batch):
    obs = observation_of(tiny_batch)
    _, given = _sample(policy, obs)
    assert given == ["grasp the cube", "", "lift", "move left"]


@pytest.mark.parametrize("kv_cache", [True, False])
def test_greedy_subtask_decoding_follows_the_logits(policy, tiny_batch, monkeypatch, kv_cache):
    """With the decoder's text logits scripted, greedy decoding must return exactly the scripted texts: each row
    stops at its own EOS (later tokens ignored), special tokens are never emitted, and a sub-task is cut at
    ``max_subtask_tokens``."""
    policy = Pi06Policy(attrs.evolve(policy.config, kv_cache=kv_cache), policy.spec, None)
    policy.fit_to_data(tiny_batch)
    text, limit = policy.trunk.text, policy.config.max_subtask_tokens
    wanted = ["lift", "move left", "", "grasp the cube " * 8]
    scripts = text.encode(wanted)
    assert len(scripts[3]) > limit  # the last row must be cut
    junk = text.encode(["cube"])[0][0]
    calls = {"step": 0}

    def scripted_logits(hidden, start, stop):
        step = calls["step"]
        calls["step"] += 1
        logits = torch.zeros(hidden.shape[0], stop - start)
        for row, ids in enumerate(scripts):
            token = ids[step] if step < len(ids) else (text.eos_id if step == len(ids) else junk)
            logits[row, token] = 5.0
            logits[row, text.pad_id] = logits[row, text.subtask_id] = 50.0  # banned: must never win
        return logits

    monkeypatch.setattr(policy.trunk.decoder, "logits", scripted_logits)
    decoded = policy.predict_subtask(observation_of(tiny_batch).exclude("subtask"))
    assert decoded[:3] == wanted[:3]
    assert decoded[3] == text.decode(scripts[3][:limit])
    assert calls["step"] <= limit + 1  # decoding stops once every row is done


def test_zero_noise_scale_is_deterministic(spec, stats, tiny_batch):
    torch.manual_seed(0)
    policy = Pi06Policy(attrs.evolve(PI06_TINY, noise_scale=0.0), spec, stats)
    obs = observation_of(tiny_batch)
    a = policy.sample_actions(obs, True, generator=torch.Generator().manual_seed(1))
    b = policy.sample_actions(obs, True, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_missing_camera_is_named(policy, tiny_batch):
    obs = observation_of(tiny_batch).exclude("observation.images.cam_high")
    with pytest.raises(ValueError, match="cam_high"):
        policy.sample_actions(obs)


def test_metadata_text_changes_the_prefix(policy, tiny_batch):
    obs = observation_of(tiny_batch)
    with_meta = obs.clone()
    with_meta.set("metadata", NonTensorStack(*["speed: fast"] * 4))
    a = policy.sample_actions(obs, generator=torch.Generator().manual_seed(0))
    b = policy.sample_actions(with_meta, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(a, b)


def test_native_image_size_uses_whole_patches(spec, stats, tiny_batch):
    config = attrs.evolve(PI06_TINY, vision=attrs.evolve(PI06_TINY.vision, image_size=0))
    policy = Pi06Policy(config, spec, stats)
    prefix = policy.trunk.prefix(tiny_batch)
    # 16x16 -> 2x2 patches of 8; 12x20 -> 1x2 (cut to whole patches)
    assert int((prefix.kind[0] == IMAGE).sum()) == 4 + 2
    assert torch.isfinite(policy.per_sample_loss(tiny_batch, None)["flow"]).all()

"""Save/load through safetensors is exact, tokenizers included; old checkpoints load; the std floor."""

import re

import attrs
import pytest
import safetensors.torch
import torch
from recap_pi06.config import PI06_TINY, PI06_VALUE_TINY
from recap_pi06.policy import Pi06Policy
from recap_pi06.value import Pi06ValueNetwork

from recap.builtins.mlp_flow import FlowMLPConfig
from recap.data import keys
from recap.data.stats import NormStats
from recap.nn import draw_flow
from recap.testing.policy_suite import observation_of


def test_policy_round_trip_is_exact(policy, spec, tiny_batch, tmp_path):
    opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    for _ in range(2):
        losses = policy.per_sample_loss(tiny_batch, tiny_batch[keys.INDICATOR])
        opt.zero_grad()
        sum(v.mean() for v in losses.values()).backward()
        opt.step()
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in policy.state_dict().items()}, str(path))

    fresh = Pi06Policy(PI06_TINY, spec, None)  # unfitted tokenizers, no statistics
    assert fresh.fast.encode(policy._normalized_chunks(tiny_batch)) != policy.fast.encode(
        policy._normalized_chunks(tiny_batch)
    )
    fresh.load_state_dict(safetensors.torch.load_file(str(path)), strict=True)
    for (name, a), (_, b) in zip(policy.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    chunks = policy._normalized_chunks(tiny_batch)
    assert fresh.fast.encode(chunks) == policy.fast.encode(chunks)
    assert fresh.trunk.text.encode(["grasp the cube"]) == policy.trunk.text.encode(["grasp the cube"])
    draws = draw_flow(policy, 4, generator=torch.Generator().manual_seed(0))
    a = policy.per_sample_loss(tiny_batch, tiny_batch[keys.INDICATOR], flow_draws=draws)
    b = fresh.per_sample_loss(tiny_batch, tiny_batch[keys.INDICATOR], flow_draws=draws)
    for name in ("flow", "fast", "subtask"):
        assert torch.equal(a[name], b[name]), name
    obs = observation_of(tiny_batch).exclude("subtask")
    sa = policy.sample_actions(obs, True, 1.5, generator=torch.Generator().manual_seed(0))
    sb = fresh.sample_actions(obs, True, 1.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sa, sb)


def test_corrupt_tokenizer_blob_is_reported(policy, spec):
    state = policy.state_dict()
    state["fast.blob"] = torch.tensor(list(b"not json"), dtype=torch.uint8)
    fresh = Pi06Policy(PI06_TINY, spec, None)
    try:
        fresh.load_state_dict(state)
    except RuntimeError as exc:
        assert "fast.blob" in str(exc)
    else:
        raise AssertionError("a corrupt FAST tokenizer was loaded")


def test_value_network_logits_and_round_trip(spec, stats, tiny_batch, tmp_path):
    torch.manual_seed(0)
    net = Pi06ValueNetwork(PI06_VALUE_TINY, spec, 11, stats)
    net.fit_to_data(tiny_batch)
    obs = observation_of(tiny_batch)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    logits = net(obs)
    assert logits.shape == (4, 11) and torch.isfinite(logits).all()
    target = torch.tensor([0, 3, 5, 10])
    torch.nn.functional.cross_entropy(logits, target).backward()
    assert net.trunk.decoder.embed.weight.grad.any() and net.trunk.vision.patchify.weight.grad.any()
    path = tmp_path / "value.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    fresh = Pi06ValueNetwork(PI06_VALUE_TINY, spec, 11, None)
    fresh.load_state_dict(safetensors.torch.load_file(str(path)), strict=True)
    assert torch.equal(fresh(obs), net(obs))


def test_core_checkpoint_directory_round_trip(policy, spec, stats, tiny_batch, tmp_path):
    """Through recap.train.checkpoint (model.safetensors + config.toml + spec.json + stats.json)."""
    from recap.plugins import load_registry, set_registry
    from recap.protocols.extractor import DeploymentSettings
    from recap.train.checkpoint import load_policy, save_policy

    registry = load_registry(extra_plugins=["recap_pi06.plugin"], entrypoints=False)
    previous = set_registry(registry)
    try:
        save_policy(tmp_path / "ckpt", policy, PI06_TINY, spec, stats, DeploymentSettings(True, 1.5))
        loaded, deployment = load_policy(tmp_path / "ckpt", registry)
    finally:
        set_registry(previous)
    assert deployment == DeploymentSettings(True, 1.5)
    obs = observation_of(tiny_batch)
    a = policy.sample_actions(obs, True, 1.5, generator=torch.Generator().manual_seed(0))
    b = loaded.sample_actions(obs, True, 1.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_state_dicts_from_before_recap_nn_still_load(policy, spec, tiny_batch):
    """The trunk kept its statistics as flat buffers (``trunk.norm.action_std``); such checkpoints load."""
    old = {
        re.sub(r"^trunk\.norm\.(\w+)\.(\w+)$", r"trunk.norm.\1_\2", k): v
        for k, v in policy.state_dict().items()
    }
    assert "trunk.norm.action_std" in old and "trunk.norm.observation_state_q99" in old
    fresh = Pi06Policy(PI06_TINY, spec, None)
    fresh.load_state_dict(old, strict=True)
    for name, value in policy.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name
    obs = observation_of(tiny_batch).exclude("subtask")
    a = policy.sample_actions(obs, True, generator=torch.Generator().manual_seed(0))
    b = fresh.sample_actions(obs, True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_min_std_floors_the_action_and_env_state_statistics(spec):
    """The trunk used to clamp the std at 1e-6; it now takes the configurable floor the MLP policy uses."""
    g = torch.Generator().manual_seed(0)
    action = torch.randn(64, spec.action_dim, generator=g)
    action[:, 1] = 0.5 + 1e-4 * action[:, 1]  # a joint that barely moves
    env = torch.randn(64, spec.env_state_dim, generator=g)
    env[:, 0] = 0.0
    stats = NormStats.compute(
        {
            "observation.state": torch.randn(64, spec.state_dim, generator=g),
            "action": action,
            "observation.environment_state": env,
        }
    )
    assert PI06_TINY.min_std == FlowMLPConfig().min_std == 0.01
    for config in (PI06_TINY, attrs.evolve(PI06_TINY, min_std=0.2)):
        norm = Pi06Policy(config, spec, stats).trunk.norm
        action_std = norm.of(keys.ACTION).std
        assert action_std[1].item() == pytest.approx(config.min_std)
        torch.testing.assert_close(action_std[[0, 2]], stats["action"].std[[0, 2]].clamp_min(config.min_std))
        assert norm.of(keys.ENV_STATE).std[0].item() == pytest.approx(config.min_std)
    value_norm = Pi06ValueNetwork(attrs.evolve(PI06_VALUE_TINY, min_std=0.3), spec, 11, stats).trunk.norm
    assert value_norm.of(keys.ENV_STATE).std[0].item() == pytest.approx(0.3)

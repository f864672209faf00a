"""The tiny flow-matching MLP policy passes the Policy conformance suite, with and without a camera."""

from __future__ import annotations

import attrs
import pytest
import torch
from safetensors.torch import save_file

from recap.builtins.mlp_flow import FlowMLPConfig, FlowMLPPolicy
from recap.data import keys
from recap.data.spec import CameraSpec, RobotSpec
from recap.data.stats import NormStats
from recap.errors import ConfigError, SchemaError
from recap.nn import sample_flow_time
from recap.plugins import load_registry
from recap.testing.policy_suite import PolicyConformance, make_batch, observation_of
from recap.train.checkpoint import load_weights

SPEC = RobotSpec(
    cameras=(CameraSpec("cam_high", 24, 32),), state_dim=3, action_dim=2, env_state_dim=2, joint_names=()
)
STATE_ONLY = FlowMLPConfig(hidden=32, depth=2, chunk_size=4, uses_env_state=True)


class TestFlowMLPStateOnly(PolicyConformance):
    @pytest.fixture
    def make_policy(self):
        return lambda: FlowMLPPolicy(STATE_ONLY, SPEC, None)

    @pytest.fixture
    def batch(self):
        return make_batch(SPEC, batch_size=6, chunk_size=4)


class TestFlowMLPWithCameraAndNoise(PolicyConformance):
    @pytest.fixture
    def make_policy(self):
        config = FlowMLPConfig(
            hidden=32, depth=2, chunk_size=4, camera="cam_high", image_size=16, noise_scale=1.0
        )
        return lambda: FlowMLPPolicy(config, SPEC, None)

    @pytest.fixture
    def batch(self):
        return make_batch(SPEC, batch_size=5, chunk_size=4, seed=1)


def test_registered_as_builtin_policy():
    registry = load_registry(entrypoints=False)
    entry = registry.get("policy", "mlp-flow")
    assert entry.distribution == "recap"
    policy = entry.build(STATE_ONLY, SPEC, None)
    assert isinstance(policy, FlowMLPPolicy)


def _stats_for(batch) -> NormStats:
    return NormStats.compute(
        {
            keys.STATE: batch[keys.STATE] * 5 + 3,
            keys.ACTION: batch[keys.ACTION].reshape(-1, 2) * 10 - 4,
            keys.ENV_STATE: batch[keys.ENV_STATE],
        }
    )


def test_normalisation_round_trip_through_stats():
    batch = make_batch(SPEC, batch_size=64, chunk_size=4)
    policy = FlowMLPPolicy(STATE_ONLY, SPEC, _stats_for(batch))
    raw = torch.tensor([[1.0, -2.0]])
    torch.testing.assert_close(
        policy.norm.unnormalize(keys.ACTION, policy.norm.normalize(keys.ACTION, raw)), raw
    )


def test_quantile_normalisation_maps_the_store_percentiles_to_unit_range():
    batch = make_batch(SPEC, batch_size=64, chunk_size=4)
    stats = _stats_for(batch)
    policy = FlowMLPPolicy(attrs.evolve(STATE_ONLY, normalization="quantile"), SPEC, stats)
    q = torch.stack([stats[keys.ACTION].q01, stats[keys.ACTION].q99])
    torch.testing.assert_close(
        policy.norm.normalize(keys.ACTION, q), torch.tensor([[-1.0, -1.0], [1.0, 1.0]])
    )
    with pytest.raises(ValueError, match="normalization"):
        FlowMLPConfig(normalization="minmax")


@pytest.mark.parametrize("noise_scale", [0.0, 1.0])
def test_sampling_with_zero_velocity_returns_mean_plus_std_times_noise(noise_scale):
    """With v = 0 the Euler steps leave the initial noise untouched, so a sample in raw units is exactly
    ``mean + std * noise_scale * eps``: pins the unnormalisation per dimension (not just its order of magnitude)."""
    batch = make_batch(SPEC, batch_size=64, chunk_size=4)
    stats = _stats_for(batch)
    policy = FlowMLPPolicy(attrs.evolve(STATE_ONLY, noise_scale=noise_scale), SPEC, stats)
    torch.nn.init.zeros_(policy.velocity[-1].weight)
    torch.nn.init.zeros_(policy.velocity[-1].bias)
    out = policy.sample_actions(observation_of(batch[:4]), True, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(4, 4, 2, generator=torch.Generator().manual_seed(3))
    mean, std = stats[keys.ACTION].mean, stats[keys.ACTION].std
    torch.testing.assert_close(out, mean + std * noise_scale * eps)


def test_min_std_floors_a_joint_that_barely_moves():
    state = torch.randn(256, 3)
    state[:, 1] = 0.2 + 0.001 * state[:, 1]  # std 0.001, below the default floor of 0.01
    stats = NormStats.compute(
        {keys.STATE: state, keys.ACTION: torch.randn(256, 2), keys.ENV_STATE: torch.randn(256, 2)}
    )
    policy = FlowMLPPolicy(STATE_ONLY, SPEC, stats)
    std = policy.norm.of(keys.STATE).std
    assert std[1].item() == pytest.approx(STATE_ONLY.min_std)
    torch.testing.assert_close(std[[0, 2]], stats[keys.STATE].std[[0, 2]])
    # a deviation of 0.01 rad on that joint is one floored std, not ten raw ones
    moved = torch.tensor([[0.0, 0.21, 0.0]])
    assert policy.norm.normalize(keys.STATE, moved)[0, 1].item() == pytest.approx(
        (0.21 - stats[keys.STATE].mean[1].item()) / 0.01, rel=1e-4
    )


def test_checkpoints_with_the_old_flat_buffer_names_still_load(tmp_path):
    batch = make_batch(SPEC, batch_size=64, chunk_size=4)
    trained = FlowMLPPolicy(STATE_ONLY, SPEC, _stats_for(batch))
    old_names = {
        k.replace("norm.", "norm_", 1).replace(".", "_") if k.startswith("norm.") else k: v
        for k, v in trained.state_dict().items()
    }
    assert "norm_observation_state_mean" in old_names
    fresh = FlowMLPPolicy(STATE_ONLY, SPEC, None)
    fresh.load_state_dict(old_names)  # strict: every key must map
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
    # and through the checkpoint loader every command uses
    save_file(old_names, str(tmp_path / "model.safetensors"))
    via_file = FlowMLPPolicy(STATE_ONLY, SPEC, None)
    load_weights(via_file, tmp_path)
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(via_file.state_dict()[key], value)


def test_flow_time_distribution():
    tau = sample_flow_time(20000, generator=torch.Generator().manual_seed(0))
    assert tau.min() >= 0.001 and tau.max() <= 1.0
    # Beta(1.5, 1) has mean 1.5 / 2.5 = 0.6; mapped: 0.6 * 0.999 + 0.001
    assert abs(tau.mean().item() - (0.6 * 0.999 + 0.001)) < 0.01


def test_loss_matches_hand_computed_flow_target():
    """With zero weights in the last layer the velocity is its bias b, so loss = mean((b - (eps - a))^2)."""
    policy = FlowMLPPolicy(
        FlowMLPConfig(hidden=8, depth=1, chunk_size=2),
        RobotSpec(cameras=(), state_dim=1, action_dim=1, joint_names=()),
        None,
    )
    last = policy.velocity[-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor([0.5, -0.5]))
    batch = make_batch(policy.spec, batch_size=2, chunk_size=2)
    from tensordict import TensorDict

    noise = torch.tensor([[[1.0], [0.0]], [[2.0], [1.0]]])
    draws = TensorDict({"noise": noise, "time": torch.tensor([0.3, 0.7])}, batch_size=[2])
    a = batch[keys.ACTION]
    err = (torch.tensor([0.5, -0.5])[None, :, None] - (noise - a)).square()[..., 0]
    valid = (~batch[keys.ACTION_IS_PAD]).float()
    expected = (err * valid).sum(-1) / valid.sum(-1)
    got = policy.per_sample_loss(batch, None, flow_draws=draws)["flow"]
    torch.testing.assert_close(got, expected)


def test_bad_inputs_are_explained():
    with pytest.raises(ConfigError, match="env_state_dim"):
        FlowMLPPolicy(STATE_ONLY, RobotSpec(cameras=(), state_dim=3, action_dim=2, joint_names=()), None)
    with pytest.raises(ConfigError, match="cam_low"):
        FlowMLPPolicy(FlowMLPConfig(camera="cam_low"), SPEC, None)
    policy = FlowMLPPolicy(STATE_ONLY, SPEC, None)
    with pytest.raises(SchemaError, match="chunk_size"):
        policy.per_sample_loss(make_batch(SPEC, chunk_size=3), None)
    with pytest.raises(SchemaError, match="environment_state"):
        policy.sample_actions(observation_of(make_batch(SPEC)).exclude(keys.ENV_STATE))


def test_missing_task_is_refused():
    policy = FlowMLPPolicy(STATE_ONLY, SPEC, None)
    with pytest.raises(SchemaError, match="task"):
        policy.sample_actions(observation_of(make_batch(SPEC)).exclude(keys.TASK))


def test_stats_missing_a_used_key_are_refused():
    stats = NormStats.compute({keys.STATE: torch.randn(8, 3), keys.ACTION: torch.randn(8, 2)})
    with pytest.raises(SchemaError, match="environment_state"):
        FlowMLPPolicy(STATE_ONLY, SPEC, stats)

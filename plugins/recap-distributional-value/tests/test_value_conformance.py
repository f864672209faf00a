"""The ValueEstimator conformance suite, over the default network and over a network from the registry."""

from __future__ import annotations

import attrs
import pytest
import torch
from recap_distributional_value import (
    ConvMLPConfig,
    ConvMLPValueNet,
    DistributionalValue,
    DistributionalValueConfig,
)
from tensordict import TensorDict
from torch import nn

from recap import rl
from recap.config import ValueNetworkConfig
from recap.data import keys, text
from recap.data.spec import CameraSpec, RobotSpec
from recap.data.stats import NormStats
from recap.errors import ConfigError
from recap.plugins import load_registry, module_plugin
from recap.testing.value_suite import ValueEstimatorConformance, known_value_dataset

SPEC = RobotSpec(cameras=(CameraSpec("cam_high", 8, 8),))
TINY = DistributionalValueConfig(
    num_bins=51,
    network=ConvMLPConfig(image_size=8, channels=(8,), image_features=8, state_features=16, hidden=32),
)


def known_value_batch() -> TensorDict:
    rows = []
    for steps, success in known_value_dataset(1):
        t = steps.batch_size[0]
        td = steps.exclude(keys.ACTION).clone()
        td[keys.MC_RETURN] = rl.normalized_mc_returns(t, success, 60)
        rows.append(td)
    batch = torch.cat(rows)[::4]
    batch.set_non_tensor(keys.TASK, "pick up the cube")
    return batch


def stats_of(batch: TensorDict) -> NormStats:
    return NormStats.compute({keys.STATE: batch[keys.STATE]})


class TestConvMLP(ValueEstimatorConformance):
    @pytest.fixture
    def batch(self):
        return known_value_batch()

    @pytest.fixture
    def make_estimator(self, batch):
        stats = stats_of(batch)

        def make():
            torch.manual_seed(0)
            return DistributionalValue(TINY, SPEC, stats)

        return make

    @pytest.fixture
    def checkpoint(self, batch, registry):
        return TINY, SPEC, stats_of(batch), registry


@attrs.frozen
class MeanStateNetConfig(ValueNetworkConfig):
    hidden: int = 32


class MeanStateNet(nn.Module):
    """A foreign value network (stands in for e.g. "pi06-value"): reads only the state and the task text."""

    def __init__(self, config: MeanStateNetConfig, spec: RobotSpec, num_bins: int, stats) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(spec.state_dim, config.hidden), nn.Tanh(), nn.Linear(config.hidden, num_bins)
        )

    def forward(self, obs: TensorDict) -> torch.Tensor:
        assert len(text(obs, keys.TASK)) == obs.batch_size[0]
        return self.net(obs[keys.STATE])


class TestRegisteredNetwork(ValueEstimatorConformance):
    """Any network registered under ``value_network`` plugs into the estimator unchanged."""

    fit_lr = 1e-2  # raw (unnormalised) state input: a larger step size fits in the same number of steps

    @pytest.fixture
    def registry(self):
        plugin = module_plugin(
            "foreign-net",
            register_value_networks=lambda register: register(
                "mean-state", MeanStateNet, config=MeanStateNetConfig
            ),
        )
        return load_registry(extra_plugins=["recap_distributional_value.plugin", plugin], entrypoints=False)

    @pytest.fixture
    def batch(self):
        return known_value_batch()

    @pytest.fixture
    def make_estimator(self, registry):
        def make():
            torch.manual_seed(0)
            # the estimator builds its network from the registry it is built from, not a global one
            config = DistributionalValueConfig(num_bins=41, network=MeanStateNetConfig())
            est = registry.build(config, SPEC, None, registry=registry)
            assert isinstance(est, DistributionalValue) and isinstance(est.network, MeanStateNet)
            return est

        return make

    @pytest.fixture
    def checkpoint(self, registry):
        return DistributionalValueConfig(num_bins=41, network=MeanStateNetConfig()), SPEC, None, registry


def test_a_registered_network_is_built_only_through_a_registry():
    with pytest.raises(ConfigError, match="through the registry"):
        DistributionalValue(DistributionalValueConfig(network=MeanStateNetConfig()), SPEC)


def test_table_embedding_refuses_unknown_prompt():
    from recap.errors import SchemaError

    cfg = attrs.evolve(TINY, network=attrs.evolve(TINY.network, task_embedding="table", tasks=("a", "b")))
    est = DistributionalValue(cfg, SPEC)
    batch = known_value_batch()
    with pytest.raises(SchemaError, match="task table"):
        est.predict(batch)
    batch.set_non_tensor(keys.TASK, "a")
    assert est.predict(batch)["value"].shape == (batch.batch_size[0],)


def test_wrong_logit_width_is_named():
    from recap.errors import SchemaError

    class SevenBins(nn.Module):
        def forward(self, obs):
            return torch.zeros(obs.batch_size[0], 7)

    est = DistributionalValue(TINY, SPEC, network=SevenBins())
    with pytest.raises(SchemaError, match="num_bins"):
        est.predict(known_value_batch())


def test_state_statistics_are_floored_and_old_checkpoints_load():
    """The encoders normalise with recap.nn.Normalizer (std floored at min_std); checkpoints from before it, with
    the statistics as ``state.mean`` / ``state.std``, load with the statistics they were trained with."""
    batch = known_value_batch()
    state = batch[keys.STATE].clone()
    state[:, 5] = 0.3  # a dimension that never moved: std 0, floored
    stats = NormStats.compute({keys.STATE: state})
    config = attrs.evolve(TINY.network, min_std=0.02)
    trained = ConvMLPValueNet(config, SPEC, 51, stats)
    std = trained.state.norm.std
    assert std[5].item() == pytest.approx(0.02)
    torch.testing.assert_close(std[:2], stats[keys.STATE].std[:2].clamp_min(0.02))
    old = {k.replace(".norm.", "."): v for k, v in trained.state_dict().items()}
    assert "state.mean" in old and "state.std" in old
    fresh = ConvMLPValueNet(config, SPEC, 51, None)
    fresh.load_state_dict(old)
    obs = batch.exclude(keys.MC_RETURN)
    torch.testing.assert_close(fresh.eval()(obs), trained.eval()(obs))

"""AWR: conformance, weights and clipping against hand-computed values, registration."""

from __future__ import annotations

import math

import pytest
import torch
from recap_awr import AWR, AWRConfig, awr_weights
from tensordict import TensorDict

from recap import config as recap_config
from recap.data import keys
from recap.errors import SchemaError
from recap.plugins import load_registry
from recap.testing.extractor_suite import TINY_SPEC, ExtractorConformance
from recap.testing.policy_suite import make_batch


class TestAWR(ExtractorConformance):
    @pytest.fixture
    def extractor(self):
        return AWR(AWRConfig())


class TestAWRUnnormalised(ExtractorConformance):
    @pytest.fixture
    def extractor(self):
        return AWR(AWRConfig(beta=0.05, w_max=5.0, normalize=False))


def test_weights_without_normalisation():
    adv = torch.tensor([0.0, 0.1, -0.2, 1.0])
    w = awr_weights(adv, beta=0.1, w_max=20.0, normalize=False)
    expected = torch.tensor([1.0, math.e, math.exp(-2.0), 20.0])  # exp(10) clipped at 20
    torch.testing.assert_close(w, expected)


def test_weights_with_normalisation():
    adv = torch.tensor([1.0, 3.0])  # mean 2, population std 1 -> A_hat = -1, +1
    w = awr_weights(adv, beta=0.5, w_max=5.0, normalize=True)
    torch.testing.assert_close(w, torch.tensor([math.exp(-2.0), 5.0]), rtol=1e-4, atol=1e-6)
    # normalisation makes the weights invariant to the advantage scale
    torch.testing.assert_close(
        w, awr_weights(adv * 1000, beta=0.5, w_max=5.0, normalize=True), rtol=1e-4, atol=0
    )


def test_huge_advantage_does_not_overflow():
    w = awr_weights(torch.tensor([1e6, 0.0]), beta=1e-3, w_max=20.0, normalize=False)
    assert torch.equal(w, torch.tensor([20.0, 1.0]))


class FixedLossPolicy(torch.nn.Module):
    chunk_size, action_dim = 4, 2
    input_cameras: tuple[str, ...] = ()

    def __init__(self, flow: torch.Tensor) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.flow = flow
        self.indicators: list = []

    def per_sample_loss(self, batch, indicator, *, flow_draws=None):
        self.indicators.append(indicator)
        return TensorDict({"flow": self.scale * self.flow}, batch_size=[self.flow.shape[0]])

    def sample_actions(self, obs, indicator=True, guidance=1.0, *, generator=None):
        raise AssertionError("not used")


def test_loss_is_weighted_mean_and_uses_no_indicator():
    batch = make_batch(TINY_SPEC, batch_size=3, chunk_size=4)
    batch.set(keys.ADVANTAGE, torch.tensor([0.0, 0.1, 5.0]))
    policy = FixedLossPolicy(torch.tensor([2.0, 1.0, 3.0]))
    out = AWR(AWRConfig(beta=0.1, w_max=10.0, normalize=False)).loss(policy, batch)
    expected = (1.0 * 2.0 + math.e * 1.0 + 10.0 * 3.0) / 3
    torch.testing.assert_close(out["loss_flow"], torch.tensor(expected))
    torch.testing.assert_close(out["clipped_fraction"], torch.tensor(1 / 3))
    assert policy.indicators == [None]
    # the gradient w.r.t. the policy is the weighted loss: the weights are constants
    out["loss_flow"].backward()
    torch.testing.assert_close(policy.scale.grad, torch.tensor(expected))


def test_bad_advantages_are_refused():
    batch = make_batch(TINY_SPEC, batch_size=3, chunk_size=4)
    batch.set(keys.ADVANTAGE, torch.tensor([0.0, float("nan"), 1.0]))
    with pytest.raises(SchemaError, match="recap label"):
        AWR().loss(FixedLossPolicy(torch.ones(3)), batch)


def test_registered_and_config_round_trips():
    registry = load_registry(extra_plugins=["recap_awr.plugin"], entrypoints=False)
    config = AWRConfig(beta=0.5, w_max=10.0, normalize=False)
    text = recap_config.dumps(config, "toml", registry)
    assert recap_config.loads(text, recap_config.ExtractorConfig, "toml", registry) == config
    assert isinstance(registry.get("extractor", "awr").build(config), AWR)
    assert AWR().deployment.indicator is None

"""The example plugin: conformance, the loss by hand, and a short training run through recap's own trainer."""

from __future__ import annotations

import pytest
import torch
from recap_extractor_example import FilteredBC, FilteredBCConfig
from tensordict import TensorDict

from recap import config as recap_config
from recap.data import keys
from recap.plugins import load_registry
from recap.testing.bandit import Bandit, train_on_bandit
from recap.testing.extractor_suite import TINY_SPEC, ExtractorConformance
from recap.testing.policy_suite import make_batch


class TestFilteredBC(ExtractorConformance):
    @pytest.fixture
    def extractor(self):
        return FilteredBC(FilteredBCConfig())


class FixedLossPolicy(torch.nn.Module):
    chunk_size, action_dim = 4, 2
    input_cameras: tuple[str, ...] = ()

    def __init__(self, flow: torch.Tensor) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.flow = flow

    def per_sample_loss(self, batch, indicator, *, flow_draws=None):
        assert indicator is None
        return TensorDict({"flow": self.scale * self.flow}, batch_size=[self.flow.shape[0]])

    def sample_actions(self, obs, indicator=True, guidance=1.0, *, generator=None):
        raise AssertionError("not used")


def test_only_positive_samples_count():
    batch = make_batch(TINY_SPEC, batch_size=4, chunk_size=4)
    batch.set(keys.INDICATOR, torch.tensor([True, False, True, False]))
    out = FilteredBC().loss(FixedLossPolicy(torch.tensor([1.0, 100.0, 3.0, 100.0])), batch)
    torch.testing.assert_close(out["loss_flow"], torch.tensor(2.0))
    torch.testing.assert_close(out["positive_fraction"], torch.tensor(0.5))


def test_too_few_positives_give_a_zero_loss_that_still_backpropagates():
    batch = make_batch(TINY_SPEC, batch_size=4, chunk_size=4)
    batch.set(keys.INDICATOR, torch.tensor([True, False, False, False]))
    policy = FixedLossPolicy(torch.ones(4))
    out = FilteredBC(FilteredBCConfig(min_positive=2)).loss(policy, batch)
    assert out["loss_flow"].item() == 0.0
    out["loss_flow"].backward()
    assert policy.scale.grad.item() == 0.0


def test_filtered_bc_learns_the_positive_conditional_on_the_bandit():
    torch.set_num_threads(1)
    bandit = Bandit()
    policy = bandit.make_policy(hidden=64)
    train_on_bandit(policy, FilteredBC(), bandit, steps=600)
    # the I = 1 samples of the data are 80% good-mode
    assert bandit.sample_good_fraction(policy, None) > bandit.good_share + 0.2


def test_registered_by_name_and_config_round_trips():
    registry = load_registry(extra_plugins=["recap_extractor_example.plugin"], entrypoints=False)
    entry = registry.get("extractor", "filtered-bc")
    config = recap_config.loads(
        'name = "filtered-bc"\nmin_positive = 3\n', recap_config.ExtractorConfig, "toml", registry
    )
    assert config == FilteredBCConfig(min_positive=3)
    assert isinstance(entry.build(config), FilteredBC)

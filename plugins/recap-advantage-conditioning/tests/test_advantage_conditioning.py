"""Advantage conditioning: conformance, hand-computed loss, dropout rate, SFT mode and deployment settings."""

from __future__ import annotations

import pytest
import torch
from recap_advantage_conditioning import AdvantageConditioning, AdvantageConditioningConfig, draw_dropout
from tensordict import TensorDict

from recap import config as recap_config
from recap.data import keys
from recap.errors import ConfigError, LabelError
from recap.plugins import load_registry
from recap.protocols import DeploymentSettings
from recap.testing.extractor_suite import TINY_POLICY, TINY_SPEC, ExtractorConformance
from recap.testing.policy_suite import make_batch
from recap.testing.tiny_policy import mlp_flow_policy
from recap.train.requirements import check_required_keys


class TestAdvantageConditioning(ExtractorConformance):
    @pytest.fixture
    def extractor(self):
        return AdvantageConditioning(AdvantageConditioningConfig())


class TestAdvantageConditioningSFT(ExtractorConformance):
    @pytest.fixture
    def extractor(self):
        return AdvantageConditioning(AdvantageConditioningConfig(sft=True, dropout=0.2))


class RecordingPolicy(torch.nn.Module):
    """Returns fixed per-sample losses and records what the extractor fed it."""

    chunk_size, action_dim = 4, 2
    input_cameras: tuple[str, ...] = ()

    def __init__(self, flow: torch.Tensor) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.flow = flow
        self.seen: dict = {}

    def per_sample_loss(self, batch, indicator, *, flow_draws=None):
        self.seen = {"indicator": indicator, "dropped": batch.get("indicator_dropped")}
        return TensorDict({"flow": self.scale * self.flow}, batch_size=[self.flow.shape[0]])

    def sample_actions(self, obs, indicator=True, guidance=1.0, *, generator=None):
        raise AssertionError("not used")


def test_loss_matches_hand_computed_weights():
    batch = make_batch(TINY_SPEC, batch_size=4, chunk_size=4)
    batch.set(keys.INDICATOR, torch.tensor([True, False, True, False]))
    policy = RecordingPolicy(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    extractor = AdvantageConditioning(AdvantageConditioningConfig(dropout=0.5, alpha=2.0))
    torch.manual_seed(0)
    expected_dropped = draw_dropout(4, 0.5)
    torch.manual_seed(0)
    out = extractor.loss(policy, batch)
    dropped = policy.seen["dropped"]
    assert torch.equal(dropped, expected_dropped)
    assert torch.equal(policy.seen["indicator"], batch[keys.INDICATOR])
    weight = torch.where(dropped, 1.0, 2.0)
    expected = (weight * torch.tensor([1.0, 2.0, 3.0, 4.0])).mean()
    torch.testing.assert_close(out["loss_flow"], expected)
    assert "indicator_dropped" not in batch


def test_dropout_rate_within_tolerance():
    torch.manual_seed(0)
    policy = mlp_flow_policy(TINY_SPEC, **TINY_POLICY)
    batch = make_batch(TINY_SPEC, batch_size=20000, chunk_size=4)
    out = AdvantageConditioning(AdvantageConditioningConfig(dropout=0.3)).loss(policy, batch)
    # binomial std at n = 20000 is 0.0032; 0.015 is > 4 sigma
    assert abs(out["dropped_fraction"].item() - 0.3) < 0.015
    out = AdvantageConditioning(AdvantageConditioningConfig(dropout=0.0)).loss(policy, batch)
    assert out["dropped_fraction"].item() == 0.0


def test_sft_fixes_indicator_to_one_and_needs_no_labels():
    batch = make_batch(TINY_SPEC, batch_size=6, chunk_size=4).exclude(keys.INDICATOR, keys.ADVANTAGE)
    policy = RecordingPolicy(torch.ones(6))
    extractor = AdvantageConditioning(AdvantageConditioningConfig(sft=True))
    assert extractor.required_keys == ()
    extractor.loss(policy, batch)
    assert policy.seen["indicator"].all()


def test_missing_label_set_names_recap_label():
    batch = make_batch(TINY_SPEC, batch_size=6, chunk_size=4).exclude(keys.INDICATOR)
    extractor = AdvantageConditioning()
    with pytest.raises(LabelError, match="recap label"):
        check_required_keys(batch, extractor.required_keys, "advantage-conditioning")


def test_deployment_settings_record_indicator_and_guidance():
    extractor = AdvantageConditioning(AdvantageConditioningConfig(guidance=1.75))
    assert extractor.deployment == DeploymentSettings(indicator=True, guidance=1.75)


def test_registered_and_config_round_trips():
    registry = load_registry(extra_plugins=["recap_advantage_conditioning.plugin"], entrypoints=False)
    entry = registry.get("extractor", "advantage-conditioning")
    config = AdvantageConditioningConfig(dropout=0.25, sft=True, guidance=2.0)
    text = recap_config.dumps(config, "toml", registry)
    assert 'name = "advantage-conditioning"' in text
    assert recap_config.loads(text, recap_config.ExtractorConfig, "toml", registry) == config
    assert isinstance(entry.build(config), AdvantageConditioning)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="dropout"):
        AdvantageConditioningConfig(dropout=1.0)
    registry = load_registry(extra_plugins=["recap_advantage_conditioning.plugin"], entrypoints=False)
    with pytest.raises(ConfigError, match="dropuot"):
        recap_config.from_dict(
            recap_config.ExtractorConfig, {"name": "advantage-conditioning", "dropuot": 0.1}, registry
        )

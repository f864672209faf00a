"""PPO: conformance, SPO objective and gradient sign by hand, ratio = 1 at the reference, registration."""

from __future__ import annotations

import pytest
import torch
from recap_ppo import PPO, PPOConfig, spo_objective
from tensordict import TensorDict

from recap import config as recap_config
from recap.data import keys
from recap.errors import RecapError
from recap.plugins import load_registry
from recap.testing.extractor_suite import TINY_POLICY, TINY_SPEC, ExtractorConformance
from recap.testing.policy_suite import make_batch
from recap.testing.tiny_policy import mlp_flow_policy


class TestPPO(ExtractorConformance):
    @pytest.fixture
    def extractor(self):
        return PPO(PPOConfig())


class TestPPOWideTrustRegionUnnormalised(ExtractorConformance):
    @pytest.fixture
    def extractor(self):
        return PPO(PPOConfig(trust_region=0.2, normalize=False, alpha=0.5))


def test_spo_objective_by_hand():
    ratio = torch.tensor([1.0, 1.1, 0.8])
    adv = torch.tensor([0.5, -1.0, 2.0])
    eps = 0.1
    # 1*0.5 - 0 ; 1.1*-1 - 1/(0.2)*0.01 = -1.1 - 0.05 ; 0.8*2 - 2/0.2*0.04 = 1.6 - 0.4
    expected = (0.5 + (-1.15) + 1.2) / 3
    torch.testing.assert_close(spo_objective(ratio, adv, eps), torch.tensor(expected))


def test_spo_gradient_sign_and_optimum():
    eps = 0.05
    for a in (1.0, -1.0):
        ratio = torch.tensor([1.0], requires_grad=True)
        spo_objective(ratio, torch.tensor([a]), eps).backward()
        # at rho = 1 the penalty is flat: dJ/drho = A, so a positive advantage raises the likelihood
        assert ratio.grad.item() == pytest.approx(a)
        # the maximiser is rho = 1 + eps * sign(A): the gradient vanishes there
        ratio = torch.tensor([1.0 + eps * a], requires_grad=True)
        spo_objective(ratio, torch.tensor([a]), eps).backward()
        assert ratio.grad.item() == pytest.approx(0.0, abs=1e-6)


class FixedLossPolicy(torch.nn.Module):
    """Per-sample flow loss = shift (a parameter) + a fixed value, so rho = exp(-shift) exactly."""

    chunk_size, action_dim = 4, 2
    input_cameras: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.shift = torch.nn.Parameter(torch.zeros(()))
        self.draws: list = []

    def per_sample_loss(self, batch, indicator, *, flow_draws=None):
        assert indicator is None
        self.draws.append(flow_draws)
        base = flow_draws["time"]  # depends on the draws, so mismatched draws would show
        return TensorDict(
            {"flow": base + self.shift, "fast": 2 * base + self.shift}, batch_size=[base.shape[0]]
        )

    def sample_actions(self, obs, indicator=True, guidance=1.0, *, generator=None):
        raise AssertionError("not used")


def test_loss_by_hand_with_shared_draws_and_separate_trust_regions():
    batch = make_batch(TINY_SPEC, batch_size=3, chunk_size=4)
    batch.set(keys.ADVANTAGE, torch.tensor([1.0, -2.0, 0.5]))
    policy = FixedLossPolicy()
    extractor = PPO(PPOConfig(trust_region=0.1, trust_region_discrete=0.5, alpha=2.0, normalize=False))
    extractor.setup(policy)
    with torch.no_grad():
        policy.shift.fill_(-0.1)  # l_theta = l_ref - 0.1  ->  rho = exp(0.1) for every sample and part
    out = extractor.loss(policy, batch)
    rho = torch.tensor(0.1).exp()
    adv = batch[keys.ADVANTAGE]
    j_flow = (rho * adv - adv.abs() / 0.2 * (rho - 1) ** 2).mean()
    j_fast = (rho * adv - adv.abs() / 1.0 * (rho - 1) ** 2).mean()
    torch.testing.assert_close(out["loss_flow"], -2.0 * j_flow)
    torch.testing.assert_close(out["loss_fast"], -j_fast)
    torch.testing.assert_close(out["ratio_deviation_flow"], rho - 1)
    assert out["outside_trust_region_flow"].item() == 1.0  # 0.105 > 0.1
    assert out["outside_trust_region_fast"].item() == 0.0  # 0.105 < 0.5
    ref_draws, cur_draws = extractor.reference.draws[-1], policy.draws[-1]
    assert ref_draws is cur_draws, "reference and current policy must share the (tau, noise) draws"


def test_ratio_is_one_when_policy_equals_reference():
    torch.manual_seed(0)
    policy = mlp_flow_policy(TINY_SPEC, **TINY_POLICY)
    batch = make_batch(TINY_SPEC, batch_size=16, chunk_size=4)
    extractor = PPO()
    extractor.setup(policy)
    out = extractor.loss(policy, batch)
    assert out["ratio_deviation_flow"].item() < 1e-6
    # with rho = 1 the objective is mean(A_hat) = 0 for standardised advantages
    assert abs(out["loss_flow"].item()) < 1e-5
    # and the gradient is the advantage-weighted likelihood gradient: nonzero
    out["loss_flow"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())


def test_reference_is_frozen_and_independent():
    policy = mlp_flow_policy(TINY_SPEC, **TINY_POLICY)
    extractor = PPO()
    extractor.setup(policy)
    assert all(not p.requires_grad for p in extractor.reference.parameters())
    with torch.no_grad():
        next(policy.parameters()).add_(1.0)
    assert not torch.equal(next(policy.parameters()), next(extractor.reference.parameters()))


def test_loss_before_setup_is_explained():
    batch = make_batch(TINY_SPEC, batch_size=3, chunk_size=4)
    with pytest.raises(RecapError, match="setup"):
        PPO().loss(FixedLossPolicy(), batch)


def test_registered_and_config_round_trips():
    registry = load_registry(extra_plugins=["recap_ppo.plugin"], entrypoints=False)
    config = PPOConfig(trust_region=0.02, trust_region_discrete=0.05)
    text = recap_config.dumps(config, "toml", registry)
    assert recap_config.loads(text, recap_config.ExtractorConfig, "toml", registry) == config
    assert isinstance(registry.get("extractor", "ppo").build(config), PPO)

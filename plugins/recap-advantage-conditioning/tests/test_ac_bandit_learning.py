"""Learning test on the 2-D action bandit: conditioning on I = 1 and CFG move mass to the good mode.

Data: 50% good mode; P(good | I = 1) = 0.80 in the data (see recap.testing.bandit). Margins leave room for
training noise but fail if the indicator is ignored, inverted, or guidance does nothing.
"""

from __future__ import annotations

import pytest
import torch
from recap_advantage_conditioning import AdvantageConditioning, AdvantageConditioningConfig

from recap.testing.bandit import Bandit, train_on_bandit


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)  # a 64-wide MLP: threads cost more than they give
    bandit = Bandit()
    policy = bandit.make_policy(hidden=64)
    train_on_bandit(policy, AdvantageConditioning(AdvantageConditioningConfig()), bandit, steps=800)
    return bandit, policy


def test_conditioning_on_positive_indicator_prefers_the_good_mode(trained):
    bandit, policy = trained
    data = bandit.good_share
    unconditional = bandit.sample_good_fraction(policy, None)
    positive = bandit.sample_good_fraction(policy, True)
    guided = bandit.sample_good_fraction(policy, True, guidance=2.5)
    negative = bandit.sample_good_fraction(policy, False)
    assert abs(unconditional - data) < 0.08, f"unconditional {unconditional:.3f} vs data {data}"
    assert positive > data + 0.2, f"I=1 {positive:.3f} vs data {data}"  # data's P(good | I=1) is 0.80
    assert guided > positive + 0.08, f"CFG beta=2.5 {guided:.3f} vs I=1 {positive:.3f}"
    assert negative < data - 0.1, f"I=0 {negative:.3f} vs data {data}"


def test_guidance_zero_is_unconditional(trained):
    bandit, policy = trained
    assert bandit.sample_good_fraction(policy, True, guidance=0.0) == bandit.sample_good_fraction(
        policy, None
    )


def test_sft_mode_learns_the_data_mixture_for_both_inputs():
    torch.set_num_threads(1)
    bandit = Bandit()
    policy = bandit.make_policy(hidden=64, seed=1)
    train_on_bandit(
        policy, AdvantageConditioning(AdvantageConditioningConfig(sft=True)), bandit, steps=500, seed=1
    )
    for indicator in (True, None):
        assert abs(bandit.sample_good_fraction(policy, indicator) - bandit.good_share) < 0.1

"""The bandit's data has the stated statistics, and a behaviour-cloned flow policy reproduces its mixture."""

from __future__ import annotations

import torch

from recap.data import keys
from recap.testing.bandit import Bandit, BehaviourCloning, train_on_bandit


def test_data_statistics_match_the_documented_ones():
    bandit = Bandit()
    batch = bandit.batch(40000, torch.Generator().manual_seed(0))
    good = batch[keys.ACTION][:, 0, 0] > 0
    ind = batch[keys.INDICATOR]
    assert abs(good.float().mean().item() - 0.5) < 0.01
    assert abs(ind[good].float().mean().item() - bandit.positive_rate(True)) < 0.015
    assert abs(ind[~good].float().mean().item() - bandit.positive_rate(False)) < 0.015
    assert abs(good[ind].float().mean().item() - 0.8) < 0.02  # P(good | I = 1)
    assert bandit.good_fraction(batch[keys.ACTION]) == good.float().mean().item()


def test_behaviour_cloning_reproduces_the_mixture():
    torch.set_num_threads(1)
    bandit = Bandit()
    policy = bandit.make_policy(hidden=64)
    untrained = _near_a_mode(bandit, policy)
    train_on_bandit(policy, BehaviourCloning(), bandit, steps=600)
    after = bandit.sample_good_fraction(policy, None)
    assert abs(after - bandit.good_share) < 0.08, f"{after:.3f}"
    # and the samples sit on the two modes (98% of the data is within 0.6 of a mode centre in x)
    trained = _near_a_mode(bandit, policy)
    assert trained > 0.75 and trained > untrained + 0.15, (
        f"near a mode: {trained:.2f}, untrained {untrained:.2f}"
    )


def _near_a_mode(bandit: Bandit, policy) -> float:
    actions = policy.sample_actions(
        bandit.observation(1000), None, generator=torch.Generator().manual_seed(0)
    )
    return ((actions[:, 0, 0].abs() - 1).abs() < 0.6).float().mean().item()

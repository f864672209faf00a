"""Learning test on the 2-D action bandit: PPO with the paper's small trust region stays near the reference,
while a wide trust region moves towards the good mode (so "stays near" is the trust region's doing)."""

from __future__ import annotations

import copy

import torch
from recap_ppo import PPO, PPOConfig

from recap.testing.bandit import Bandit, BehaviourCloning, train_on_bandit


def test_small_trust_region_stays_close_and_wide_one_moves():
    torch.set_num_threads(1)
    bandit = Bandit()
    reference = bandit.make_policy(hidden=64)
    train_on_bandit(reference, BehaviourCloning(), bandit, steps=700)
    ref_good = bandit.sample_good_fraction(reference, None)

    small = copy.deepcopy(reference)
    out = train_on_bandit(small, PPO(PPOConfig(trust_region=0.01)), bandit, steps=300, lr=1e-3)
    wide = copy.deepcopy(reference)
    train_on_bandit(wide, PPO(PPOConfig(trust_region=1.0)), bandit, steps=300, lr=1e-3)

    small_good, wide_good = bandit.sample_good_fraction(small, None), bandit.sample_good_fraction(wide, None)
    assert abs(small_good - ref_good) < 0.05, f"eps=0.01: {small_good:.3f} vs reference {ref_good:.3f}"
    assert out["ratio_deviation_flow"] < 0.02, "likelihood ratios left the 0.01 trust region far behind"
    assert wide_good > ref_good + 0.07, f"eps=1: {wide_good:.3f} vs reference {ref_good:.3f}"
    assert any(not torch.equal(a, b) for a, b in zip(small.parameters(), reference.parameters(), strict=True))

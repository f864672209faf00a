"""Learning test on the 2-D action bandit: AWR shifts the policy towards the good (high-advantage) mode."""

from __future__ import annotations

import torch
from recap_awr import AWR, AWRConfig

from recap.testing.bandit import Bandit, BehaviourCloning, train_on_bandit


def test_awr_shifts_towards_the_good_mode():
    torch.set_num_threads(1)
    bandit = Bandit()
    awr = bandit.make_policy(hidden=64)
    train_on_bandit(awr, AWR(AWRConfig()), bandit, steps=800)
    bc = bandit.make_policy(hidden=64)
    train_on_bandit(bc, BehaviourCloning(), bandit, steps=800)
    # standardised advantages +-0.54 with noise 0.84 give E[w | good] / E[w | bad] ~ e^1.08: about 75% good
    awr_good, bc_good = bandit.sample_good_fraction(awr, None), bandit.sample_good_fraction(bc, None)
    assert abs(bc_good - bandit.good_share) < 0.08, f"behaviour cloning {bc_good:.3f}"
    assert awr_good > bc_good + 0.15, f"AWR {awr_good:.3f} vs behaviour cloning {bc_good:.3f}"

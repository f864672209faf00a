import pytest
import torch

from recap import rl
from recap.errors import SchemaError


def _norm_rewards(lengths, success, max_len, c_fail):
    return rl.episode_rewards_batched(torch.tensor(lengths), torch.tensor(success), c_fail) / max_len


def test_nstep_bootstraps_inside_and_falls_back_to_monte_carlo_at_the_end():
    # One success of 5 steps, max length 10, N = 2, V = -0.05 * t.
    r = _norm_rewards([5], [True], 10, 10)
    v = torch.tensor([[0.0, -0.05, -0.10, -0.15, -0.20]])
    a = rl.nstep_advantages(r, v, torch.tensor([5]), lookahead=2)
    # t=0: -0.1 - 0.1 + V(2)=-0.10 -> -0.30, minus V(0)=0 -> -0.30
    # t=1: -0.2 + V(3)=-0.15 -> -0.35, minus -0.05 -> -0.30
    # t=2: -0.2 + V(4)=-0.20 -> -0.40, minus -0.10 -> -0.30
    # t=3: t+N = 5 = T: Monte-Carlo R_3 = -0.1, minus -0.15 -> +0.05
    # t=4: R_4 = 0, minus -0.20 -> +0.20
    expected = torch.tensor([[-0.30, -0.30, -0.30, 0.05, 0.20]])
    assert torch.allclose(a, expected, atol=1e-6)


def test_nstep_past_the_end_of_a_failure_uses_the_clipped_return():
    r = _norm_rewards([3], [False], 10, 10)
    v = torch.full((1, 3), -0.5)
    a = rl.nstep_advantages(r, v, torch.tensor([3]), lookahead=50)
    assert torch.allclose(a, torch.tensor([[-0.5, -0.5, -0.5]]))  # clip(-1.2, -1.1, -1.0) = -1, minus -0.5


def test_padding_stays_zero_and_mc_advantage():
    lengths = torch.tensor([2, 3])
    ret = rl.normalized_mc_returns_batched(lengths, torch.tensor([True, True]), 3)
    v = torch.full((2, 3), -0.1)
    a = rl.mc_advantages(ret, v, lengths)
    assert torch.allclose(a, torch.tensor([[-1 / 3 + 0.1, 0.1, 0.0], [-2 / 3 + 0.1, -1 / 3 + 0.1, 0.1]]))


def test_nan_values_rejected():
    with pytest.raises(SchemaError, match="NaN"):
        rl.nstep_advantages(torch.zeros(1, 2), torch.tensor([[0.0, float("nan")]]), torch.tensor([2]))
    with pytest.raises(SchemaError, match="same shape"):
        rl.nstep_advantages(torch.zeros(1, 2), torch.zeros(1, 3), torch.tensor([2]))


def test_nstep_keeps_wasted_steps_of_a_doomed_episode_negative():
    # A failure of 8 steps, max length 10, N = 2, the value already sure of failure (V = -1 everywhere).
    # Bootstrapped target: -0.2 + V(t+2) = -1.2 (not clipped to -1), so A = -0.2 = -N / L, not a tie at 0.
    r = _norm_rewards([8], [False], 10, 10)
    v = torch.full((1, 8), -1.0)
    a = rl.nstep_advantages(r, v, torch.tensor([8]), lookahead=2)
    assert torch.allclose(a[0, :6], torch.full((6,), -0.2), atol=1e-6)
    assert torch.allclose(a[0, 6:], torch.zeros(2))  # the window reaches the failure: clip(R, -1) - V = 0


def test_nstep_end_of_a_failure_is_a_lost_state_where_time_still_costs():
    # Same doomed failure; with outcomes given, the last N steps bootstrap from the lost state (-1) after
    # N steps of time: target -0.2 - 1 = -1.2, A = -0.2, like the wasted steps before them (not 0 above them).
    r = _norm_rewards([8], [False], 10, 10)
    v = torch.full((1, 8), -1.0)
    a = rl.nstep_advantages(
        r, v, torch.tensor([8]), lookahead=2, success=torch.tensor([False]), max_length=10
    )
    assert torch.allclose(a[0], torch.full((8,), -0.2), atol=1e-6)
    # a success keeps its Monte-Carlo fallback
    r = _norm_rewards([5], [True], 10, 10)
    v = torch.tensor([[0.0, -0.05, -0.10, -0.15, -0.20]])
    a = rl.nstep_advantages(r, v, torch.tensor([5]), lookahead=2, success=torch.tensor([True]), max_length=10)
    assert torch.allclose(a, torch.tensor([[-0.30, -0.30, -0.30, 0.05, 0.20]]), atol=1e-6)
    with pytest.raises(ValueError, match="together"):
        rl.nstep_advantages(r, v, torch.tensor([5]), lookahead=2, success=torch.tensor([True]))


def test_standardize_advantages_by_hand():
    adv = torch.tensor([1.0, 2.0, 3.0, 6.0], requires_grad=True)
    # mean 3, population std sqrt((4 + 1 + 0 + 9) / 4) = sqrt(3.5); the sample std (sqrt(14 / 3)) must not be used
    expected = (torch.tensor([-2.0, -1.0, 0.0, 3.0])) / (3.5**0.5 + 1e-5)
    got = rl.standardize_advantages(adv)
    torch.testing.assert_close(got, expected)
    assert not got.requires_grad
    torch.testing.assert_close(rl.standardize_advantages(torch.full((3,), 0.7)), torch.zeros(3))


def test_standardize_advantages_refuses_bad_input():
    with pytest.raises(SchemaError, match=r"\[B\]"):
        rl.standardize_advantages(torch.zeros(2, 2))
    with pytest.raises(SchemaError, match="NaN"):
        rl.standardize_advantages(torch.tensor([0.0, float("nan")]))

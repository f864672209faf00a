import pytest
import torch

from recap import rl
from recap.errors import LabelError, SchemaError


def test_success_rewards_and_returns_by_hand():
    r = rl.episode_rewards(4, True, c_fail=100)
    assert r.tolist() == [-1, -1, -1, 0]
    assert rl.returns_to_go(r).tolist() == [-3, -2, -1, 0]
    # Normalised by the task's max length 10: minus the share of the horizon still needed.
    assert torch.allclose(rl.normalized_mc_returns(4, True, 10), torch.tensor([-0.3, -0.2, -0.1, 0.0]))


def test_failure_rewards_and_returns_by_hand():
    r = rl.episode_rewards(3, False, c_fail=5)
    assert r.tolist() == [-1, -1, -5]
    assert rl.returns_to_go(r).tolist() == [-7, -6, -5]
    # /10 then clip at -1: C_fail small enough that the last steps stay above -1.
    assert torch.allclose(rl.normalized_mc_returns(3, False, 10, c_fail=5), torch.tensor([-0.7, -0.6, -0.5]))
    # Default C_fail = max_length: every failed step is -1.
    assert rl.normalized_mc_returns(3, False, 10).tolist() == [-1, -1, -1]


def test_batched_over_different_lengths_pads_with_zero():
    out = rl.normalized_mc_returns_batched(torch.tensor([2, 4]), torch.tensor([True, True]), 4)
    assert torch.allclose(out, torch.tensor([[-0.25, 0.0, 0.0, 0.0], [-0.75, -0.5, -0.25, 0.0]]))


def test_per_episode_max_length():
    out = rl.normalize_returns(torch.tensor([[-2.0, -1.0], [-2.0, -1.0]]), torch.tensor([2.0, 4.0]))
    assert torch.allclose(out, torch.tensor([[-1.0, -0.5], [-0.5, -0.25]]))


def test_bad_inputs_say_what_to_do():
    with pytest.raises(SchemaError, match="at least one step"):
        rl.episode_rewards_batched(torch.tensor([0]), torch.tensor([True]), 1.0)
    with pytest.raises(SchemaError, match="one per episode"):
        rl.episode_rewards_batched(torch.tensor([3, 2]), torch.tensor([True]), 1.0)
    with pytest.raises(LabelError, match="label-success"):
        rl.episode_rewards_batched(torch.tensor([3]), [None], 1.0)
    with pytest.raises(ValueError, match="max_length"):
        rl.normalized_mc_returns(12, True, 10)
    with pytest.raises(SchemaError, match="non-empty"):
        rl.episode_rewards_batched(
            torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.bool), 1.0
        )

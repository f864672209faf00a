"""recap.nn.flow: the one flow-matching draw and path that the policies and PPO share."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from recap.errors import SchemaError
from recap.nn import draw_flow, flow_matching_path, masked_chunk_mean, sample_flow_time


class _Chunks(nn.Module):
    chunk_size, action_dim = 5, 3

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))


def test_flow_time_is_beta_1_5_1_on_0_001_to_1():
    tau = sample_flow_time(50_000, generator=torch.Generator().manual_seed(0))
    assert tau.min() >= 0.001 and tau.max() <= 1.0
    unit = (tau - 0.001) / 0.999
    # Beta(1.5, 1): CDF x^1.5, so P(unit <= 0.5) = 0.354 (a uniform draw gives 0.5, Beta(1, 1.5) 0.646)
    assert (unit <= 0.5).float().mean().item() == pytest.approx(0.5**1.5, abs=0.01)
    assert unit.mean().item() == pytest.approx(0.6, abs=0.005)


def test_draw_has_the_policy_chunk_shape_and_is_reproducible():
    policy = _Chunks()
    a = draw_flow(policy, 4, generator=torch.Generator().manual_seed(1))
    b = draw_flow(policy, 4, generator=torch.Generator().manual_seed(1))
    assert a["noise"].shape == (4, 5, 3) and a["time"].shape == (4,)
    torch.testing.assert_close(a["noise"], b["noise"])
    torch.testing.assert_close(a["time"], b["time"])


def test_path_interpolates_between_actions_and_noise():
    actions = torch.randn(2, 5, 3)
    draws = draw_flow(_Chunks(), 2, generator=torch.Generator().manual_seed(2))
    draws["time"] = torch.tensor([0.25, 1.0])
    x_tau, tau, u = flow_matching_path(actions, draws)
    noise = draws["noise"]
    torch.testing.assert_close(x_tau[0], 0.25 * noise[0] + 0.75 * actions[0])
    torch.testing.assert_close(x_tau[1], noise[1])  # tau = 1 is pure noise
    torch.testing.assert_close(u, noise - actions)
    torch.testing.assert_close(tau, draws["time"])
    with pytest.raises(SchemaError, match="draw_flow"):
        flow_matching_path(torch.randn(2, 4, 3), draws)


def test_masked_chunk_mean_ignores_padded_steps():
    per_step = torch.tensor([[1.0, 2.0, 30.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    is_pad = torch.tensor([[False, False, True], [False, False, False], [True, True, True]])
    torch.testing.assert_close(masked_chunk_mean(per_step, is_pad), torch.tensor([1.5, 5.0, 0.0]))
    torch.testing.assert_close(masked_chunk_mean(per_step, None), per_step.mean(-1))

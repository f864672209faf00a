"""Real-time chunking's guided inpainting (recap.nn.rtc) on the built-in MLP flow policy."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import NonTensorStack, TensorDict

from recap.builtins.mlp_flow import FlowMLPConfig, FlowMLPPolicy
from recap.data import keys
from recap.data.spec import RobotSpec
from recap.nn.rtc import guidance_weight, inpainting_weights
from recap.protocols import FlowPolicy, Inpainting


def test_weights_freeze_then_decay_to_zero():
    w = inpainting_weights(10, frozen=3, guided=7)
    assert w[:3].tolist() == [1.0, 1.0, 1.0] and w[7:].tolist() == [0.0, 0.0, 0.0]
    assert all(a > b > 0 for a, b in zip(w[2:7], w[3:7], strict=False))
    c = (7 - 3) / (7 - 3 + 1)  # first guided step, the paper's formula by hand
    assert w[3].item() == pytest.approx(c * (math.exp(c) - 1) / (math.e - 1))
    with pytest.raises(ValueError, match="frozen"):
        inpainting_weights(10, frozen=8, guided=7)


def test_guidance_weight_is_clipped():
    assert guidance_weight(1.0, 5.0) == 5.0  # pure noise: unbounded, clipped
    assert guidance_weight(0.5, 5.0) == pytest.approx(2.0)  # t = 0.5: (1-t)/(t r^2) = 2
    assert guidance_weight(0.5, 1.0) == 1.0


def _policy_and_obs(seed: int):
    torch.manual_seed(0)
    spec = RobotSpec(cameras=(), fps=50)
    policy = FlowMLPPolicy(FlowMLPConfig(hidden=64, depth=2, chunk_size=12, num_steps=8), spec).eval()
    obs = TensorDict({keys.STATE: torch.randn(2, 14, generator=torch.Generator().manual_seed(seed))}, [2])
    obs[keys.TASK] = NonTensorStack.from_list(["t", "t"])
    return policy, obs


def test_inpainting_pulls_the_frozen_steps_onto_the_previous_chunk():
    policy, obs = _policy_and_obs(1)
    assert isinstance(policy, FlowPolicy)
    target = torch.randn(2, 12, 14) * 0.5  # a previous plan far from what this observation alone gives
    free = policy.sample_flow(obs, None)
    guided = policy.sample_flow(
        obs, None, inpainting=Inpainting(target, frozen=4, guided=8, max_guidance=5.0)
    )
    error_free = (free[:, :4] - target[:, :4]).abs().mean()
    error_guided = (guided[:, :4] - target[:, :4]).abs().mean()
    assert error_guided < 0.5 * error_free
    # the free tail (steps >= guided) is left to the policy, so it stays nearer its own chunk than the target
    assert (guided[:, 8:] - free[:, 8:]).abs().mean() < (guided[:, 8:] - target[:, 8:]).abs().mean()
    zero = policy.sample_flow(obs, None, inpainting=Inpainting(target, frozen=4, guided=8, max_guidance=0.0))
    torch.testing.assert_close(zero, free)  # beta = 0 turns guidance off

"""A 2-D action bandit with a good and a bad mode: the small multimodal problem extractor learning tests use.

One constant observation, one-step action chunks a in R^2 drawn from a mixture of two Gaussian modes. Actions
from the good mode (around ``good``) have higher advantage than those from the bad mode (around ``bad``); the
advantage is noisy, so the indicator I = 1[A > threshold] is imperfect in both modes::

    A | good ~ N(+adv_gap / 2, adv_noise),     A | bad ~ N(-adv_gap / 2, adv_noise)

With the defaults P(I = 1 | good) = 0.60 and P(I = 1 | bad) = 0.15, so the data's I = 1 conditional holds
80% good actions against 50% overall. A policy is judged by :meth:`Bandit.good_fraction` of its samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import torch
from tensordict import TensorDict

from recap.data import keys
from recap.data.spec import RobotSpec
from recap.protocols import DeploymentSettings, Policy, PolicyExtractor
from recap.testing.tiny_policy import mlp_flow_policy

TASK = "choose the good mode"


@attrs.frozen
class Bandit:
    """The bandit's data distribution (see the module docstring)."""

    good: tuple[float, float] = (1.0, 0.0)
    bad: tuple[float, float] = (-1.0, 0.0)
    spread: float = 0.25
    good_share: float = 0.5
    adv_gap: float = 0.2
    adv_noise: float = 0.155
    threshold: float = 0.061

    @property
    def spec(self) -> RobotSpec:
        return RobotSpec(cameras=(), state_dim=1, action_dim=2, joint_names=())

    def positive_rate(self, good: bool) -> float:
        """P(I = 1 | mode) = P(A > threshold | mode)."""
        mean = self.adv_gap / 2 if good else -self.adv_gap / 2
        return 0.5 * math.erfc((self.threshold - mean) / (self.adv_noise * math.sqrt(2)))

    def batch(self, size: int, generator: torch.Generator | None = None) -> TensorDict:
        """A labelled training batch of ``size`` samples (chunk size 1)."""
        g = generator
        good = torch.rand(size, generator=g) < self.good_share
        centre = torch.where(good[:, None], torch.tensor(self.good), torch.tensor(self.bad))
        action = centre + self.spread * torch.randn(size, 2, generator=g)
        advantage = torch.where(good, self.adv_gap / 2, -self.adv_gap / 2) + self.adv_noise * torch.randn(
            size, generator=g
        )
        batch = TensorDict(
            {
                keys.STATE: torch.zeros(size, 1),
                keys.ACTION: action[:, None, :],
                keys.ACTION_IS_PAD: torch.zeros(size, 1, dtype=torch.bool),
                keys.ADVANTAGE: advantage,
                keys.INDICATOR: advantage > self.threshold,
                keys.IS_INTERVENTION: torch.zeros(size, dtype=torch.bool),
            },
            batch_size=[size],
        )
        batch.set_non_tensor(keys.TASK, TASK)  # one string for every row
        return batch

    def observation(self, size: int) -> TensorDict:
        obs = TensorDict({keys.STATE: torch.zeros(size, 1)}, batch_size=[size])
        obs.set_non_tensor(keys.TASK, TASK)
        return obs

    def good_fraction(self, actions: torch.Tensor) -> float:
        """Share of actions ``[N, 1, 2]`` (or ``[N, 2]``) nearer the good mode than the bad one."""
        a = actions.reshape(-1, 2)
        to_good = (a - torch.tensor(self.good)).square().sum(-1)
        to_bad = (a - torch.tensor(self.bad)).square().sum(-1)
        return (to_good < to_bad).float().mean().item()

    def make_policy(self, *, hidden: int = 128, depth: int = 3, seed: int = 0) -> Policy:
        """A tiny flow policy for the bandit; sampling starts from unit noise so it represents a distribution."""
        torch.manual_seed(seed)
        return mlp_flow_policy(
            self.spec, hidden=hidden, depth=depth, chunk_size=1, noise_scale=1.0, embed_dim=16, task_buckets=4
        )

    def sample_good_fraction(
        self,
        policy: Policy,
        indicator: bool | None,
        guidance: float = 1.0,
        *,
        samples: int = 2000,
        seed: int = 0,
    ) -> float:
        """The good fraction of ``samples`` actions sampled from ``policy``."""
        actions = policy.sample_actions(
            self.observation(samples), indicator, guidance, generator=torch.Generator().manual_seed(seed)
        )
        return self.good_fraction(actions)


class BehaviourCloning:
    """Plain behaviour cloning (every sample, no indicator input): pre-trains reference policies in tests."""

    required_keys: tuple[str, ...] = ()
    deployment = DeploymentSettings(indicator=None, guidance=1.0)

    def setup(self, policy: Policy) -> None:
        """Nothing to prepare."""

    def loss(self, policy: Policy, batch: TensorDict) -> TensorDict:
        per_sample = policy.per_sample_loss(batch, None)
        return TensorDict({f"loss_{k}": v.mean() for k, v in per_sample.items()}, batch_size=[])


def train_on_bandit(
    policy: Policy,
    extractor: PolicyExtractor,
    bandit: Bandit,
    *,
    steps: int = 1500,
    batch_size: int = 256,
    lr: float = 3e-3,
    seed: int = 0,
    on_step: Callable[[int, TensorDict], None] | None = None,
) -> TensorDict:
    """Minimise the extractor's summed ``loss_*`` with Adam and a cosine learning-rate decay to zero.

    A deliberately small loop for learning tests (the real trainer is ``recap.train.train``); it calls
    ``extractor.setup(policy)`` first, as the trainer does. Returns the last step's loss output.
    """
    torch.manual_seed(seed)  # the extractor's own draws (dropout, flow noise) use the global generator
    # the data has its own stream: seeded like the global one, the dropout mask would equal the mode choice
    generator = torch.Generator().manual_seed(seed + 1_000_003)
    extractor.setup(policy)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    out = TensorDict({}, batch_size=[])
    for step in range(steps):
        out = extractor.loss(policy, bandit.batch(batch_size, generator))
        optimizer.zero_grad(set_to_none=True)
        sum(v for k, v in out.items() if k.startswith("loss_")).backward()
        optimizer.step()
        schedule.step()
        if on_step is not None:
            on_step(step, out)
    return out.detach()

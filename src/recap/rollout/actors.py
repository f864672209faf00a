"""What drives the robot during a rollout: a Policy sampled in chunks, or a scripted demonstrator.

Both are wrapped as an :class:`Actor` (``reset``, ``act`` one action per control tick, ``resync`` after an
operator handed control back), so the runner treats them alike.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from tensordict import NonTensorStack, TensorDict

from recap.data import keys
from recap.errors import ConfigError
from recap.protocols import DeploymentSettings, FlowPolicy, Inpainting, Policy
from recap.rollout.chunking import ChunkScheduler, Execution


@runtime_checkable
class Actor(Protocol):
    """One action per control tick; ``source`` is the store source of its episodes without interventions."""

    source: str

    def reset(self, task: str, seed: int | None) -> None: ...

    def act(self, obs: TensorDict) -> torch.Tensor | None:
        """This tick's action, or None when the actor has no committed action (the robot holds position)."""
        ...

    def resync(self) -> None:
        """Drop any plan or queued actions: the robot state changed under the actor (an operator took over)."""
        ...


class PolicyActor:
    """Action chunking: a chunk of H actions per inference, executed by a :class:`ChunkScheduler`.

    The observation is batched to ``[1]`` with the task prompt as a text entry; sampling uses the policy's
    deployment settings (indicator, CFG guidance) and a generator seeded per episode, so rollouts repeat.
    ``act`` returns None on ticks without a committed action (the runner holds position).
    """

    source = "autonomous"

    def __init__(
        self,
        policy: Policy,
        deployment: DeploymentSettings | None = None,
        *,
        chunk_execute: int | None = None,
        seed: int = 0,
        execution: Execution | None = None,
    ):
        if not isinstance(policy, Policy):
            raise ConfigError(
                f"expected a recap Policy (sample_actions, per_sample_loss), got {type(policy).__name__}"
            )
        horizon = int(policy.chunk_size)
        self.policy, self.deployment, self.seed = policy, deployment or DeploymentSettings(), seed
        self.chunk_execute = horizon if chunk_execute is None else int(chunk_execute)
        self.scheduler = ChunkScheduler(
            self._sample,
            horizon=horizon,
            execute=self.chunk_execute,
            execution=execution or Execution(),
            inpaints=isinstance(policy, FlowPolicy),
        )
        self._task = ""
        self._generator = torch.Generator()
        self.inferences = 0

    def reset(self, task: str, seed: int | None) -> None:
        self._task = task
        self.scheduler.reset()
        self._generator.manual_seed(hash((self.seed, 0 if seed is None else seed)) & 0x7FFFFFFF)

    def act(self, obs: TensorDict) -> torch.Tensor | None:
        return self.scheduler.next_action(obs)

    def resync(self) -> None:
        self.scheduler.resync()

    def _sample(self, obs: TensorDict, inpainting: Inpainting | None) -> torch.Tensor:
        batch = obs.unsqueeze(0)
        batch[keys.TASK] = NonTensorStack.from_list([self._task])
        indicator, guidance = self.deployment.indicator, self.deployment.guidance
        with torch.no_grad():
            if inpainting is not None:
                assert isinstance(self.policy, FlowPolicy)
                chunk = self.policy.sample_flow(
                    batch, indicator, guidance, inpainting=inpainting, generator=self._generator
                )
            else:
                chunk = self.policy.sample_actions(batch, indicator, guidance, generator=self._generator)
        self.inferences += 1
        return chunk[0].float().cpu()


class DemonstratorActor:
    """A scripted demonstrator (``reset(task, seed)``, ``act(obs)``; optional ``replan()`` to resume)."""

    source = "demonstration"

    def __init__(self, demonstrator: Any):
        if not (hasattr(demonstrator, "reset") and hasattr(demonstrator, "act")):
            raise ConfigError(
                f"a demonstrator needs reset(task, seed) and act(obs); got {type(demonstrator).__name__}"
            )
        self.demonstrator = demonstrator

    def reset(self, task: str, seed: int | None) -> None:
        self.demonstrator.reset(task, seed)

    def act(self, obs: TensorDict) -> torch.Tensor:
        return torch.as_tensor(self.demonstrator.act(obs), dtype=torch.float32)

    def resync(self) -> None:
        replan = getattr(self.demonstrator, "replan", None)
        if replan is not None:
            replan()


def as_actor(
    thing: Any,
    deployment: DeploymentSettings | None = None,
    chunk_execute: int | None = None,
    seed: int = 0,
    execution: Execution | None = None,
) -> Actor:
    """Wrap a Policy or a demonstrator as an Actor (an Actor passes through)."""
    if isinstance(thing, (PolicyActor, DemonstratorActor)):
        return thing
    if isinstance(thing, Policy):
        return PolicyActor(thing, deployment, chunk_execute=chunk_execute, seed=seed, execution=execution)
    return DemonstratorActor(thing)

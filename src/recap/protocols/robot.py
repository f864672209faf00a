"""The RobotBackend and Teleoperator protocols: simulation and hardware implement the same contract."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs
import torch
from tensordict import TensorDict

from recap.data.spec import RobotSpec


@attrs.frozen
class StepResult:
    """What ``RobotBackend.step`` returns.

    Attributes:
        obs: the observation after the step (unbatched; keys of ``recap.data.keys``).
        done: the episode ended (success reached, time limit, or a fault).
        info: backend details; known keys: ``success`` (bool | None, final outcome when known),
            ``stage`` (int), ``subtask`` (str), ``fault`` (str, a fault that ended the episode),
            ``action`` (Tensor, the action actually executed after the backend's safety clamps; recorded
            instead of the requested one).
    """

    obs: TensorDict
    done: bool
    info: dict[str, Any] = attrs.field(factory=dict)


@runtime_checkable
class RobotBackend(Protocol):
    """A robot, real or simulated, controlled by absolute joint-position actions at ``spec.fps``."""

    spec: RobotSpec

    def reset(self, task: str, seed: int | None = None) -> TensorDict:
        """Start an episode of ``task`` and return the first observation."""
        ...

    def step(self, action: torch.Tensor) -> StepResult:
        """Apply one action ``[action_dim]`` and advance one control tick."""
        ...

    def close(self) -> None:
        """Release the robot (torque off after a safe stop, close ports/renderers). Idempotent."""
        ...

    def __enter__(self) -> RobotBackend: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Teleoperator(Protocol):
    """A human (or scripted expert) who may take over from the policy."""

    def reset(self, task: str, seed: int | None = None) -> None:
        """Called at the start of each episode."""
        ...

    def poll(self, obs: TensorDict) -> torch.Tensor | None:
        """The operator's action ``[action_dim]`` when they have taken over, else ``None``."""
        ...


@runtime_checkable
class Demonstrator(Protocol):
    """A scripted demonstrator: drives the robot like a policy during collection, one action per tick."""

    def reset(self, task: str, seed: int | None = None) -> None:
        """Plan the episode of ``task`` (called after the backend's reset)."""
        ...

    def act(self, obs: TensorDict) -> torch.Tensor:
        """The next action ``[action_dim]``."""
        ...

"""Run one episode of an actor (policy or demonstrator) on a RobotBackend, with an optional Teleoperator.

Per control tick: the teleoperator is polled first; when it returns an action it has taken over and that action
is executed and flagged ``is_intervention``; otherwise the actor acts. When the operator hands control back the
actor is resynced (queued actions of a chunk are stale after a takeover). The episode ends when the backend
says done (success, its own time limit or a fault) or after ``time_limit`` ticks.

Step t of the record holds the observation o_t, the action a_t executed from it, whether a_t came from the
operator, and the sub-task text the backend reported for that tick. A tick on which the actor has no
committed action (an asynchronous policy waiting for its next chunk, a lost policy server) holds position: the
last executed action is repeated.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from tensordict import TensorDict

from recap.data import keys
from recap.errors import ConfigError
from recap.protocols import DeploymentSettings, RobotBackend, Teleoperator
from recap.rollout.actors import Actor, as_actor
from recap.rollout.chunking import Execution, ExecutionLog


@attrs.frozen
class EpisodeRecord:
    """One finished episode, ready for ``EpisodeStore.add``.

    Attributes:
        steps: ``TensorDict[T]`` with the observation keys, ``action`` and ``is_intervention``.
        task, seed: what was run.
        success: the outcome (None when the backend cannot tell; the operator labels it later).
        subtasks: one sub-task text per step ("" when unknown).
        source: "demonstration", "autonomous", or "correction" when an operator intervened.
        fps: control rate, for durations.
        fault: a fault that ended the episode, or "".
        max_stage: the furthest task stage the backend reported (``info["stage"]``), None if it reports none.
        execution: a Policy's chunk timing (inference delay per chunk, ticks held, outages); None otherwise.
    """

    steps: TensorDict
    task: str
    seed: int | None
    success: bool | None
    subtasks: list[str]
    source: str
    fps: int
    fault: str = ""
    max_stage: int | None = None
    execution: ExecutionLog | None = None

    @property
    def length(self) -> int:
        return int(self.steps.batch_size[0])

    @property
    def duration_s(self) -> float:
        """Robot time of the episode (failures count at their full length)."""
        return self.length / self.fps

    @property
    def intervention_steps(self) -> int:
        return int(self.steps.get(keys.IS_INTERVENTION).sum())


def run_episode(
    backend: RobotBackend,
    actor: Any,
    *,
    task: str,
    seed: int | None = None,
    chunk_execute: int | None = None,
    time_limit: int | None = None,
    teleoperator: Teleoperator | None = None,
    deployment: DeploymentSettings | None = None,
    record_images: bool = True,
    execution: Execution | None = None,
) -> EpisodeRecord:
    """Run ``actor`` (a Policy, a demonstrator or an Actor) for one episode of ``task`` and record it.

    Args:
        chunk_execute: for a Policy, actions executed per sampled chunk (s of H) before re-inferring.
        time_limit: maximum control ticks (None: until the backend ends the episode).
        teleoperator: polled every tick; its actions override the actor's and are flagged as interventions.
        deployment: sampling settings of a Policy (indicator, CFG guidance); default unconditional.
        record_images: keep camera frames in the record (False keeps only state, actions and flags).
        execution: how a Policy's chunks are executed (sync / naive async / real-time chunking, delay);
            default synchronous without delay.
    """
    if time_limit is not None and time_limit < 1:
        raise ConfigError(f"time_limit must be a positive number of control ticks or None, got {time_limit}")
    act: Actor = as_actor(
        actor, deployment, chunk_execute, seed=0 if seed is None else seed, execution=execution
    )
    obs = _start(backend, act, teleoperator, task, seed)
    control = _Control(act, teleoperator)
    recorder = _Recorder(record_images, backend.spec.action_dim)
    done = False
    while not done and (time_limit is None or recorder.length < time_limit):
        action, by_operator = control.choose(obs)
        if action is None:
            action = recorder.hold_action(obs)
        result = backend.step(action)
        recorder.add(obs, action, by_operator, result.info)
        obs, done = result.obs, result.done
    return recorder.finish(
        task=task,
        seed=seed,
        success=_outcome(recorder.info, done, backend),
        source="correction" if recorder.intervened else act.source,
        fps=int(getattr(getattr(backend, "spec", None), "fps", 50)),
        execution=getattr(getattr(act, "scheduler", None), "log", None),
    )


def _start(
    backend: RobotBackend, act: Actor, teleoperator: Teleoperator | None, task: str, seed: int | None
) -> TensorDict:
    """Reset the backend, the actor and the operator for a new episode; the first observation."""
    obs = backend.reset(task, seed)
    act.reset(task, seed)
    if teleoperator is not None:
        teleoperator.reset(task, seed)
    return obs


class _Control:
    """Who acts this tick: the operator when they have taken over, else the actor (resynced on hand-back)."""

    def __init__(self, act: Actor, teleoperator: Teleoperator | None):
        self.act, self.teleoperator = act, teleoperator
        self._operator_had_control = False

    def choose(self, obs: TensorDict) -> tuple[torch.Tensor | None, bool]:
        """(action or None to hold position, whether the operator gave it)."""
        override = self.teleoperator.poll(obs) if self.teleoperator is not None else None
        if override is None and self._operator_had_control:
            self.act.resync()  # hand-back: whatever the actor had queued predates the takeover
        self._operator_had_control = override is not None
        action = override if override is not None else self.act.act(obs)
        if action is None:
            return None, False
        return torch.as_tensor(action, dtype=torch.float32).reshape(-1), override is not None


class _Recorder:
    """Accumulates the steps of an episode and builds its :class:`EpisodeRecord`."""

    def __init__(self, record_images: bool, action_dim: int):
        self.record_images, self.action_dim = record_images, action_dim
        self.frames: list[TensorDict] = []
        self.actions: list[torch.Tensor] = []
        self.flags: list[bool] = []
        self.subtasks: list[str] = []
        self.info: dict[str, Any] = {}
        self.max_stage: int | None = None

    @property
    def length(self) -> int:
        return len(self.actions)

    @property
    def intervened(self) -> bool:
        return any(self.flags)

    def hold_action(self, obs: TensorDict) -> torch.Tensor:
        """Hold position: repeat the last executed action (at the start: the current joint state)."""
        if self.actions:
            return self.actions[-1]
        state = obs.get(keys.STATE).float().reshape(-1)
        if state.shape[0] != self.action_dim:
            raise ConfigError(
                f"cannot hold position before the first action: the state has {state.shape[0]} values, the "
                f"action {self.action_dim}; use a synchronous execution without delay for this robot"
            )
        return state

    def add(self, obs: TensorDict, action: torch.Tensor, by_operator: bool, info: dict[str, Any]) -> None:
        self.frames.append(obs if self.record_images else obs.exclude(*_image_keys(obs)))
        executed = info.get("action")  # after the backend's limits: the action the robot ran
        self.actions.append(
            action if executed is None else torch.as_tensor(executed, dtype=torch.float32).reshape(-1)
        )
        self.flags.append(by_operator)
        self.info = info
        if "stage" in info:
            self.max_stage = max(self.max_stage if self.max_stage is not None else 0, int(info["stage"]))
        self.subtasks.append(str(info.get("subtask", "")))

    def finish(
        self,
        *,
        task: str,
        seed: int | None,
        success: bool | None,
        source: str,
        fps: int,
        execution: ExecutionLog | None,
    ) -> EpisodeRecord:
        if not self.actions:
            raise RuntimeError("the episode recorded no steps")
        steps = torch.stack(self.frames)
        steps.set(keys.ACTION, torch.stack(self.actions))
        steps.set(keys.IS_INTERVENTION, torch.tensor(self.flags, dtype=torch.bool))
        return EpisodeRecord(
            steps=steps,
            task=task,
            seed=seed,
            success=success,
            subtasks=self.subtasks,
            source=source,
            fps=fps,
            fault=str(self.info.get("fault", "")),
            max_stage=self.max_stage,
            execution=execution,
        )


def _outcome(info: dict[str, Any], done: bool, backend: RobotBackend) -> bool | None:
    """The episode's success: the backend's verdict, or a failure when the runner's time ran out first."""
    success = info.get("success")
    if success is None and not done and getattr(backend, "labels_success", False):
        return False  # ran out of the runner's time: a failure for a backend that judges success itself
    return None if success is None else bool(success)


def _image_keys(obs: TensorDict) -> list[str]:
    return [k for k in list(obs.keys()) if isinstance(k, str) and k.startswith(keys.IMAGE_PREFIX)]

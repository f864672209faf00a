"""Run one episode of an actor (policy or demonstrator) on a RobotBackend, with an optional Teleoperator.

Per control tick: the teleoperator is polled first; when it returns an action it has taken over and that action
is executed and flagged ``is_intervention``; otherwise the actor acts. When the operator hands control back the
actor is resynced (queued actions of a chunk are stale after a takeover). The episode ends when the backend
says done (success, its own time limit or a fault) or after ``time_limit`` ticks.

Step t of the record holds the observation o_t, the action a_t executed from it, whether a_t came from the
operator, and the sub-task text the backend reported for that tick.
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
) -> EpisodeRecord:
    """Run ``actor`` (a Policy, a demonstrator or an Actor) for one episode of ``task`` and record it.

    Args:
        chunk_execute: for a Policy, actions executed per sampled chunk (k of H) before re-inferring.
        time_limit: maximum control ticks (None: until the backend ends the episode).
        teleoperator: polled every tick; its actions override the actor's and are flagged as interventions.
        deployment: sampling settings of a Policy (indicator, CFG guidance); default unconditional.
        record_images: keep camera frames in the record (False keeps only state, actions and flags).
    """
    if time_limit is not None and time_limit < 1:
        raise ConfigError(f"time_limit must be a positive number of control ticks or None, got {time_limit}")
    act: Actor = as_actor(actor, deployment, chunk_execute, seed=0 if seed is None else seed)
    obs = backend.reset(task, seed)
    act.reset(task, seed)
    if teleoperator is not None:
        teleoperator.reset(task, seed)
    frames: list[TensorDict] = []
    actions: list[torch.Tensor] = []
    flags: list[bool] = []
    subtasks: list[str] = []
    info: dict[str, Any] = {}
    operator_had_control = False
    max_stage: int | None = None
    done = False
    while not done and (time_limit is None or len(actions) < time_limit):
        override = teleoperator.poll(obs) if teleoperator is not None else None
        if override is None and operator_had_control:
            act.resync()  # hand-back: whatever the actor had queued predates the takeover
        operator_had_control = override is not None
        action = override if override is not None else act.act(obs)
        action = torch.as_tensor(action, dtype=torch.float32).reshape(-1)
        frames.append(obs if record_images else obs.exclude(*_image_keys(obs)))
        result = backend.step(action)
        executed = result.info.get("action")  # after the backend's limits: the action the robot ran
        actions.append(
            action if executed is None else torch.as_tensor(executed, dtype=torch.float32).reshape(-1)
        )
        flags.append(override is not None)
        info = result.info
        if "stage" in info:
            max_stage = max(max_stage if max_stage is not None else 0, int(info["stage"]))
        subtasks.append(str(info.get("subtask", "")))
        obs, done = result.obs, result.done
    if not actions:
        raise RuntimeError("the episode recorded no steps")
    success = info.get("success")
    if success is None and not done and getattr(backend, "labels_success", False):
        success = False  # ran out of the runner's time: a failure for a backend that judges success itself
    steps = torch.stack(frames)
    steps.set(keys.ACTION, torch.stack(actions))
    steps.set(keys.IS_INTERVENTION, torch.tensor(flags, dtype=torch.bool))
    source = "correction" if any(flags) else act.source
    fps = int(getattr(getattr(backend, "spec", None), "fps", 50))
    return EpisodeRecord(
        steps=steps,
        task=task,
        seed=seed,
        success=None if success is None else bool(success),
        subtasks=subtasks,
        source=source,
        fps=fps,
        fault=str(info.get("fault", "")),
        max_stage=max_stage,
    )


def _image_keys(obs: TensorDict) -> list[str]:
    return [k for k in list(obs.keys()) if isinstance(k, str) and k.startswith(keys.IMAGE_PREFIX)]

"""``scripted-expert``: a scripted operator that watches the simulator and takes over before a failure.

It reads privileged state (object poses, contacts) every tick and takes over when

- ``bad_grasp``: the right gripper carries the cube lifted with the cube's faces turned more than
  ``bad_grasp_deg`` away from the finger axis (such grasps survive the lift, then the hand-over fails);
- ``dropped``: the object lies on the table (5 ticks), held by no gripper, after it had been carried;
- ``no_progress``: for ``no_progress_steps`` ticks the scene's stage has not advanced, no object has moved by 2 cm
  and no gripper has come 2 cm closer to the object (a slow reach is not a stall).

Recovery is the flawless demonstrator planned from the current state. A bad grasp or a drop is repaired: put a
badly held cube back down, grasp it again correctly and lift it; control is handed back once the right gripper
holds the cube again and the actor resumes from there. A stall is resolved by finishing the task from where it
stands (the hand-over if the right gripper carries the cube, else pick and hand-over): the stalled state is where
the policy lacks good data, so that is where the correction is worth recording.

Only transfer cube is supported: for insertion the expert refuses to be built (re-grasping the peg while the left
arm holds the socket knocked the socket over in every trial here).
"""

from __future__ import annotations

import attrs
import mujoco
import numpy as np
import torch
from tensordict import TensorDict

from recap.config import TeleoperatorConfig
from recap.errors import ConfigError
from recap_bimanual.sim.backend import AlohaSimBackend
from recap_bimanual.sim.demonstrator import ScriptedDemonstrator, ScriptedDemonstratorConfig

LIFTED_Z = 0.06
SUPPORTED_TASKS = ("transfer_cube",)
PROGRESS_MOVE = 0.02  # m an object, or a gripper towards it, must move for the watch to count it as progress


@attrs.frozen
class ScriptedExpertConfig(TeleoperatorConfig):
    """When the scripted expert intervenes.

    Attributes:
        bad_grasp_deg: cube misalignment in the right gripper (deg) that counts as a bad grasp.
        no_progress_steps: ticks without a new stage or a 2 cm object motion before taking over.
        max_interventions: takeovers per episode (then it only watches).
    """

    bad_grasp_deg: float = 20.0
    no_progress_steps: int = 100
    max_interventions: int = 2

    def __attrs_post_init__(self) -> None:
        if self.no_progress_steps < 1 or self.max_interventions < 0:
            raise ConfigError(
                f"no_progress_steps must be >= 1 and max_interventions >= 0, got {self.no_progress_steps}, "
                f"{self.max_interventions}"
            )


class ScriptedExpert:
    """A Teleoperator: ``poll(obs)`` returns the expert's action while it has taken over, else None."""

    def __init__(self, config: ScriptedExpertConfig | None, backend: AlohaSimBackend):
        if not isinstance(backend, AlohaSimBackend):
            raise ConfigError(
                f"the scripted expert watches the aloha-sim backend's privileged state, got {type(backend).__name__}"
            )
        if backend.task not in SUPPORTED_TASKS:
            raise ConfigError(
                f"the scripted expert can recover only {list(SUPPORTED_TASKS)}, not {backend.task!r}: its "
                "insertion recovery does not work yet; collect insertion episodes without --teleoperator"
            )
        self.config = config or ScriptedExpertConfig()
        self.backend = backend
        self.recovery = ScriptedDemonstrator(ScriptedDemonstratorConfig(), backend)
        self._gripper_bodies = [
            backend.model.body(f"vx300s_{side}/gripper_link").id for side in ("left", "right")
        ]
        self.reasons: list[str] = []
        self._reset_watch()

    def _reset_watch(self) -> None:
        self._active = False
        self._best_stage = 0
        self._best_at = 0
        self._lifted = False
        self._tick = 0
        self._dropped_for = 0
        self._mark: np.ndarray | None = None
        self._reach_mark: np.ndarray | None = None
        self.reasons = []

    # -- Teleoperator ------------------------------------------------------------------------------------------
    def reset(self, task: str, seed: int | None = None) -> None:
        if task != self.backend.task:
            raise ConfigError(f"expert built for {self.backend.task!r}, asked for {task!r}")
        self._reset_watch()

    def poll(self, obs: TensorDict) -> torch.Tensor | None:
        self._tick += 1
        stage = self.backend.stage
        positions = self._object_positions()
        reach = self._gripper_distances(positions[0])
        moved = self._mark is None or float(np.abs(positions - self._mark).max()) > PROGRESS_MOVE
        closer = self._reach_mark is None or bool((reach < self._reach_mark - PROGRESS_MOVE).any())
        # progress: a new stage, objects being moved, or a gripper closing in on the object
        if stage > self._best_stage or moved or closer:
            self._best_stage, self._best_at = max(stage, self._best_stage), self._tick
            self._mark, self._reach_mark = positions, reach
        # "lifted" means really carried (4 cm above resting), not a brief stage-2 flicker while closing
        self._lifted = self._lifted or self.backend.object_poses()[2] > LIFTED_Z
        if self._active:
            if self.recovery.finished:
                if self._holds_off_table():
                    self._active = False
                    self._best_at = self._tick  # progress clock restarts at hand-back
                    return None
                if self.reasons.count("retry") >= self.config.max_interventions:
                    self._active = False  # give up: the episode will fail and be labelled so
                    return None
                self._take_over("retry")  # the recovery did not hold the object: plan it again
            return self.recovery.act(obs)
        if len(self.reasons) >= self.config.max_interventions:
            return None
        reason = self._failure_imminent()
        if reason is None:
            return None
        self._take_over(reason)
        return self.recovery.act(obs)

    def _object_positions(self) -> np.ndarray:
        poses = self.backend.object_poses().reshape(-1, 7)
        return poses[:, :3].copy()

    def _gripper_distances(self, target: np.ndarray) -> np.ndarray:
        """Distance (m) from each gripper (left, right) to ``target``."""
        return np.linalg.norm(self.backend.data.xpos[self._gripper_bodies] - target, axis=1)

    # -- watching ----------------------------------------------------------------------------------------------
    def _touching(self) -> set[int]:
        rules = self.backend.rules
        return {b for a, b in rules.contact_pairs(self.backend.data) if a in rules.obj}

    def misalignment_deg(self) -> float:
        """Angle between the finger-closing axis of the right gripper and the nearest cube face normal."""
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, self.backend.object_poses()[3:7])
        right = self._gripper_bodies[1]  # the right gripper carries the cube
        fingers = self.backend.data.xmat[right].reshape(3, 3)[:, 1]
        cosine = float(np.max(np.abs(rot.reshape(3, 3).T @ fingers)))
        return float(np.degrees(np.arccos(np.clip(cosine, 0.0, 1.0))))

    def _failure_imminent(self) -> str | None:
        rules = self.backend.rules
        touching = self._touching()
        held_right = bool(touching & rules.right_fingers)
        held_left = bool(touching & rules.left_fingers)
        on_table = rules.table in touching
        carried = held_right and not held_left and not on_table
        if carried and self.misalignment_deg() > self.config.bad_grasp_deg:
            return "bad_grasp"
        dropped = self._lifted and on_table and not held_right and not held_left
        self._dropped_for = self._dropped_for + 1 if dropped else 0
        if self._dropped_for >= 5:
            return "dropped"
        if self._tick - self._best_at > self.config.no_progress_steps:
            return "no_progress"
        return None

    def _holds_off_table(self, right_only: bool = False) -> bool:
        rules = self.backend.rules
        touching = self._touching()
        fingers = rules.right_fingers if right_only else rules.right_fingers | rules.left_fingers
        return bool(touching & fingers) and rules.table not in touching

    def _take_over(self, reason: str) -> None:
        self.reasons.append(reason)
        self._active = True
        if reason == "no_progress":
            self.recovery.replan()  # finish the task from here
        else:
            self.recovery.start_from_state(
                ["place", "pick"] if self._holds_off_table(right_only=True) else ["pick"]
            )

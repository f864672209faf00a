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

Insertion: ``bad_grasp`` is the lifted peg pivoted in the right fingers more than ``peg_pivot_deg`` away from
the planned grasp, ``dropped`` the peg or the socket on the table out of its gripper. The recovery moves only the
arm that lacks its object while the other holds its target (re-planning the two-arm pick drove the left arm
down with the socket in its fingers and knocked it over): the right arm puts a pivoted peg down and grasps it
again, a dropped peg or socket is picked again by its arm; control is handed back once both are held off the
table, and a stall is finished with the closed-loop align and insert. A socket lying tipped over cannot be
grasped from above, so the expert leaves that episode to fail.
"""

from __future__ import annotations

import attrs
import mujoco
import numpy as np
import torch
from tensordict import TensorDict

from recap.config import TeleoperatorConfig
from recap.errors import ConfigError
from recap_bimanual.sim import plans
from recap_bimanual.sim.backend import AlohaSimBackend
from recap_bimanual.sim.demonstrator import ScriptedDemonstrator, ScriptedDemonstratorConfig

LIFTED_Z = 0.06
SUPPORTED_TASKS = ("transfer_cube", "insertion")
UPRIGHT_DEG = 30.0  # a socket lying tilted further cannot be grasped again from above: nothing left to save
PROGRESS_MOVE = 0.02  # m an object, or a gripper towards it, must move for the watch to count it as progress


@attrs.frozen
class ScriptedExpertConfig(TeleoperatorConfig):
    """When the scripted expert intervenes.

    Attributes:
        bad_grasp_deg: cube misalignment in the right gripper (deg) that counts as a bad grasp.
        peg_pivot_deg: how far (deg) the carried peg may have pivoted in the right fingers away from the
            planned grasp before it counts as a bad grasp (a flawless grasp stays within 3 deg).
        no_progress_steps: ticks without a new stage or a 2 cm object motion before taking over.
        max_interventions: takeovers per episode (then it only watches).
    """

    bad_grasp_deg: float = 20.0
    peg_pivot_deg: float = 8.0
    no_progress_steps: int = 100
    max_interventions: int = 2

    def __attrs_post_init__(self) -> None:
        if self.no_progress_steps < 1 or self.max_interventions < 0:
            raise ConfigError(
                f"no_progress_steps must be >= 1 and max_interventions >= 0, got {self.no_progress_steps}, "
                f"{self.max_interventions}"
            )


def socket_tilt_deg(backend: AlohaSimBackend) -> float:
    """The insertion socket's tilt from upright, in degrees (0 when it stands or is carried level)."""
    rot = np.empty(9)
    mujoco.mju_quat2Mat(rot, backend.object_poses()[10:14])
    return float(np.degrees(np.arccos(np.clip(rot[8], -1.0, 1.0))))


class ScriptedExpert:
    """A Teleoperator: ``poll(obs)`` returns the expert's action while it has taken over, else None."""

    def __init__(self, config: ScriptedExpertConfig | None, backend: AlohaSimBackend):
        if not isinstance(backend, AlohaSimBackend):
            raise ConfigError(
                f"the scripted expert watches the aloha-sim backend's privileged state, got {type(backend).__name__}"
            )
        if backend.task not in SUPPORTED_TASKS:
            raise ConfigError(
                f"the scripted expert can recover {list(SUPPORTED_TASKS)}, not {backend.task!r}"
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
        self._lifted = np.zeros(2, dtype=bool)  # per object (cube; or peg, socket): carried 4 cm up once
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
        self._lifted[: len(positions)] |= positions[:, 2] > LIFTED_Z
        if self._active:
            if self.recovery.finished:
                if self._recovered():
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
        if self.backend.task == "insertion":
            return self._insertion_failure_imminent()
        rules = self.backend.rules
        touching = self._touching()
        held_right = bool(touching & rules.right_fingers)
        held_left = bool(touching & rules.left_fingers)
        on_table = rules.table in touching
        carried = held_right and not held_left and not on_table
        if carried and self.misalignment_deg() > self.config.bad_grasp_deg:
            return "bad_grasp"
        dropped = self._lifted[0] and on_table and not held_right and not held_left
        return self._dropped_or_stalled(dropped)

    def _dropped_or_stalled(self, dropped: bool) -> str | None:
        """The watches both tasks share: an object dropped for 5 ticks, or no progress for too long."""
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

    def _recovered(self) -> bool:
        """The recovery left the object(s) carried: cube in a gripper; peg in the right, socket in the left."""
        if self.backend.task == "insertion":
            held = self._insertion_holds()
            return held.peg and held.socket
        return self._holds_off_table()

    def _take_over(self, reason: str) -> None:
        self.reasons.append(reason)
        self._active = True
        if self.backend.task == "insertion":
            phases = self._insertion_repair()
            # a stall is finished from where it stands; a bad grasp or a drop is repaired and handed back
            if reason == "no_progress" or not phases:
                phases += ["align", "insert"]
            self.recovery.start_from_state(phases)
        elif reason == "no_progress":
            self.recovery.replan()  # finish the task from here
        else:
            self.recovery.start_from_state(
                ["place", "pick"] if self._holds_off_table(right_only=True) else ["pick"]
            )

    # -- insertion -----------------------------------------------------------------------------------------
    def _insertion_holds(self) -> _Holds:
        rules = self.backend.rules
        pairs = rules.contact_pairs(self.backend.data)
        peg = {b for a, b in pairs if a in rules.obj}
        socket = {b for a, b in pairs if a in rules.socket}
        return _Holds(
            peg=bool(peg & rules.right_fingers) and rules.table not in peg,
            socket=bool(socket & rules.left_fingers) and rules.table not in socket,
            peg_on_table=rules.table in peg and not peg & rules.right_fingers,
            socket_on_table=rules.table in socket and not socket & rules.left_fingers,
            peg_at_socket=bool(peg & rules.socket) or rules.pin in peg,
        )

    def peg_pivot_deg(self) -> float:
        """How far the peg's long axis has turned in the right gripper away from the planned grasp, where it
        meets the gripper's approach axis at the pick pitch (the fingers squeeze the peg's sides, so a slipping
        or off-centre grasp pivots it about the finger axis)."""
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, self.backend.object_poses()[3:7])
        gripper = self.backend.data.xmat[self._gripper_bodies[1]].reshape(3, 3)
        along_approach = abs(float((gripper.T @ rot.reshape(3, 3)[:, 0])[0]))
        angle = float(np.degrees(np.arccos(np.clip(along_approach, 0.0, 1.0))))
        return abs(angle - abs(plans.PEG_PICK_PITCH))

    def _insertion_failure_imminent(self) -> str | None:
        held = self._insertion_holds()
        if held.socket_on_table and socket_tilt_deg(self.backend) > UPRIGHT_DEG:
            return None  # knocked over: a re-grasp from above cannot help, let the episode fail
        carried = held.peg and not held.peg_at_socket and self._lifted[0]
        if carried and self.peg_pivot_deg() > self.config.peg_pivot_deg:
            return "bad_grasp"
        dropped = (self._lifted[0] and held.peg_on_table) or (self._lifted[1] and held.socket_on_table)
        return self._dropped_or_stalled(dropped)

    def _insertion_repair(self) -> list[str]:
        """Phases that leave the peg well held in the right gripper and the socket in the left, each arm
        re-picking only what it lacks while the other holds still (moving both knocked the socket over)."""
        held = self._insertion_holds()
        if not held.peg and not held.socket:
            return ["pick"]
        phases = [] if held.socket else ["pick_socket"]
        if not held.peg:
            phases.append("pick_peg")
        elif self.peg_pivot_deg() > self.config.peg_pivot_deg:
            phases += ["place", "pick_peg"]
        return phases


@attrs.frozen
class _Holds:
    """Who holds what in the insertion scene (contacts of this tick)."""

    peg: bool  # in the right fingers, off the table
    socket: bool  # in the left fingers, off the table
    peg_on_table: bool  # on the table and not in the right fingers
    socket_on_table: bool
    peg_at_socket: bool  # touching the socket walls or the pin

"""``scripted``: a waypoint demonstrator for the ALOHA scenes, with seeded, configurable human-like flaws.

Each phase of the task plan (:mod:`recap_bimanual.sim.plans`) is planned from the current state, interpolated
with min-jerk profiles and turned into joint actions by the lock-step mocap IK (:mod:`recap_bimanual.sim.ik`).
The flaws model a human teleoperator:

- ``hesitation_prob`` / ``hesitation_steps``: before each keyframe, with this probability, hold still this long;
- ``slowness``: every motion takes this factor longer (1.0 = nominal);
- ``action_noise``: Gaussian noise (rad, std) added to the arm joint actions each step;
- ``loose_grip_prob``: the right gripper relaxes to ``loose_grip_value`` while carrying the cube (it slips out);
- ``bad_grasp_prob``: the right grasp is rotated by ``bad_grasp_roll`` (about the approach axis) and
  ``bad_grasp_yaw`` (about the vertical) degrees. The default, yaw 45, fails every time but early: the cube
  rises with the gripper and slips out during the lift. Roll 50 + yaw 20 is the late failure that makes credit
  assignment hard: the cube is carried and handed over in 8/8 trials here, then lost in 5/8.

Per-episode flaws (bad grasp, loose grip) are drawn from low-discrepancy sequences over episode seeds, so the
configured probabilities hold closely over any range of seeds; per-step draws (hesitations, noise) come from
``np.random.default_rng([config.seed, episode_seed])``. Every episode is reproducible from its seed.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch
from tensordict import TensorDict

from recap.config import DemonstratorConfig
from recap.errors import ConfigError
from recap.validators import fraction, non_negative
from recap_bimanual.sim import plans
from recap_bimanual.sim.backend import AlohaSimBackend
from recap_bimanual.sim.ik import MocapIK
from recap_bimanual.sim.trajectory import ArmTarget, Keyframe, Trajectory, interpolate


@attrs.frozen
class ScriptedDemonstratorConfig(DemonstratorConfig):
    """Flaws of the scripted demonstrator (all off by default: the flawless demonstrator)."""

    hesitation_prob: float = attrs.field(default=0.0, validator=fraction)
    hesitation_steps: int = attrs.field(default=25, validator=non_negative)
    slowness: float = attrs.field(default=1.0, validator=non_negative)
    action_noise: float = attrs.field(default=0.0, validator=non_negative)
    loose_grip_prob: float = attrs.field(default=0.0, validator=fraction)
    loose_grip_value: float = 0.6
    bad_grasp_prob: float = attrs.field(default=0.0, validator=fraction)
    bad_grasp_roll: float = 0.0
    bad_grasp_yaw: float = 45.0
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if self.slowness <= 0:
            raise ConfigError(f"slowness scales motion durations and must be > 0, got {self.slowness}")


@attrs.frozen
class EpisodeFlaws:
    """The flaws drawn for one episode (reported for measurement)."""

    bad_grasp: bool
    loose_grip: bool
    hesitations: int = 0


#: Irrational steps of the per-episode flaw draws (golden ratio, silver ratio).
_WEYL_STEPS = ((np.sqrt(5.0) - 1) / 2, np.sqrt(2.0) - 1)


def _flaw_draw(episode_seed: int, flaw: int, config_seed: int) -> float:
    """A uniform draw in [0, 1) for one per-episode flaw: a Weyl sequence over episode seeds,
    ``u_k = frac(offset + k * alpha)``, with a random offset per (config seed, flaw). Consecutive seeds are
    equidistributed, so over any N consecutive episode seeds a flaw of probability p hits p * N +- ~log N times
    (independent draws would scatter by +-sqrt(N p (1 - p)), e.g. +-4.6 of 100 at p = 0.3)."""
    offset = np.random.default_rng([config_seed, 1000 + flaw]).random()
    return float((offset + episode_seed * _WEYL_STEPS[flaw]) % 1.0)


#: peg-centre to socket-centre distance at which the peg presses on the pin (pin 4 cm + peg 6 cm, minus 1 cm)
INSERT_DEPTH = 0.09


class ScriptedDemonstrator:
    """Acts like a policy for collection: ``reset(task, seed)``, then ``act(obs) -> action [14]``."""

    def __init__(self, config: ScriptedDemonstratorConfig | None, backend: AlohaSimBackend):
        if not isinstance(backend, AlohaSimBackend):
            raise ConfigError(
                f"the scripted demonstrator drives the aloha-sim backend (it reads object poses from the "
                f"simulator), got {type(backend).__name__}"
            )
        self.config = config or ScriptedDemonstratorConfig()
        self.backend = backend
        self.ik = MocapIK(backend.task)
        self.task = backend.task
        self._rng = np.random.default_rng()
        self.flaws = EpisodeFlaws(False, False)
        self._phases: list[str] = []
        self._traj: Trajectory | None = None
        self._t = 0
        self._last: Keyframe | None = None

    # -- policy-like interface --------------------------------------------------------------------------------
    def reset(self, task: str, seed: int | None = None) -> None:
        if task != self.task:
            raise ConfigError(f"demonstrator built for {self.task!r}, asked for {task!r}")
        cfg = self.config
        episode = 0 if seed is None else int(seed)
        self._rng = np.random.default_rng([cfg.seed, episode])
        self.flaws = EpisodeFlaws(
            bad_grasp=bool(_flaw_draw(episode, 0, cfg.seed) < cfg.bad_grasp_prob),
            loose_grip=bool(_flaw_draw(episode, 1, cfg.seed) < cfg.loose_grip_prob),
        )
        self.ik.reset()
        self._phases = self._phase_names()
        self._last = self._current_keyframe(grip=(0.0, 0.0))
        self._start_next_phase()

    def act(self, obs: TensorDict | None = None) -> torch.Tensor:
        if self._traj is None:
            raise RuntimeError("call reset(task, seed) before act(obs)")
        if self._t >= len(self._traj) and self._phases:
            self._start_next_phase()
        targets, grip, _ = self._traj.at(self._t)
        self._t += 1
        joints = self.ik.solve(targets)
        if self.config.action_noise > 0:
            joints = joints + self._rng.normal(0.0, self.config.action_noise, size=joints.shape)
        action = np.concatenate([joints[:6], [grip[0]], joints[6:], [grip[1]]])
        return torch.as_tensor(action, dtype=torch.float32)

    def replan(self) -> None:
        """Resume from the robot's current state (after an expert has had control)."""
        self.start_from_state(self._phase_names(resume=True))

    def start_from_state(self, phases: list[str]) -> None:
        """Plan ``phases`` starting from the robot's current joints and gripper openings."""
        self.ik.reset(self.backend.data.qpos[:16].copy())
        self._last = self._current_keyframe(grip=self.backend.commanded_grippers())
        self._phases = list(phases)
        self._start_next_phase()

    @property
    def finished(self) -> bool:
        """All planned phases have been executed."""
        return self._traj is not None and not self._phases and self._t >= len(self._traj)

    @property
    def phase(self) -> str:
        return self._traj.labels[min(self._t, len(self._traj) - 1)] if self._traj is not None else ""

    # -- planning ------------------------------------------------------------------------------------------
    def _phase_names(self, resume: bool = False) -> list[str]:
        if self.task == "transfer_cube":
            if resume and self._right_holds_lifted():
                return ["handover"]
            return ["pick", "handover"]
        if resume and self._both_held_lifted():
            return ["align", "insert"]
        return ["pick", "align", "insert"]

    def _right_holds_lifted(self) -> bool:
        rules, data = self.backend.rules, self.backend.data
        touching = {b for a, b in rules.contact_pairs(data) if a in rules.obj}
        return bool(touching & rules.right_fingers) and self.backend.object_poses()[2] > 0.1

    def _peg_dropped(self) -> bool:
        """The peg lies on the table out of the right fingers (a brief loss of finger contact mid-insertion
        is not a drop: the servo goes on)."""
        rules = self.backend.rules
        touching = {b for a, b in rules.contact_pairs(self.backend.data) if a in rules.obj}
        return rules.table in touching and not touching & rules.right_fingers

    def _both_held_lifted(self) -> bool:
        return self.backend.stage >= 2

    def _current_keyframe(self, grip: tuple[float, float]) -> Keyframe:
        (lp, lq), (rp, rq) = self.ik.grasp_pose(0), self.ik.grasp_pose(1)
        return Keyframe(0, ArmTarget(lp, lq, grip[0]), ArmTarget(rp, rq, grip[1]))

    def _world(self) -> plans.World:
        assert self._last is not None
        return plans.World(
            left=self._last.left,
            right=self._last.right,
            objects=self.backend.object_poses(),
            left_grasp_pos=self.ik.grasp_pose(0)[0],
            right_grasp_pos=self.ik.grasp_pose(1)[0],
        )

    def _plan_phase(self, name: str) -> list[Keyframe]:
        cfg = self.config
        world = self._world()
        if self.task == "transfer_cube":
            if name == "pick":
                flaw = (
                    plans.GraspFlaw(cfg.bad_grasp_roll, cfg.bad_grasp_yaw)
                    if self.flaws.bad_grasp
                    else plans.GraspFlaw()
                )
                kfs = plans.transfer_pick(world, flaw)
                if self.flaws.loose_grip:  # the grip relaxes while the cube is carried to the meeting point
                    kfs[-1] = attrs.evolve(kfs[-1], right=kfs[-1].right.replace(grip=cfg.loose_grip_value))
                return kfs
            if name == "place":
                return plans.transfer_place(world)
            return plans.transfer_handover(world)
        if name == "pick":
            flaw = (
                plans.GraspFlaw(cfg.bad_grasp_roll, cfg.bad_grasp_yaw)
                if self.flaws.bad_grasp
                else plans.GraspFlaw()
            )
            kfs = plans.insertion_pick(world, flaw)
            if self.flaws.loose_grip:
                kfs[-2] = attrs.evolve(kfs[-2], right=kfs[-2].right.replace(grip=cfg.loose_grip_value))
                kfs[-1] = attrs.evolve(kfs[-1], right=kfs[-1].right.replace(grip=cfg.loose_grip_value))
            return kfs
        if name == "place":
            return plans.insertion_place(world)
        if name in ("pick_socket", "pick_peg"):  # one arm re-picks, the other holds what it carries
            return plans.insertion_repick(world, arm=0 if name == "pick_socket" else 1)
        if name == "align":
            return plans.insertion_align(world)
        if name == "insert":
            rel, _ = plans.peg_in_socket_frame(world.objects)
            # closed loop: re-plan a short step from the measured poses until the peg is in, or dropped
            # (chasing a dropped peg pushed the gripper into the table until the physics blew up)
            if rel[0] > INSERT_DEPTH + 0.002 and not self._peg_dropped():
                self._phases.insert(0, "insert")
                return [plans.insertion_servo_step(world, INSERT_DEPTH)]
            return [attrs.evolve(self._last, duration=60, label="hold")]
        raise ConfigError(f"no {name!r} phase for task {self.task!r}")

    def _start_next_phase(self) -> None:
        name = self._phases.pop(0)
        # a closed-loop insertion re-plans every 10 steps; it is one motion, so it may hesitate only once
        continuing = name == "insert" and self._traj is not None and self._traj.labels[-1] == "insert"
        keyframes = self._apply_timing_flaws(self._plan_phase(name), hesitate=not continuing)
        assert self._last is not None
        self._traj = interpolate(self._last, keyframes)
        self._last = keyframes[-1]
        self._t = 0

    def _apply_timing_flaws(self, keyframes: list[Keyframe], hesitate: bool = True) -> list[Keyframe]:
        cfg = self.config
        out: list[Keyframe] = []
        prev = self._last
        for kf in keyframes:
            if (
                hesitate
                and cfg.hesitation_prob > 0
                and cfg.hesitation_steps > 0
                and self._rng.random() < cfg.hesitation_prob
            ):
                assert prev is not None
                out.append(attrs.evolve(prev, duration=cfg.hesitation_steps, label=kf.label))
                self.flaws = attrs.evolve(self.flaws, hesitations=self.flaws.hesitations + 1)
            out.append(attrs.evolve(kf, duration=max(1, round(kf.duration * cfg.slowness))))
            prev = kf
        return out

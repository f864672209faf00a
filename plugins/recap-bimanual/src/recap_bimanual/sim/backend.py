"""``aloha-sim``: the gym-aloha MuJoCo scenes as a :class:`recap.protocols.RobotBackend`.

Same layout as the hardware (docs/hardware.md): 14-D absolute joint-position actions at 50 Hz (left 6 joints,
left gripper 0 closed .. 1 open, right 6 joints, right gripper), 14-D state, cameras ``cam_high``,
``cam_left_wrist``, ``cam_right_wrist``. Physics is stepped with MuJoCo directly (10 substeps of 2 ms per
control tick, as gym-aloha does through dm_control) and only the requested cameras are rendered, at the
requested size, without anti-aliasing or shadows unless asked.
"""

from __future__ import annotations

from typing import Any

import attrs
import mujoco
import numpy as np
import torch
from gym_aloha.constants import (
    START_ARM_POSE,
    normalize_puppet_gripper_position,
    unnormalize_puppet_gripper_position,
)
from gym_aloha.utils import sample_box_pose, sample_insertion_pose
from tensordict import TensorDict

from recap.config import BackendConfig
from recap.data import keys
from recap.data.spec import ALOHA_CAMERAS, RobotSpec, aloha_spec
from recap.errors import ConfigError, SchemaError
from recap.protocols import StepResult
from recap_bimanual.hardware.safety import limit_step, step_limits
from recap_bimanual.sim import scenes
from recap_bimanual.sim.rules import SUBTASKS, ContactRules

CONTROL_DT = 0.02  # 50 Hz
ENV_STATE_DIM = {"transfer_cube": 7, "insertion": 14}  # free-joint poses (x y z qw qx qy qz) per object


def _check_cameras(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    unknown = [c for c in value if c not in ALOHA_CAMERAS]
    if unknown or len(set(value)) != len(value):
        raise ConfigError(f"cameras must be distinct names from {list(ALOHA_CAMERAS)}, got {list(value)}")


@attrs.frozen
class AlohaSimConfig(BackendConfig):
    """The simulated bimanual robot.

    Attributes:
        task: ``transfer_cube`` or ``insertion``.
        cameras: which cameras to render (any subset, possibly empty for state-only runs).
        image_height, image_width: frame size of every camera.
        time_limit: control steps before an episode ends as a failure (400 = 8 s at 50 Hz).
        privileged_state: add ``observation.environment_state`` (object poses) to observations.
        success_hold_steps: consecutive steps the strict success condition must hold.
        antialias: render with 4x multi-sampling (slower).
        shadows: render shadows (slower).
        max_step_rad, max_gripper_step: largest goal change per control tick (joints in rad, grippers in 0..1),
            as the hardware driver enforces; None turns a limit off. A policy far from its data can command
            jumps of several radians per tick, which the driver refuses on the robot and which in MuJoCo blew
            up the contacts (gripper openings of 7.5 were recorded). The scripted demonstrator moves at most
            0.07 rad and 0.12 gripper units per tick.
    """

    task: str = attrs.field(default="transfer_cube", validator=lambda i, a, v: scenes.check_task(v))
    cameras: tuple[str, ...] = attrs.field(default=("cam_high",), converter=tuple, validator=_check_cameras)
    image_height: int = 96
    image_width: int = 128
    time_limit: int = 400
    privileged_state: bool = False
    success_hold_steps: int = 10
    antialias: bool = False
    shadows: bool = False
    max_step_rad: float | None = 0.1
    max_gripper_step: float | None = 0.2

    def __attrs_post_init__(self) -> None:
        for name in ("max_step_rad", "max_gripper_step"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive (or None for no limit), got {value}")
        if (
            self.image_height <= 0
            or self.image_width <= 0
            or self.time_limit <= 0
            or self.success_hold_steps <= 0
        ):
            raise ConfigError(
                "image_height, image_width, time_limit and success_hold_steps must be positive, got "
                f"{self.image_height}, {self.image_width}, {self.time_limit}, {self.success_hold_steps}"
            )


def initial_object_poses(task: str, seed: int) -> np.ndarray:
    """The object poses gym-aloha samples for ``seed`` (``np.random.RandomState(seed)``), concatenated."""
    if task == "transfer_cube":
        return sample_box_pose(seed)
    return np.concatenate(sample_insertion_pose(seed))


class AlohaSimBackend:
    """A gym-aloha scene stepped at 50 Hz with absolute joint-position actions."""

    #: the simulator judges success itself, so an episode cut short by a runner's time limit is a failure
    labels_success = True

    def __init__(self, config: AlohaSimConfig | None = None):
        self.config = config = config or AlohaSimConfig()
        self.task = config.task
        self.spec: RobotSpec = attrs.evolve(
            aloha_spec(config.image_height, config.image_width, config.cameras),
            env_state_dim=ENV_STATE_DIM[config.task] if config.privileged_state else 0,
        )
        self.model = scenes.joint_scene(
            config.task, offsamples=4 if config.antialias else 0, shadowsize=4096 if config.shadows else 0
        )
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, config.image_width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, config.image_height)
        self.data = mujoco.MjData(self.model)
        self.n_substeps = round(CONTROL_DT / self.model.opt.timestep)
        self.rules = ContactRules(self.model, config.task)
        self._camera_ids = [self.model.camera(scenes.CAMERA_NAMES[c]).id for c in config.cameras]
        self._renderer: mujoco.Renderer | None = None
        self._rng = np.random.default_rng()
        self._steps = 0
        self._held = 0
        self._stage = 0
        self._closed = False
        self._started = False
        limited = config.max_step_rad is not None or config.max_gripper_step is not None
        self._max_step = step_limits(config.max_step_rad, config.max_gripper_step) if limited else None

    # -- protocol -------------------------------------------------------------------------------------------
    def reset(self, task: str, seed: int | None = None) -> TensorDict:
        if task != self.task:
            raise ConfigError(
                f"this aloha-sim backend was built for task {self.task!r} but reset was asked for {task!r}; "
                f"create one with AlohaSimConfig(task={task!r})"
            )
        self._check_open()
        if seed is None:
            seed = int(self._rng.integers(2**31 - 1))
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:16] = START_ARM_POSE
        self.data.ctrl[:] = START_ARM_POSE
        self.data.qpos[16:] = initial_object_poses(task, seed)
        mujoco.mj_forward(self.model, self.data)
        self._steps, self._held, self._stage, self._started = 0, 0, 0, True
        return self._observe()

    def step(self, action: torch.Tensor) -> StepResult:
        self._check_open()
        if not self._started:
            raise RuntimeError("call reset(task, seed) before step(action)")
        a = np.asarray(torch.as_tensor(action, dtype=torch.float64).cpu().numpy())
        if a.shape != (self.spec.action_dim,) or not np.isfinite(a).all():
            raise SchemaError(
                f"action must be a finite tensor of shape ({self.spec.action_dim},) in the ALOHA layout "
                f"(joints in rad, grippers 0..1); got shape {tuple(a.shape)}"
            )
        # Like the hardware driver: goals move at most max_step per tick and stay inside the joint limits;
        # the record keeps what ran.
        if self._max_step is not None:
            a, _ = limit_step(a, self.action_of_controls(self.data.ctrl), self._max_step)
        lo, hi = self.model.actuator_ctrlrange[:, 0], self.model.actuator_ctrlrange[:, 1]
        ctrl = np.clip(self.joint_controls(a), lo, hi)
        self.data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        self._steps += 1
        stage, strict = self.rules.evaluate(self.data)
        self._stage = stage
        self._held = self._held + 1 if strict else 0
        success = self._held >= self.config.success_hold_steps
        timeout = self._steps >= self.config.time_limit
        done = success or timeout
        info = {
            "success": True if success else (False if timeout else None),
            "stage": stage,
            "subtask": SUBTASKS[self.task][stage],
            "step": self._steps,
            "action": torch.from_numpy(self.action_of_controls(ctrl)).float(),
        }
        return StepResult(self._observe(), done, info)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._closed = True

    def __enter__(self) -> AlohaSimBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers for scripted demonstrators / experts (privileged access) ------------------------------------
    @staticmethod
    def joint_controls(action: np.ndarray) -> np.ndarray:
        """ALOHA action (grippers normalised) -> the 16 position-actuator targets of the scene."""
        gl = unnormalize_puppet_gripper_position(action[6])
        gr = unnormalize_puppet_gripper_position(action[13])
        return np.concatenate([action[:6], [gl, -gl], action[7:13], [gr, -gr]])

    @staticmethod
    def action_of_controls(ctrl: np.ndarray) -> np.ndarray:
        """The 16 actuator targets -> the 14-D ALOHA action (inverse of ``joint_controls``)."""
        return np.concatenate(
            [
                ctrl[:6],
                [normalize_puppet_gripper_position(ctrl[6])],
                ctrl[8:14],
                [normalize_puppet_gripper_position(ctrl[14])],
            ]
        )

    def joint_state(self) -> np.ndarray:
        """The 14-D state: arm joints and normalised gripper openings."""
        q = self.data.qpos
        return np.concatenate(
            [
                q[:6],
                [normalize_puppet_gripper_position(q[6])],
                q[8:14],
                [normalize_puppet_gripper_position(q[14])],
            ]
        )

    def commanded_grippers(self) -> tuple[float, float]:
        """The last gripper commands (0 closed, 1 open): a closed gripper holding an object reads half open."""
        ctrl = self.data.ctrl
        return (
            float(normalize_puppet_gripper_position(ctrl[6])),
            float(normalize_puppet_gripper_position(ctrl[14])),
        )

    def object_poses(self) -> np.ndarray:
        """Object free-joint poses (x y z qw qx qy qz per object), like ``observation.environment_state``."""
        return self.data.qpos[16:].copy()

    @property
    def stage(self) -> int:
        return self._stage

    @property
    def steps(self) -> int:
        return self._steps

    # -- internals -------------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this aloha-sim backend is closed; create a new one")

    def _observe(self) -> TensorDict:
        out: dict[str, torch.Tensor] = {keys.STATE: torch.as_tensor(self.joint_state(), dtype=torch.float32)}
        if self.config.privileged_state:
            out[keys.ENV_STATE] = torch.as_tensor(self.object_poses(), dtype=torch.float32)
        if self._camera_ids:
            if self._renderer is None:
                self._renderer = mujoco.Renderer(
                    self.model, self.config.image_height, self.config.image_width
                )
            for name, cam_id in zip(self.config.cameras, self._camera_ids, strict=True):
                self._renderer.update_scene(self.data, camera=cam_id)
                out[keys.image_key(name)] = torch.from_numpy(self._renderer.render())
        return TensorDict(out, batch_size=[])

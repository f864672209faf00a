"""``leader-arms``: the operator drives the followers with two WidowX-250 leader arms when they take over.

``poll(obs)`` returns None while the policy is in control; once the operator engages takeover (key, pedal,
gamepad: see :mod:`recap_bimanual.hardware.operator`) it returns the leaders' joint positions as the 14-D action,
which the rollout runner executes instead of the policy's and flags ``is_intervention``. The follower's rate
limit makes the hand-over smooth when the leader pose differs from the follower's at the moment of takeover.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch
from tensordict import TensorDict

from recap.config import TeleoperatorConfig
from recap.errors import ConfigError
from recap_bimanual.hardware.arm_driver import ArmDriver
from recap_bimanual.hardware.arms import WX250S
from recap_bimanual.hardware.bus import MotorBus
from recap_bimanual.hardware.calibration import ArmCalibration, load_calibration
from recap_bimanual.hardware.operator import OperatorConsole


@attrs.frozen
class LeaderArmsConfig(TeleoperatorConfig):
    """Leader arms on their own ports; calibration ``<calibration_dir>/<robot_id>-leaders.json``."""

    left_port: str = "/dev/ttyDXL_leader_left"
    right_port: str = "/dev/ttyDXL_leader_right"
    baud: int = 1_000_000
    latency_ms: float = 1.0
    retries: int = 2
    reply_timeout_ms: float | None = None  # None: 2 x latency_ms + 2 ms (see AlohaHardwareConfig)
    calibration_dir: str | None = None
    robot_id: str = "aloha"


class LeaderArmsTeleoperator:
    """Implements :class:`recap.protocols.Teleoperator` over two leader arms and an operator console."""

    def __init__(self, config: LeaderArmsConfig, console: OperatorConsole) -> None:
        self.config, self.console = config, console
        if config.calibration_dir is None:
            cals = {a: ArmCalibration.default(WX250S) for a in ("left", "right")}
        else:
            cals = load_calibration(config.calibration_dir, f"{config.robot_id}-leaders", ("left", "right"))
        ports = {"left": config.left_port, "right": config.right_port}
        self.arms = {
            a: ArmDriver(
                f"{a} leader",
                WX250S,
                cals[a],
                MotorBus(
                    ports[a],
                    config.baud,
                    name=f"{a} leader",
                    retries=config.retries,
                    latency_ms=config.latency_ms,
                    reply_timeout_ms=config.reply_timeout_ms,
                ),
                leader=True,
            )
            for a in ("left", "right")
        }
        self._connected = False
        self.engaged_steps = 0

    @classmethod
    def for_backend(cls, config: LeaderArmsConfig, backend: object) -> LeaderArmsTeleoperator:
        """The registered factory: shares the robot's operator console (same keys, pedal or gamepad)."""
        console = getattr(backend, "console", None)
        if not isinstance(console, OperatorConsole):
            raise ConfigError(
                f"leader-arms needs the aloha-hw backend (its operator console); got {type(backend).__name__}"
            )
        return cls(config, console)

    def connect(self) -> None:
        if not self._connected:
            for arm in self.arms.values():
                arm.connect()  # configure() leaves torque off: the operator moves the leaders by hand
            self._connected = True

    def reset(self, task: str, seed: int | None = None) -> None:
        self.connect()
        self.engaged_steps = 0

    def read(self) -> np.ndarray:
        return np.concatenate([arm.read() for arm in self.arms.values()])

    def poll(self, obs: TensorDict) -> torch.Tensor | None:
        # The robot's step polls the operator inputs once per tick; a takeover pressed during tick t applies
        # from tick t + 1 (20 ms later at 50 Hz).
        if not self.console.takeover:
            return None
        self.engaged_steps += 1
        return torch.as_tensor(self.read(), dtype=torch.float32)

    def close(self) -> None:
        for arm in self.arms.values():
            arm.close()
        self._connected = False

"""``aloha-hw``: the bimanual ALOHA-style robot as a :class:`recap.protocols.RobotBackend`.

Each ``step(action)`` waits for the next 50 Hz tick on the monotonic clock, rate-limits the 14-D goal, sends one
SYNC WRITE of Goal_Position per arm, reads one SYNC READ of Present_Position per arm and returns the state with
the newest camera frames. Faults: transient ones are retried inside the bus and counted; a persistent one
(communication or a motor's hardware error) stops both arms safely and ends the episode with ``info["fault"]``.
The operator console ends an episode with an outcome key (success / failure / discard) or an emergency stop.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import attrs
import numpy as np
import torch
from tensordict import TensorDict

from recap.data import keys
from recap.data.spec import RobotSpec, aloha_spec
from recap.errors import ConfigError, RecapError, SchemaError
from recap.protocols import StepResult
from recap_bimanual.hardware.arm_driver import ArmDriver, HardwareFault
from recap_bimanual.hardware.arms import VX300S
from recap_bimanual.hardware.bus import CommFault, MotorBus
from recap_bimanual.hardware.calibration import ArmCalibration, load_calibration
from recap_bimanual.hardware.cameras import Camera, CameraError, OpenCVCamera, SyntheticCamera
from recap_bimanual.hardware.config import AlohaHardwareConfig, CameraConfig
from recap_bimanual.hardware.operator import OperatorConsole, make_source
from recap_bimanual.hardware.safety import (
    ExitGuard,
    LoopClock,
    Watchdog,
    limit_step,
    restore_scheduling,
    set_realtime_priority,
    step_limits,
)

ARMS = ("left", "right")


class RobotStopped(RecapError, RuntimeError):
    """The robot stopped after a persistent fault or an emergency stop and needs the operator."""


class AlohaHardware:
    """Two follower arms, cameras and the operator console. A context manager; ``close`` is idempotent."""

    def __init__(
        self,
        config: AlohaHardwareConfig | None = None,
        *,
        console: OperatorConsole | None = None,
        cameras: dict[str, Camera] | None = None,
    ) -> None:
        self.config = config = config or AlohaHardwareConfig()
        self.spec: RobotSpec = attrs.evolve(
            aloha_spec(config.image_height, config.image_width, tuple(c.name for c in config.cameras)),
            fps=config.fps,
        )
        if config.calibration_dir is None:
            cals = {a: ArmCalibration.default(VX300S) for a in ARMS}
        else:
            cals = load_calibration(config.calibration_dir, config.robot_id, ARMS)
        ports = {"left": config.left_port, "right": config.right_port}
        self.arms = {
            a: ArmDriver(
                f"{a} follower",
                VX300S,
                cals[a],
                MotorBus(
                    ports[a],
                    config.baud,
                    name=f"{a} follower",
                    retries=config.retries,
                    latency_ms=config.latency_ms,
                    reply_timeout_ms=config.reply_timeout_ms,
                ),
            )
            for a in ARMS
        }
        self.cameras = (
            cameras if cameras is not None else {c.name: self._make_camera(c) for c in config.cameras}
        )
        self.console = (
            console
            if console is not None
            else OperatorConsole(make_source(s) for s in config.operator_inputs)
        )
        self._max_step = step_limits(config.max_step_rad, config.max_gripper_step)
        self.clock = LoopClock(config.fps)
        self.watchdog = Watchdog(config.watchdog_s, self._hold_on_watchdog)
        self._lock = threading.RLock()
        self._goal: np.ndarray | None = None
        self._state = np.zeros(14)
        self._connected = False
        self._closed = False
        self._guard: ExitGuard | None = None
        self._scheduling: tuple[int, int] | None = None
        self.fault: str | None = None
        self.steps = 0
        self.clipped_steps = 0
        self.bus_seconds: list[float] = []

    def _make_camera(self, c: CameraConfig) -> Camera:
        h, w = self.config.image_height, self.config.image_width
        if c.source == "synthetic":
            return SyntheticCamera(c.name, h, w, c.fps)
        if c.source == "opencv":
            return OpenCVCamera(c.name, int(c.device) if c.device.isdigit() else c.device, h, w, c.fps)
        raise ConfigError(f"camera {c.name!r}: unknown source {c.source!r}; use 'opencv' or 'synthetic'")

    # -- lifecycle -----------------------------------------------------------------------------------------
    def connect(self) -> None:
        if self._connected:
            return
        if self._closed:
            raise RecapError("this robot was closed; create a new AlohaHardware")
        self._guard = ExitGuard(self.close)
        for arm in self.arms.values():
            arm.connect()
        for cam in self.cameras.values():
            cam.start()
        if self.config.realtime_priority:
            self._scheduling = set_realtime_priority(self.config.realtime_priority)
        self._connected = True
        self.watchdog.start()

    def reset(self, task: str, seed: int | None = None) -> TensorDict:
        if self.fault is not None:
            raise RobotStopped(
                f"the robot stopped: {self.fault}. Fix the cause, then call recover() before reset"
            )
        if self.console.estop:
            raise RobotStopped("emergency stop is engaged; release it with recover() before reset")
        self.connect()
        self.console.reset()
        with self._lock:
            try:
                for arm in self.arms.values():
                    arm.hold()  # goal := present before torque on, so nothing jumps to a stale goal
                    arm.set_torque(True)
                self._state = self._read()
            except (CommFault, HardwareFault) as exc:
                self._stop_on_fault(exc)
                raise RobotStopped(f"the robot stopped during reset: {self.fault}") from exc
        self._goal = self._state.copy()
        self.clock.reset()
        self.steps = self.clipped_steps = 0
        self.bus_seconds.clear()
        if self.config.start_pose is not None:
            self._move_to(np.asarray(self.config.start_pose, dtype=np.float64))
        self.watchdog.feed()
        return self._observe()

    def recover(self) -> None:
        """After the operator fixed a fault / released the e-stop: reboot motors in error and reconnect."""
        self.console.clear_estop()
        self.fault = None
        for arm in self.arms.values():
            if not arm.bus.is_open:
                arm.bus.open()
            for motor_id in sorted(arm.bus.alerts):
                arm.bus.reboot(motor_id)
            arm.bus.alerts.clear()
            arm.configure()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.watchdog.stop()
        with self._lock:
            for arm in self.arms.values():
                if arm.bus.is_open:
                    arm.release()
                arm.close()
        for cam in self.cameras.values():
            cam.stop()
        self.console.close()
        if self._guard is not None:
            self._guard.disarm()
        if self._scheduling is not None:
            restore_scheduling(self._scheduling)

    def __enter__(self) -> AlohaHardware:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- control -------------------------------------------------------------------------------------------
    def step(self, action: torch.Tensor) -> StepResult:
        if self._goal is None:
            raise RecapError("call reset(task) before step(action)")
        if self.fault is not None:
            raise RobotStopped(f"the robot stopped: {self.fault}; the episode already ended")
        a = np.asarray(torch.as_tensor(action, dtype=torch.float64).cpu().numpy())
        if a.shape != (14,) or not np.isfinite(a).all():
            raise SchemaError(
                f"action must be 14 finite values in the ALOHA layout (joints in rad, grippers 0..1); "
                f"got shape {tuple(a.shape)}"
            )
        self.console.update()
        if self.console.estop:
            return self._end_by_fault(RobotStopped("emergency stop pressed by the operator"))
        self.clock.wait()
        try:
            self._apply(a)
            obs = self._observe(check_age=True)
        except (CommFault, HardwareFault, CameraError) as exc:
            return self._end_by_fault(exc)
        self.steps += 1
        outcome = self.console.outcome
        info: dict[str, Any] = {
            "step": self.steps,
            "success": {"success": True, "failure": False}.get(outcome),
            "outcome": outcome,
            "discard": outcome == "discard",
        }
        done = outcome is not None or self.steps >= self.config.time_limit
        return StepResult(obs, done, info)

    def _end_by_fault(self, exc: Exception) -> StepResult:
        self._stop_on_fault(exc)
        return StepResult(self._observe(), True, {"fault": self.fault, "success": None, "step": self.steps})

    def _apply(self, target: np.ndarray) -> None:
        with self._lock:
            t0 = time.perf_counter()
            start = self._state if self.watchdog.expired else self._goal
            goal, clipped = limit_step(target, start, self._max_step)
            for k, arm in enumerate(self.arms.values()):
                arm.write(goal[7 * k : 7 * k + 7])
            self._goal = np.concatenate(
                [arm.cal.clamp(goal[7 * k : 7 * k + 7]) for k, arm in enumerate(self.arms.values())]
            )
            self._state = self._read()
            self.watchdog.feed()
            self.bus_seconds.append(time.perf_counter() - t0)
        self.clipped_steps += int(clipped)

    def _read(self) -> np.ndarray:
        return np.concatenate([arm.read() for arm in self.arms.values()])

    def _move_to(self, pose: np.ndarray) -> None:
        arms = list(self.arms.values())
        pose = np.concatenate([arms[k].cal.clamp(pose[7 * k : 7 * k + 7]) for k in range(2)])
        for _ in range(10 * self.config.fps):  # at most 10 s
            self.clock.wait()
            self._apply(pose)
            if np.max(np.abs(self._goal - pose)) < 1e-6:
                break

    def _hold_on_watchdog(self) -> None:
        with self._lock:
            if self.fault is not None or not self._connected or self._closed:
                return
            try:
                for arm in self.arms.values():
                    if arm.torque_on:
                        arm.hold()
                self._state = self._read()
                self._goal = self._state.copy()
            except (CommFault, HardwareFault) as exc:
                self._stop_on_fault(exc)

    def _stop_on_fault(self, exc: Exception) -> None:
        """Persistent fault: stop both arms (hold, torque off; a broadcast if the bus is gone) and remember why."""
        self.fault = str(exc)
        with self._lock:
            for arm in self.arms.values():
                arm.release()

    def emergency_stop(self) -> None:
        """Stop now from any thread: both arms hold and go limp; further steps are refused until recover()."""
        self.console.estop = True
        self._stop_on_fault(RobotStopped("emergency stop"))

    # -- observation and figures ---------------------------------------------------------------------------
    def _observe(self, check_age: bool = False) -> TensorDict:
        """State and the newest frame of each camera; with ``check_age`` a frame older than
        ``max_frame_age_s`` (a camera that stopped) raises CameraError."""
        out: dict[str, torch.Tensor] = {keys.STATE: torch.as_tensor(self._state, dtype=torch.float32)}
        now = time.monotonic()
        for name, cam in self.cameras.items():
            frame, stamp, _ = cam.latest()
            if check_age and now - stamp > self.config.max_frame_age_s:
                raise CameraError(
                    f"camera {name!r}: the newest frame is {now - stamp:.2f} s old (limit "
                    f"{self.config.max_frame_age_s} s); check its cable and USB bandwidth (one camera per USB bus)"
                )
            out[keys.image_key(name)] = torch.from_numpy(np.ascontiguousarray(frame))
        return TensorDict(out, batch_size=[])

    def loop_stats(self) -> dict[str, Any]:
        """Jitter percentiles, bus time per tick, transient faults recovered (per arm and kind)."""
        stats: dict[str, Any] = dict(self.clock.stats())
        if self.bus_seconds:
            bus = np.asarray(self.bus_seconds) * 1e3
            stats["bus_p50_ms"], stats["bus_p99_ms"] = (
                float(np.percentile(bus, 50)),
                float(np.percentile(bus, 99)),
            )
        stats["recovered"] = {a: dict(arm.bus.counters.recovered) for a, arm in self.arms.items()}
        stats["recovered_total"] = sum(arm.bus.counters.recovered_total for arm in self.arms.values())
        stats["clipped_steps"] = self.clipped_steps
        stats["watchdog_trips"] = self.watchdog.trips
        return stats

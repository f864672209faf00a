"""Configuration of the ``aloha-hw`` backend (frozen attrs, serialisable through ``recap.config``)."""

from __future__ import annotations

import attrs

from recap.config import BackendConfig
from recap.data.spec import ALOHA_CAMERAS
from recap.errors import ConfigError


@attrs.frozen
class CameraConfig:
    """A camera: ``source`` is ``opencv`` (``device`` = /dev/videoN, a udev symlink or an index) or ``synthetic``."""

    name: str
    source: str = "opencv"
    device: str = ""
    fps: int = 30


def _default_cameras() -> tuple[CameraConfig, ...]:
    return tuple(CameraConfig(n, "opencv", f"/dev/{n.upper()}") for n in ALOHA_CAMERAS)


@attrs.frozen
class AlohaHardwareConfig(BackendConfig):
    """The real robot.

    Attributes:
        robot_id: names the calibration file ``<calibration_dir>/<robot_id>.json`` and the recorded episodes.
        left_port, right_port: the followers' serial ports (udev symlinks, see docs/hardware.md).
        baud, latency_ms, retries: bus settings; ``latency_ms`` is the USB adapter's latency timer.
        reply_timeout_ms: how long a status packet may take (None: 2 x latency_ms + 2 ms, right for motors).
        calibration_dir: where calibration files live (None: factory defaults, for first bring-up only).
        cameras, image_height, image_width: camera sources and the recorded frame size.
        fps: control rate. time_limit: ticks before an episode ends unlabelled (operator labels it).
        max_step_rad, max_gripper_step: largest goal change per tick (joints in rad, grippers in 0..1 units).
        watchdog_s: without a fresh action for this long the arms hold their measured position.
        operator_inputs: takeover / labelling inputs (``keyboard``, ``pedal:<dev>``, ``gamepad:<dev>``).
        start_pose: 14 values the arms move to (rate-limited) at every reset; None keeps them where they are.
        max_frame_age_s: a camera whose newest frame is older than this has stopped: the episode ends with a fault.
        realtime_priority: run the control thread under SCHED_FIFO at this priority (1-99; 0 = off). Set after
            the cameras start, so only the control loop (and the watchdog) get it.
    """

    robot_id: str = "aloha"
    left_port: str = "/dev/ttyDXL_follower_left"
    right_port: str = "/dev/ttyDXL_follower_right"
    baud: int = 1_000_000
    latency_ms: float = 1.0
    retries: int = 2
    reply_timeout_ms: float | None = None
    calibration_dir: str | None = None
    cameras: tuple[CameraConfig, ...] = attrs.field(factory=_default_cameras, converter=tuple)
    image_height: int = 480
    image_width: int = 640
    fps: int = 50
    time_limit: int = 1500
    max_step_rad: float = 0.1
    max_gripper_step: float = 0.1
    watchdog_s: float = 0.25
    operator_inputs: tuple[str, ...] = ("keyboard",)
    start_pose: tuple[float, ...] | None = None
    realtime_priority: int = 0
    max_frame_age_s: float = 0.5

    def __attrs_post_init__(self) -> None:
        if self.start_pose is not None and len(self.start_pose) != 14:
            raise ConfigError(f"start_pose needs 14 values (ALOHA layout), got {len(self.start_pose)}")
        if min(self.fps, self.time_limit, self.image_height, self.image_width) <= 0:
            raise ConfigError("fps, time_limit, image_height and image_width must be positive")
        if self.max_step_rad <= 0 or self.max_gripper_step <= 0 or self.watchdog_s <= 0:
            raise ConfigError("max_step_rad, max_gripper_step and watchdog_s must be positive")
        if self.reply_timeout_ms is not None and self.reply_timeout_ms <= 0:
            raise ConfigError("reply_timeout_ms must be positive, or None to derive it from latency_ms")

"""Fixtures: emulated arms on pseudo-terminals, and a robot wired to them with synthetic cameras.

Each emulated arm runs in its own (forked) process, so it never waits for the GIL behind the driver's, the
cameras' and the watchdog's threads; on a loaded machine it still waits for a CPU, so a reply can come hundreds
of milliseconds late. Every bus in the tests gets the explicit reply budget ``EMULATOR_BUS`` (a 250 ms reply
timeout, 4 retries), where the real robot derives ~4 ms from its 1 ms latency timer and retries twice. Tests
that count tries state their own retry count.
"""

from __future__ import annotations

import pytest
from recap_bimanual.emulator import EMULATOR_BUS
from recap_bimanual.emulator.process import EmulatorProcess
from recap_bimanual.hardware.operator import OperatorConsole
from recap_bimanual.hardware.robot import AlohaHardware, AlohaHardwareConfig, CameraConfig

CAMERAS = tuple(
    CameraConfig(n, "synthetic", fps=50) for n in ("cam_high", "cam_left_wrist", "cam_right_wrist")
)


def emulated(model: str, tau_s: float = 0.03) -> EmulatorProcess:
    return EmulatorProcess(model, tau_s, start_method="fork")  # fixtures run with no other thread alive


@pytest.fixture
def follower_bus():
    with emulated("vx300s") as emu:
        yield emu


@pytest.fixture
def followers():
    with emulated("vx300s") as left, emulated("vx300s") as right:
        yield left, right


@pytest.fixture
def quick_followers():
    """Followers whose motors settle within 5 ms (tau; 30 ms by default), for tests that check where a goal led
    the arms a tick later: the motors move in wall-clock time, and a loaded machine may run a tick early after
    a late one (the schedule keeps its grid), leaving a slow motor less time than a period."""
    with emulated("vx300s", 0.005) as left, emulated("vx300s", 0.005) as right:
        yield left, right


@pytest.fixture
def still_followers():
    """Followers whose motors barely move (tau 60 s), for tests that check a hold froze an arm where it was:
    a real-speed motor keeps moving between the driver's reading and its hold, by as much as a loaded machine
    delays the hold. Here a stale goal (hundreds of ticks away) still shows, and a fresh one sits on the arm."""
    with emulated("vx300s", 60.0) as left, emulated("vx300s", 60.0) as right:
        yield left, right


@pytest.fixture
def leaders():
    with emulated("wx250s") as left, emulated("wx250s") as right:
        yield left, right


def robot_config(left, right, **overrides) -> AlohaHardwareConfig:
    base = dict(
        left_port=left.port,
        right_port=right.port,
        cameras=CAMERAS,
        image_height=24,
        image_width=32,
        operator_inputs=(),
        max_frame_age_s=5.0,
        **EMULATOR_BUS,
    )
    base.update(overrides)
    return AlohaHardwareConfig(**base)


@pytest.fixture
def make_config():
    """``make_config(left_emulator, right_emulator, **config_overrides) -> AlohaHardwareConfig``."""
    return robot_config


@pytest.fixture
def make_robot():
    """``make_robot(left_emulator, right_emulator, console=None, **config_overrides) -> AlohaHardware``."""

    def make(left, right, console: OperatorConsole | None = None, **overrides) -> AlohaHardware:
        return AlohaHardware(robot_config(left, right, **overrides), console=console or OperatorConsole())

    return make

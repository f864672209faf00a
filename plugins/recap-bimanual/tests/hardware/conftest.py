"""Fixtures: emulated arms on pseudo-terminals, and a robot wired to them with synthetic cameras.

The emulator runs in a thread of the test process, so on a loaded machine its replies can be late by tens of
milliseconds: tests use a 25 ms latency setting (a ~53 ms reply timeout) and 4 retries, where the real robot
uses 1 ms and 2.
"""

from __future__ import annotations

import pytest
from recap_bimanual.emulator import emulated_arm
from recap_bimanual.hardware.arms import VX300S, WX250S
from recap_bimanual.hardware.operator import OperatorConsole
from recap_bimanual.hardware.robot import AlohaHardware, AlohaHardwareConfig, CameraConfig

CAMERAS = tuple(
    CameraConfig(n, "synthetic", fps=50) for n in ("cam_high", "cam_left_wrist", "cam_right_wrist")
)


@pytest.fixture
def follower_bus():
    with emulated_arm(VX300S) as emu:
        yield emu


@pytest.fixture
def followers():
    with emulated_arm(VX300S) as left, emulated_arm(VX300S) as right:
        yield left, right


@pytest.fixture
def leaders():
    with emulated_arm(WX250S) as left, emulated_arm(WX250S) as right:
        yield left, right


def robot_config(left, right, **overrides) -> AlohaHardwareConfig:
    base = dict(
        left_port=left.port,
        right_port=right.port,
        cameras=CAMERAS,
        image_height=24,
        image_width=32,
        operator_inputs=(),
        latency_ms=25.0,
        retries=4,
        max_frame_age_s=5.0,
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

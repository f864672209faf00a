"""Torque is never left on with a stale goal when the driver's process crashes or is terminated."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

# An arm driver guarded like AlohaHardware.connect guards the robot (ExitGuard on its release), torch-free so
# the child starts fast.
ARM_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from recap_bimanual.emulator import EMULATOR_BUS
    from recap_bimanual.hardware.arm_driver import ArmDriver
    from recap_bimanual.hardware.arms import VX300S
    from recap_bimanual.hardware.bus import MotorBus
    from recap_bimanual.hardware.calibration import ArmCalibration
    from recap_bimanual.hardware.safety import ExitGuard

    port, mode = sys.argv[1:3]
    arm = ArmDriver("left", VX300S, ArmCalibration.default(VX300S), MotorBus(port, **EMULATOR_BUS))
    arm.connect()
    guard = ExitGuard(arm.release)
    arm.hold()
    arm.set_torque(True)
    arm.write(np.full(7, 0.8))  # moving when the end comes
    print("ready", flush=True)
    sys.stdin.readline()  # the test checks the arm is live, then says "go" (crash) or sends SIGTERM
    if mode == "crash":
        raise RuntimeError("the policy server died")
    time.sleep(30)
    """
)

ROBOT_CHILD = textwrap.dedent(
    """
    import sys, torch
    from recap_bimanual.emulator import EMULATOR_BUS
    from recap_bimanual.hardware.operator import OperatorConsole
    from recap_bimanual.hardware.robot import AlohaHardware, AlohaHardwareConfig

    left, right = sys.argv[1:3]
    robot = AlohaHardware(AlohaHardwareConfig(left_port=left, right_port=right, cameras=(), operator_inputs=(),
                                              **EMULATOR_BUS), console=OperatorConsole())
    robot.connect()  # no context manager: only the exit guard can stop the arms
    robot.reset("pick")
    for _ in range(5):
        robot.step(torch.full((14,), 0.3))
    print("ready", flush=True)
    sys.stdin.readline()  # the test checks the arms are live, then says "go"
    raise RuntimeError("the policy server died")
    """
)


def _run_child(code, args, emulators, sigterm=False):
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        assert all(m.torque for m in emulators[0].motors.values())  # the arm was live
        if sigterm:
            child.send_signal(signal.SIGTERM)
        else:
            child.stdin.write("go\n")
            child.stdin.flush()
        child.wait(timeout=30)
    finally:
        child.kill()
    assert child.returncode != 0
    # the child's last writes were answered before it exited, except a last-resort broadcast (no reply):
    # give the emulator threads time to take that in, however long a loaded machine makes it
    deadline = time.monotonic() + 10
    while any(m.torque for emu in emulators for m in emu.motors.values()) and time.monotonic() < deadline:
        time.sleep(0.01)
    for emu in emulators:
        for m in emu.motors.values():
            assert not m.torque
            # held where it was, then off: not the goal it was moving to (0.8 rad: 521 ticks away)
            assert abs(m.get("Goal_Position") - m.get("Present_Position")) < 40


@pytest.mark.parametrize("mode", ["crash", "sigterm"])
def test_arm_is_stopped_when_the_process_dies(still_followers, mode):
    arm = still_followers[0]
    _run_child(ARM_CHILD, [arm.port, mode], [arm], sigterm=mode == "sigterm")


@pytest.mark.slow
def test_robot_is_stopped_when_the_process_crashes(still_followers):
    left, right = still_followers
    _run_child(ROBOT_CHILD, [left.port, right.port], [left, right])

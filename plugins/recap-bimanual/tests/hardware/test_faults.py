"""Injected faults: transient ones are recovered and counted; persistent ones stop the arms with a clear error."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from recap_bimanual.emulator import EMULATOR_BUS
from recap_bimanual.hardware import control_table as ct
from recap_bimanual.hardware.arm_driver import ArmDriver, HardwareFault
from recap_bimanual.hardware.arms import VX300S
from recap_bimanual.hardware.bus import CommFault, MotorBus
from recap_bimanual.hardware.calibration import ArmCalibration
from recap_bimanual.hardware.robot import RobotStopped

REPLY_TIMEOUT_MS = EMULATOR_BUS["reply_timeout_ms"]


@pytest.fixture
def arm(follower_bus):
    driver = ArmDriver(
        "left follower",
        VX300S,
        ArmCalibration.default(VX300S),
        MotorBus(follower_bus.port, name="left follower", reply_timeout_ms=REPLY_TIMEOUT_MS, retries=2),
    )
    driver.connect()
    driver.set_torque(True)
    yield driver, follower_bus
    driver.close()


@pytest.mark.parametrize("kind", ["drop", "bad_crc", "late"])
def test_transient_fault_is_recovered_and_counted(arm, kind):
    driver, emu = arm
    before = driver.bus.counters.recovered_total
    # "late": 1.2 reply timeouts late: the first try times out, its reply arrives while the bus waits for quiet
    emu.inject(kind, count=1, motor_id=4, delay_s=1.2 * REPLY_TIMEOUT_MS / 1000)
    q = driver.read()
    assert q.shape == (7,)
    assert emu.counters()["faults_applied"][kind] == 1
    assert driver.bus.counters.recovered_total >= before + 1
    expected = {"drop": "timeout", "bad_crc": "corrupt", "late": "timeout"}[kind]
    assert driver.bus.counters.recovered.get(expected, 0) >= 1
    if (
        kind == "late"
    ):  # the late reply was dropped before the retry, not read as the answer to a later request
        assert driver.bus.counters.late_bytes > 0
    for goal in (
        2100,
        2200,
    ):  # later transactions get their own answers, not a reply left over from the fault
        driver.bus.write(1, "Goal_Position", goal)
        assert driver.bus.read(1, "Goal_Position") == goal


def test_persistent_drop_names_arm_motor_and_fault(arm):
    driver, emu = arm
    emu.inject("drop", count=None, motor_id=7)
    with pytest.raises(CommFault) as info:
        driver.read()
    assert info.value.motor_id == 7 and info.value.bus == "left follower"
    assert "motor id 7" in str(info.value) and "timeout" in str(info.value) and "3 tries" in str(info.value)
    assert emu.counters()["faults_applied"]["drop"] == 3  # every try reached motor 7 and was dropped


def test_overload_is_reported_by_name(arm):
    driver, emu = arm
    emu.inject("overload", motor_id=4)
    with pytest.raises(HardwareFault) as info:
        driver.read()
    assert info.value.motor_id == 4 and "overload" in str(info.value) and "left follower" in str(info.value)


def test_unplugged_port_is_a_port_fault(arm):
    driver, emu = arm
    emu.inject("unplug")
    with pytest.raises(CommFault) as info:
        driver.read()
    assert "serial port error" in str(info.value)


def _torques(emu, settle_s=10.0):
    """Torque flags, once all are off or after ``settle_s``: a broadcast gets no reply, so nothing says when the
    emulator has read it (a loaded machine may not run its thread for a while)."""
    deadline = time.monotonic() + settle_s
    while any(m.torque for m in emu.motors.values()) and time.monotonic() < deadline:
        time.sleep(0.005)
    return {i: m.torque for i, m in emu.motors.items()}


@pytest.mark.parametrize("fault", ["drop", "overload", "unplug"])
def test_persistent_fault_stops_both_arms_and_ends_the_episode(followers, make_robot, fault):
    left, right = followers
    with make_robot(left, right) as robot:
        robot.reset("pick")
        for _ in range(3):
            assert not robot.step(torch.zeros(14)).done
        if fault == "drop":
            right.inject("drop", count=None, motor_id=6)
        else:
            right.inject(fault, motor_id=6)
        result = robot.step(torch.full((14,), 0.05))
        assert result.done and result.info["success"] is None
        assert "right follower" in result.info["fault"]
        if fault != "unplug":
            assert "motor id 6" in result.info["fault"]
        # both arms stopped: torque off on every motor still reachable, the healthy arm included
        assert not any(_torques(left).values())
        if fault != "unplug":
            assert not any(_torques(right).values())
        with pytest.raises(RobotStopped):
            robot.step(torch.zeros(14))
        with pytest.raises(RobotStopped):
            robot.reset("pick")
        if (
            fault == "overload"
        ):  # the operator removed the cause: recover() reboots the motor, then all is well
            robot.recover()
            assert right.motor(6).hw_error == 0
            robot.reset("pick")
            assert not robot.step(torch.zeros(14)).done


def test_transient_faults_during_an_episode_do_not_end_it(followers, make_robot):
    left, right = followers
    with make_robot(left, right) as robot:
        robot.reset("pick")
        for k in range(20):
            if k in (5, 10):
                left.inject("drop", count=1, motor_id=2)
            if k == 15:
                right.inject("bad_crc", count=1)
            assert not robot.step(torch.zeros(14)).done
        stats = robot.loop_stats()
        assert stats["recovered_total"] >= 3
        assert left.counters()["faults_applied"]["drop"] == 2
        assert right.counters()["faults_applied"]["bad_crc"] == 1


def test_hold_goal_is_fresh_when_torque_goes_off(still_followers, make_robot):
    """Closing mid-motion: the goals are set to where the arms are, then torque off (never a stale goal)."""
    left, right = still_followers
    robot = make_robot(left, right, max_step_rad=0.2)
    robot.reset("pick")
    for _ in range(3):
        robot.step(torch.full((14,), 0.8))
    robot.close()
    for emu in (left, right):
        for m in emu.motors.values():
            assert not m.torque
            goal, present = m.get("Goal_Position"), m.get("Present_Position")
            assert abs(goal - present) < 40  # the stale goal (0.6 rad) is 391 ticks away
    assert np.isfinite(robot.loop_stats()["jitter_p99_ms"])


def test_emulator_in_a_child_process_takes_commands():
    from recap_bimanual.emulator.process import EmulatorProcess

    with EmulatorProcess("wx250s") as emu:
        bus = MotorBus(emu.port, **EMULATOR_BUS)  # spawned: a fresh interpreter, as the benchmark uses it
        bus.open()
        assert bus.ping(8) == ct.MODELS["XL430-W250"].number
        emu.move_by_hand(1, 3000)
        assert bus.read(1, "Present_Position") == 3000
        emu.inject("drop", count=1)
        bus.read(1, "Present_Position")
        assert emu.counters()["faults_applied"] == {"drop": 1} and bus.counters.recovered == {"timeout": 1}
        bus.close()

"""Operator inputs (keyboard, pedal, gamepad, scripted) and calibration files / conversions."""

from __future__ import annotations

import math
import os
import struct

import numpy as np
import pytest
from recap_bimanual.emulator import EMULATOR_BUS
from recap_bimanual.hardware.arms import VX300S, WX250S
from recap_bimanual.hardware.calibration import (
    ArmCalibration,
    calibrate_arm,
    load_calibration,
    save_calibration,
)
from recap_bimanual.hardware.operator import (
    EvdevInput,
    Event,
    JoystickInput,
    KeyboardInput,
    OperatorConsole,
    ScriptedInput,
    make_source,
)

from recap.errors import ConfigError


def test_console_folds_events_into_state():
    console = OperatorConsole(
        [ScriptedInput({1: ["toggle_takeover"], 3: ["toggle_takeover"], 4: ["failure", "success"]})]
    )
    seen = []
    for _ in range(5):
        console.update()
        seen.append((console.takeover, console.outcome))
    assert seen == [
        (False, None),
        (True, None),
        (True, None),
        (False, None),
        (False, "failure"),
    ]  # first key wins
    console.reset()
    assert (console.takeover, console.outcome) == (False, None)


def test_keyboard_reads_keys_from_a_stream():
    r, w = os.pipe()
    with os.fdopen(r, "rb", buffering=0) as stream:
        kb = KeyboardInput(stream=stream)
        os.write(w, b" sq")
        assert kb.poll() == [Event.TOGGLE_TAKEOVER, Event.SUCCESS]
        assert kb.poll() == []
        kb.close()
    os.close(w)


def test_pedal_is_hold_to_engage(tmp_path):
    path = tmp_path / "event0"
    rec = struct.Struct("llHHi")
    # EV_KEY (1) code 30 down, autorepeat (2), up; a sync event (type 0) in between is ignored
    path.write_bytes(
        rec.pack(0, 0, 1, 30, 1)
        + rec.pack(0, 0, 0, 0, 0)
        + rec.pack(0, 0, 1, 30, 2)
        + rec.pack(0, 0, 1, 30, 0)
        + rec.pack(0, 0, 1, 31, 1)
    )
    pedal = EvdevInput(str(path), hold_codes=(30,), codes={31: Event.SUCCESS})
    assert pedal.poll() == [Event.ENGAGE, Event.RELEASE, Event.SUCCESS]
    pedal.close()


def test_gamepad_buttons(tmp_path):
    path = tmp_path / "js0"
    rec = struct.Struct("IhBB")
    path.write_bytes(
        rec.pack(0, 1, 0x81, 5)
        + rec.pack(0, 1, 1, 5)
        + rec.pack(0, 0, 1, 5)
        + rec.pack(0, 1, 1, 2)
        + rec.pack(0, 300, 2, 0)
    )  # an initial-state event, then press/release, a button, an axis
    pad = JoystickInput(str(path), hold_button=5)
    assert pad.poll() == [Event.ENGAGE, Event.RELEASE, Event.DISCARD]
    pad.close()


def test_unknown_input_spec_says_what_is_allowed():
    with pytest.raises(ConfigError, match="keyboard"):
        make_source("joystick")


def test_conversions_roundtrip_and_gripper_normalisation():
    cal = ArmCalibration.default(VX300S)
    q = np.array([0.5, -1.0, 1.2, 0.0, 0.3, -2.0, 0.25])
    back = cal.to_joints(cal.to_ticks(q))
    assert np.allclose(back, q, atol=2 * math.pi / 4096)
    assert cal.to_ticks(np.array([0, 0, 0, 0, 0, 0, 1.0]))[6] == cal.gripper_open
    assert cal.to_joints(np.array([2048] * 6 + [cal.gripper_closed - 100]))[6] == 0.0  # clipped
    clamped = cal.clamp(np.array([0, -3.0, 3.0, 0, 0, 0, 1.7]))
    assert clamped[1] == pytest.approx(math.radians(-106)) and clamped[2] == pytest.approx(math.radians(92))
    assert clamped[6] == 1.0


def test_calibrate_from_raw_readings_and_file_roundtrip(tmp_path):
    zero = {i: 2048 + 10 * i for i in WX250S.motor_models}
    extremes = {j.motor_id: (zero[j.motor_id] - 1500, zero[j.motor_id] + 1200) for j in WX250S.joints[:6]}
    cal = calibrate_arm(WX250S, zero, extremes, gripper_open_raw=2600, gripper_closed_raw=1900)
    assert cal.homing_offsets[4] == -40
    # the waist reached -1500/+1200 ticks: range pulled in by the 3 degree margin
    assert cal.lower[0] == pytest.approx(-1500 * 2 * math.pi / 4096 + math.radians(3))
    assert cal.upper[0] == pytest.approx(1200 * 2 * math.pi / 4096 - math.radians(3))
    assert cal.gripper_open == 2600 - 90 and cal.gripper_closed == 1900 - 90
    save_calibration(tmp_path, "robot-7", {"left": cal, "right": cal})
    loaded = load_calibration(tmp_path, "robot-7", ("left", "right"))
    assert loaded["left"] == cal
    with pytest.raises(ConfigError, match="does not exist"):
        load_calibration(tmp_path, "robot-8", ("left",))
    with pytest.raises(ConfigError, match="right"):
        save_calibration(tmp_path, "robot-9", {"left": cal})
        load_calibration(tmp_path, "robot-9", ("left", "right"))


def test_interactive_calibration_against_the_emulator(follower_bus):
    import time

    from recap_bimanual.hardware.arm_driver import ArmDriver
    from recap_bimanual.hardware.bus import MotorBus
    from recap_bimanual.hardware.calibrate import calibrate_on_bus

    emu = follower_bus
    zero = {i: 1900 + 25 * i for i in VX300S.motor_models}  # where each motor sits in the zero pose (raw)

    def until_sampled() -> None:
        """Wait until the driver's sampler has folded in a reading of the arm as it is now, however long a
        loaded machine makes that: of the bus transactions completed after this call, the second was sent
        after the first ended (so it read this pose), and the third starts only once the sampler has used
        the second's values."""
        seen, deadline = bus.counters.transactions, time.monotonic() + 30
        while bus.counters.transactions < seen + 3:
            assert time.monotonic() < deadline, "the calibration stopped sampling the arm"
            time.sleep(0.005)

    def operator(message: str) -> None:  # does what each prompt asks, on the emulated arm
        if "zero pose" in message:
            for i, raw in zero.items():
                emu.motor(i).move_by_hand(raw)
        elif "range" in message:
            for sign in (-1, 1):
                with emu.lock:  # one pose: the sampler never sees half of it
                    for i in (1, 2, 4, 6, 7, 8):
                        emu.motor(i).move_by_hand(zero[i] + sign * 1000)
                until_sampled()
            for i in (1, 2, 4, 6, 7, 8):
                emu.motor(i).move_by_hand(zero[i])
        elif "open" in message:
            emu.motor(9).move_by_hand(2700)
        elif "close" in message:
            emu.motor(9).move_by_hand(1800)

    bus = MotorBus(emu.port, **EMULATOR_BUS)
    bus.open()
    cal = calibrate_on_bus(bus, VX300S, "left", prompt=operator)
    bus.close()
    assert cal.homing_offsets[4] == 2048 - zero[4]
    assert cal.gripper_open - cal.gripper_closed == 900
    # the waist went 1000 ticks (88 degrees) each way: inside the factory +-180, so calibrated at 85 degrees
    assert cal.upper[0] == pytest.approx(1000 * 2 * math.pi / 4096 - math.radians(3))
    for i, raw in zero.items():
        emu.motor(i).move_by_hand(raw)
    driver = ArmDriver("left", VX300S, cal, MotorBus(emu.port, **EMULATOR_BUS))
    driver.connect()
    assert np.allclose(driver.read()[:6], 0.0, atol=1e-9)  # the zero pose now reads zero, shadows agree
    driver.close()

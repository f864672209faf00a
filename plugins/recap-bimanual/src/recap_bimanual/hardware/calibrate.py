"""Interactive calibration of the arms, writing ``<calibration_dir>/<robot_id>.json``.

    python -m recap_bimanual.hardware.calibrate --robot-id aloha-1 --dir ~/.recap/calibration \\
        --arm left=/dev/ttyDXL_follower_left --arm right=/dev/ttyDXL_follower_right --model vx300s

For each arm (torque off, homing offsets cleared): hold the arm in its zero pose (the URDF's all-zeros pose:
upper arm vertical, forearm horizontal, wrist level) and press Enter; move every joint through its whole
range while the driver samples, press Enter; open the gripper fully, Enter; close it, Enter. Leader arms are
calibrated the same way with ``--model wx250s --robot-id <robot_id>-leaders``.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from pathlib import Path

from recap_bimanual.hardware.arms import ARM_MODELS, ArmSpec
from recap_bimanual.hardware.bus import MotorBus
from recap_bimanual.hardware.calibration import ArmCalibration, calibrate_arm, save_calibration


def _read_all(bus: MotorBus, spec: ArmSpec) -> dict[int, int]:
    return bus.sync_read("Present_Position", tuple(spec.motor_models))


def calibrate_on_bus(
    bus: MotorBus,
    spec: ArmSpec,
    name: str,
    prompt: Callable[[str], object] = input,
    sample_period_s: float = 0.02,
) -> ArmCalibration:
    """Run the four prompts on an open bus and return the calibration (motors are left torque-off)."""
    ids = tuple(spec.motor_models)
    bus.torque(ids, False)
    shadows = {s for s, _ in spec.shadow_pairs}
    for motor_id in ids:
        bus.write(motor_id, "Homing_Offset", 0)  # raw readings
        # the drive direction the driver will use (ArmDriver.configure): offsets are only valid with it
        bus.write(motor_id, "Drive_Mode", 1 if motor_id in shadows else 0)
    prompt(f"[{name}] hold the arm in its zero pose, then press Enter")
    zero = _read_all(bus, spec)
    lo, hi = dict(zero), dict(zero)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(sample_period_s):
            for motor_id, value in _read_all(bus, spec).items():
                lo[motor_id], hi[motor_id] = min(lo[motor_id], value), max(hi[motor_id], value)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        prompt(f"[{name}] move every joint slowly through its whole range, then press Enter")
    finally:
        stop.set()
        sampler.join()
    extremes = {j.motor_id: (lo[j.motor_id], hi[j.motor_id]) for j in spec.joints[:6]}
    grip = spec.joints[6].motor_id
    prompt(f"[{name}] open the gripper fully, then press Enter")
    opened = bus.read(grip, "Present_Position")
    prompt(f"[{name}] close the gripper, then press Enter")
    closed = bus.read(grip, "Present_Position")
    return calibrate_arm(spec, zero, extremes, opened, closed)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--robot-id", required=True)
    parser.add_argument("--dir", required=True, help="calibration directory (the backend's calibration_dir)")
    parser.add_argument(
        "--arm", action="append", required=True, help="name=port, e.g. left=/dev/ttyDXL_follower_left"
    )
    parser.add_argument("--model", choices=sorted(ARM_MODELS), default="vx300s")
    parser.add_argument("--baud", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    spec = ARM_MODELS[args.model]
    result = {}
    for item in args.arm:
        name, _, port = item.partition("=")
        bus = MotorBus(port, args.baud, name=name)
        bus.open()
        try:
            result[name] = calibrate_on_bus(bus, spec, name)
        finally:
            bus.close()
    path = save_calibration(args.dir, args.robot_id, result)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()

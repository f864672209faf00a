"""Per-robot calibration files: homing offsets, joint ranges and gripper open/closed positions.

Conversions (per joint; p = Present_Position after the motor applies its Homing_Offset):
    q [rad] = (p - 2048) * 2 pi / 4096
    g [0..1] = (p - closed) / (open - closed), clipped to [0, 1]
Homing offset: the pose the operator holds during calibration (arms in the zero pose of the URDF) must read
p = 2048, so h = 2048 - p_raw with p_raw read while Homing_Offset = 0.
The file is JSON, one per robot id: ``<dir>/<robot_id>.json`` holding ``{"arms": {arm_name: {...}}}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import attrs
import numpy as np

from recap.errors import ConfigError
from recap_bimanual.hardware import control_table as ct
from recap_bimanual.hardware.arms import ArmSpec


@attrs.frozen
class ArmCalibration:
    """Calibration of one arm: homing offset per motor id, joint range (radians) per joint, gripper ticks."""

    homing_offsets: dict[int, int]
    lower: tuple[float, ...]  # 6 arm joints
    upper: tuple[float, ...]
    gripper_open: int
    gripper_closed: int

    def __attrs_post_init__(self) -> None:
        if len(self.lower) != 6 or len(self.upper) != 6:
            raise ConfigError(
                f"calibration needs 6 joint lower/upper limits, got {len(self.lower)}/{len(self.upper)}"
            )
        if any(lo >= hi for lo, hi in zip(self.lower, self.upper, strict=True)):
            raise ConfigError(
                f"calibrated lower limits must be below upper ones: {self.lower} vs {self.upper}"
            )
        if self.gripper_open == self.gripper_closed:
            raise ConfigError(
                "gripper_open equals gripper_closed; recalibrate the gripper (open it, then close it)"
            )

    @classmethod
    def default(cls, arm: ArmSpec) -> ArmCalibration:
        """Factory limits, no homing offsets; gripper range of a stock ALOHA gripper."""
        return cls(
            homing_offsets={i: 0 for i in arm.motor_models},
            lower=tuple(j.lower for j in arm.joints[:6]),
            upper=tuple(j.upper for j in arm.joints[:6]),
            gripper_open=2560,
            gripper_closed=1536,
        )

    # -- conversions ---------------------------------------------------------------------------------------
    def to_joints(self, ticks: np.ndarray) -> np.ndarray:
        """7 present positions (primary motors, ALOHA order) -> 6 radians + gripper 0..1."""
        q = np.empty(7, dtype=np.float64)
        q[:6] = (ticks[:6] - ct.CENTER_TICK) * ct.RAD_PER_TICK
        q[6] = np.clip((ticks[6] - self.gripper_closed) / (self.gripper_open - self.gripper_closed), 0.0, 1.0)
        return q

    def to_ticks(self, q: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_joints` (rounded to whole ticks)."""
        t = np.empty(7, dtype=np.int64)
        t[:6] = np.round(np.asarray(q[:6]) / ct.RAD_PER_TICK + ct.CENTER_TICK)
        t[6] = round(self.gripper_closed + float(q[6]) * (self.gripper_open - self.gripper_closed))
        return t

    def clamp(self, q: np.ndarray) -> np.ndarray:
        """Clip to the calibrated ranges (gripper to 0..1)."""
        out = np.asarray(q, dtype=np.float64).copy()
        out[:6] = np.clip(out[:6], self.lower, self.upper)
        out[6] = np.clip(out[6], 0.0, 1.0)
        return out

    def tick_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Min/Max_Position_Limit registers (ticks) matching the calibrated ranges, gripper included."""
        lo = self.to_ticks(np.array([*self.lower, 0.0]))
        hi = self.to_ticks(np.array([*self.upper, 1.0]))
        return np.minimum(lo, hi), np.maximum(lo, hi)

    def to_dict(self) -> dict:
        return {
            "homing_offsets": {str(k): v for k, v in self.homing_offsets.items()},
            "lower": list(self.lower),
            "upper": list(self.upper),
            "gripper_open": self.gripper_open,
            "gripper_closed": self.gripper_closed,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ArmCalibration:
        return cls(
            {int(k): int(v) for k, v in data["homing_offsets"].items()},
            tuple(data["lower"]),
            tuple(data["upper"]),
            int(data["gripper_open"]),
            int(data["gripper_closed"]),
        )


def calibrate_arm(
    arm: ArmSpec,
    zero_pose_raw: Mapping[int, int],
    joint_extremes_raw: Mapping[int, tuple[int, int]],
    gripper_open_raw: int,
    gripper_closed_raw: int,
    margin_rad: float = math.radians(3),
) -> ArmCalibration:
    """Calibration from raw readings (Homing_Offset = 0): the zero pose of every motor, the extremes each arm
    joint's primary motor reached when moved through its range, and the gripper fully open / closed.

    Calibrated ranges are the reached extremes pulled in by ``margin_rad`` and never beyond the model's limits.
    """
    offsets = {i: ct.CENTER_TICK - int(zero_pose_raw[i]) for i in arm.motor_models}
    lower, upper = [], []
    for j in arm.joints[:6]:
        a, b = joint_extremes_raw[j.motor_id]
        off = offsets[j.motor_id]
        qa, qb = sorted(((a + off) - ct.CENTER_TICK) * ct.RAD_PER_TICK for a in (a, b))
        lower.append(max(j.lower, qa + margin_rad))
        upper.append(min(j.upper, qb - margin_rad))
    g = arm.joints[6].motor_id
    return ArmCalibration(
        offsets, tuple(lower), tuple(upper), gripper_open_raw + offsets[g], gripper_closed_raw + offsets[g]
    )


def calibration_path(directory: str | Path, robot_id: str) -> Path:
    return Path(directory) / f"{robot_id}.json"


def save_calibration(directory: str | Path, robot_id: str, arms: Mapping[str, ArmCalibration]) -> Path:
    path = calibration_path(directory, robot_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"robot_id": robot_id, "arms": {k: v.to_dict() for k, v in arms.items()}}, indent=2)
    )
    tmp.replace(path)
    return path


def load_calibration(
    directory: str | Path, robot_id: str, arm_names: tuple[str, ...]
) -> dict[str, ArmCalibration]:
    path = calibration_path(directory, robot_id)
    if not path.exists():
        raise ConfigError(
            f"no calibration for robot {robot_id!r}: {path} does not exist. Run the calibration "
            "(docs/hardware.md, 'Calibration') or pass calibration_dir=None to use factory defaults"
        )
    data = json.loads(path.read_text())
    missing = [a for a in arm_names if a not in data.get("arms", {})]
    if missing:
        raise ConfigError(
            f"{path} has no calibration for arm(s) {missing}; it has {sorted(data.get('arms', {}))}"
        )
    return {a: ArmCalibration.from_dict(data["arms"][a]) for a in arm_names}

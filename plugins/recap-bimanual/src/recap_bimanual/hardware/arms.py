"""The arms as data: ViperX-300-6DoF followers and WidowX-250-6DoF leaders (motor ids, models, joints, limits).

Each arm exposes 7 values in the ALOHA layout (docs/data.md): waist, shoulder, elbow, forearm_roll,
wrist_angle, wrist_rotate in radians, then the gripper normalised to 0 (closed) .. 1 (open). Shoulder and elbow
are each driven by two motors: the shadow motor carries the primary's id as its Secondary_ID (and the reverse
drive-mode bit, being mounted mirrored), so one Goal_Position write moves both while only the primary replies.
"""

from __future__ import annotations

import math

import attrs

from recap_bimanual.hardware import control_table as ct

JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")


@attrs.frozen
class JointSpec:
    """One joint: its primary motor, shadow motors, model, operating mode and default limits (radians)."""

    name: str
    motor_id: int
    model: str
    mode: int = ct.MODE_POSITION
    shadow_ids: tuple[int, ...] = ()
    lower: float = -math.pi
    upper: float = math.pi


@attrs.frozen
class ArmSpec:
    """An arm model: its joints in ALOHA order."""

    model: str
    joints: tuple[JointSpec, ...]
    gripper_current_ma: int = 0  # Goal_Current for a current-based-position gripper (0: not used)

    def __attrs_post_init__(self) -> None:
        if tuple(j.name for j in self.joints) != JOINTS:
            raise ValueError(f"{self.model}: joints must be {JOINTS}, got {[j.name for j in self.joints]}")

    @property
    def primary_ids(self) -> tuple[int, ...]:
        return tuple(j.motor_id for j in self.joints)

    @property
    def shadow_pairs(self) -> tuple[tuple[int, int], ...]:
        """(shadow id, primary id) for every shadow motor."""
        return tuple((s, j.motor_id) for j in self.joints for s in j.shadow_ids)

    @property
    def motor_models(self) -> dict[int, str]:
        out = {}
        for j in self.joints:
            out[j.motor_id] = j.model
            out.update({s: j.model for s in j.shadow_ids})
        return dict(sorted(out.items()))


def _deg(d: float) -> float:
    return math.radians(d)


#: The follower: Trossen ViperX 300 6DoF, 9 motors.
VX300S = ArmSpec(
    model="vx300s",
    joints=(
        JointSpec("waist", 1, "XM540-W270", lower=_deg(-180), upper=_deg(180)),
        JointSpec("shoulder", 2, "XM540-W270", shadow_ids=(3,), lower=_deg(-106), upper=_deg(72)),
        JointSpec("elbow", 4, "XM540-W270", shadow_ids=(5,), lower=_deg(-101), upper=_deg(92)),
        JointSpec("forearm_roll", 6, "XM540-W270", lower=_deg(-180), upper=_deg(180)),
        JointSpec("wrist_angle", 7, "XM540-W270", lower=_deg(-107), upper=_deg(128)),
        JointSpec("wrist_rotate", 8, "XM430-W350", lower=_deg(-180), upper=_deg(180)),
        JointSpec("gripper", 9, "XM430-W350", mode=ct.MODE_CURRENT_BASED_POSITION),
    ),
    gripper_current_ma=300,
)

#: The leader: Trossen WidowX 250 6DoF as used for ALOHA teleoperation (torque off, moved by the operator).
WX250S = ArmSpec(
    model="wx250s",
    joints=(
        JointSpec("waist", 1, "XM430-W350", lower=_deg(-180), upper=_deg(180)),
        JointSpec("shoulder", 2, "XM430-W350", shadow_ids=(3,), lower=_deg(-108), upper=_deg(114)),
        JointSpec("elbow", 4, "XM430-W350", shadow_ids=(5,), lower=_deg(-123), upper=_deg(92)),
        JointSpec("forearm_roll", 6, "XM430-W350", lower=_deg(-180), upper=_deg(180)),
        JointSpec("wrist_angle", 7, "XM430-W350", lower=_deg(-100), upper=_deg(123)),
        JointSpec("wrist_rotate", 8, "XL430-W250", lower=_deg(-180), upper=_deg(180)),
        JointSpec("gripper", 9, "XL430-W250"),
    ),
)

ARM_MODELS = {"vx300s": VX300S, "wx250s": WX250S}

"""The declared shape of a robot's data: cameras, state/action sizes and control rate.

Everything that touches data (store, sampler, models, backends) reads sizes from a spec, never from constants.
"""

from __future__ import annotations

import attrs

from recap.data import keys
from recap.validators import positive

#: The ALOHA layout (docs/data.md): left 6 joints, left gripper 0..1, right 6 joints, right gripper.
ALOHA_JOINT_NAMES: tuple[str, ...] = tuple(
    f"{side}_{j}"
    for side in ("left", "right")
    for j in ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")
)
ALOHA_CAMERAS: tuple[str, ...] = ("cam_high", "cam_left_wrist", "cam_right_wrist")


@attrs.frozen
class CameraSpec:
    """One camera: its name (``cam_high``, ...) and the frame size it delivers."""

    name: str
    height: int = attrs.field(validator=positive)
    width: int = attrs.field(validator=positive)

    @property
    def key(self) -> str:
        return keys.image_key(self.name)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)


@attrs.frozen
class RobotSpec:
    """What a robot (or a dataset recorded on it) produces: cameras, state/action dims, rate, joint names.

    ``env_state_dim`` > 0 means observations carry privileged object state (simulation only).
    """

    cameras: tuple[CameraSpec, ...] = attrs.field(converter=tuple)
    state_dim: int = attrs.field(default=14, validator=positive)
    action_dim: int = attrs.field(default=14, validator=positive)
    fps: int = attrs.field(default=50, validator=positive)
    env_state_dim: int = 0
    joint_names: tuple[str, ...] = attrs.field(default=ALOHA_JOINT_NAMES, converter=tuple)

    def __attrs_post_init__(self) -> None:
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")
        if self.joint_names and len(self.joint_names) != self.state_dim:
            raise ValueError(
                f"joint_names has {len(self.joint_names)} entries but state_dim is {self.state_dim}; "
                "give one name per state dimension or joint_names=()"
            )

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    def camera(self, name: str) -> CameraSpec:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"camera {name!r} is not in this spec; it has {list(self.camera_names)}")


def aloha_spec(height: int = 96, width: int = 128, cameras: tuple[str, ...] = ALOHA_CAMERAS) -> RobotSpec:
    """The bimanual ALOHA-style spec at a given image size."""
    return RobotSpec(cameras=tuple(CameraSpec(c, height, width) for c in cameras))

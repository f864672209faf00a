"""Task plans as phases of keyframes, each planned from the current state of the world.

Planning phase by phase (instead of one open-loop plan) lets the hand-over read where the cube actually sits
in the right gripper, and lets an expert or a resumed demonstrator start from any state. All positions are grasp
points (see :mod:`recap_bimanual.sim.ik`); the cube rests with its centre at z = 0.02.

Transfer cube: the right arm grasps the cube from above with a -60 deg pitch, ~1.2 cm towards +x of the cube
centre so that the cube sticks out towards the left arm, lifts it to the meeting point, the left gripper (rolled
90 deg, fingers closing vertically) pinches the part that sticks out, the right gripper opens and retreats.

Insertion: the left arm grasps the socket and the right arm the peg, both lift to either side of the meeting
point, the peg is aligned with the socket's axis (from the measured poses) and pushed in along -x.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import mujoco
import numpy as np

from recap_bimanual.sim.ik import quat_axis_angle, quat_mul
from recap_bimanual.sim.trajectory import ArmTarget, Keyframe

TABLE_Z = 0.02  # centre height of a cube / peg resting on the table
RIGHT_PICK_PITCH = -60.0
LEFT_PICK_PITCH = 60.0
MEET_TRANSFER = np.array([0.0, 0.5, 0.25])
MEET_INSERTION = np.array([0.0, 0.5, 0.15])


@attrs.frozen
class GraspFlaw:
    """A rotated grasp (degrees): ``roll`` about the gripper's approach axis, ``yaw`` about the vertical."""

    roll: float = 0.0
    yaw: float = 0.0

    def apply(self, quat: np.ndarray, approach: np.ndarray) -> np.ndarray:
        q = quat
        if self.roll:
            q = quat_mul(quat_axis_angle(tuple(approach), self.roll), q)
        if self.yaw:
            q = quat_mul(quat_axis_angle((0.0, 0.0, 1.0), self.yaw), q)
        return q


@attrs.frozen
class World:
    """What a phase planner reads: current targets of both arms and the object poses (x y z qw qx qy qz each)."""

    left: ArmTarget
    right: ArmTarget
    objects: np.ndarray
    right_grasp_pos: np.ndarray  # where the right grasp point actually is (IK arm)
    left_grasp_pos: np.ndarray


def _yaw_of(quat: np.ndarray) -> float:
    """The object's rotation about the vertical, folded into [-45, 45) deg (a cube / box is 90-deg symmetric
    for a two-finger grasp from above)."""
    rot = np.empty(9)
    mujoco.mju_quat2Mat(rot, quat)
    x_axis = rot.reshape(3, 3)[:, 0]
    yaw = np.degrees(np.arctan2(x_axis[1], x_axis[0]))
    return (yaw + 45.0) % 90.0 - 45.0


def right_pick_quat(yaw_deg: float = 0.0, pitch: float = RIGHT_PICK_PITCH) -> np.ndarray:
    return quat_mul(quat_axis_angle((0, 0, 1), yaw_deg), quat_axis_angle((0, 1, 0), pitch))


RIGHT_APPROACH = np.array([-np.cos(np.radians(60)), 0.0, -np.sin(np.radians(60))])
LEFT_HANDOVER_QUAT = quat_axis_angle((1, 0, 0), 90)


def transfer_pick(world: World, flaw: GraspFlaw = GraspFlaw(), grasp_offset: float = 0.012) -> list[Keyframe]:
    """Right arm: above the cube, down, close, lift to the meeting point. The left arm waits."""
    cube = world.objects[:3]
    yaw = _yaw_of(world.objects[3:7])
    c = np.array([cube[0], cube[1], TABLE_Z])
    offset = quat_rotate(quat_axis_angle((0, 0, 1), yaw), np.array([grasp_offset, 0.0, 0.0]))
    q = flaw.apply(right_pick_quat(yaw), RIGHT_APPROACH)
    left = world.left
    above = ArmTarget(c + offset + [0, 0, 0.10], q, 1.0)
    down = above.replace(pos=c + offset)
    closed = down.replace(grip=0.0)
    return [
        Keyframe(50, left, above, "approach"),
        Keyframe(30, left, down, "descend"),
        Keyframe(15, left, closed, "grasp"),
        Keyframe(
            40,
            left.replace(pos=MEET_TRANSFER + [-0.12, 0, 0], quat=LEFT_HANDOVER_QUAT, grip=1.0),
            closed.replace(pos=MEET_TRANSFER),
            "lift",
        ),
        # let the (lagging) joint arm arrive and the cube settle before the hand-over measures it
        Keyframe(
            20,
            left.replace(pos=MEET_TRANSFER + [-0.12, 0, 0], quat=LEFT_HANDOVER_QUAT, grip=1.0),
            closed.replace(pos=MEET_TRANSFER),
            "lift",
        ),
    ]


def transfer_place(world: World) -> list[Keyframe]:
    """Right arm: put the held cube back on the table, open, and move up (before re-grasping it)."""
    right = world.right
    drop = world.objects[2] - TABLE_Z - 0.003  # lower until the cube (almost) rests on the table
    down = right.replace(pos=world.right_grasp_pos - [0, 0, drop])
    opened = down.replace(grip=1.0)
    up = opened.replace(pos=down.pos + [0, 0, 0.1])
    return [
        Keyframe(40, world.left, down, "place"),
        Keyframe(15, world.left, opened, "place"),
        Keyframe(25, world.left, up, "place"),
    ]


def transfer_handover(world: World, left_depth: float = 0.01) -> list[Keyframe]:
    """Left gripper pinches the part of the cube that sticks out, right opens and retreats, left holds."""
    cube = world.objects[:3]
    right = world.right
    pre = ArmTarget(np.array([cube[0] - 0.12, cube[1], cube[2]]), LEFT_HANDOVER_QUAT, 1.0)
    inside = pre.replace(pos=np.array([cube[0] - left_depth, cube[1], cube[2]]))
    closed = inside.replace(grip=0.0)
    released = right.replace(grip=1.0)
    away = released.replace(pos=right.pos + [0.1, 0, 0.05])
    return [
        Keyframe(25, inside, right, "meet"),
        Keyframe(15, closed, right, "left grasp"),
        Keyframe(15, closed, released, "release"),
        Keyframe(30, closed, away, "retreat"),
        Keyframe(60, closed, away, "hold"),
    ]


def quat_rotate(quat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    out = np.empty(3)
    mujoco.mju_rotVecQuat(out, vec, quat)
    return out


PhasePlanner = Callable[[World], list[Keyframe]]


def left_pick_quat(yaw_deg: float = 0.0) -> np.ndarray:
    return quat_mul(quat_axis_angle((0, 0, 1), yaw_deg), quat_axis_angle((0, 1, 0), LEFT_PICK_PITCH))


SOCKET_GRASP = np.array([-0.03, 0.0, 0.0])  # on the socket's side walls, away from the peg's way in
PEG_GRASP = np.array([0.03, 0.0, 0.0])  # towards the peg's +x end; the -x end goes into the socket
PEG_GRASP_Z = 0.01
PEG_PICK_PITCH = -75.0  # steeper than the cube grasp: at -60 the 2 cm peg slips out of a one-finger hold
PEG_HALF, SOCKET_HALF, PIN_HALF = 0.06, 0.06, 0.04
PEG_HALF_WIDTH = 0.01  # the peg's cross-section is 2 x 2 cm


def _peg_grasp(peg: np.ndarray, flaw: GraspFlaw = GraspFlaw()) -> tuple[np.ndarray, np.ndarray]:
    """Right grasp point and orientation for the peg lying on the table."""
    yaw = _yaw_of(peg[3:7])
    pos = np.array([peg[0], peg[1], PEG_GRASP_Z]) + quat_rotate(quat_axis_angle((0, 0, 1), yaw), PEG_GRASP)
    return pos, flaw.apply(right_pick_quat(yaw, PEG_PICK_PITCH), RIGHT_APPROACH)


def _socket_grasp(socket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left grasp point and orientation for the socket standing on the table."""
    yaw = _yaw_of(socket[3:7])
    pos = np.array([socket[0], socket[1], 0.03]) + quat_rotate(quat_axis_angle((0, 0, 1), yaw), SOCKET_GRASP)
    return pos, left_pick_quat(yaw)


def insertion_pick(world: World, flaw: GraspFlaw = GraspFlaw()) -> list[Keyframe]:
    """Left grasps the socket, right grasps the peg (both from above), both lift to either side of the meet."""
    p, q_r = _peg_grasp(world.objects[:7], flaw)
    s, q_l = _socket_grasp(world.objects[7:14])
    l_above, r_above = ArmTarget(s + [0, 0, 0.1], q_l, 1.0), ArmTarget(p + [0, 0, 0.1], q_r, 1.0)
    l_down, r_down = l_above.replace(pos=s), r_above.replace(pos=p)
    l_closed, r_closed = l_down.replace(grip=0.0), r_down.replace(grip=0.0)
    l_up = l_closed.replace(pos=MEET_INSERTION + [-0.12, 0, 0])
    r_up = r_closed.replace(pos=MEET_INSERTION + [0.16, 0, 0])
    return [
        Keyframe(50, l_above, r_above, "approach"),
        Keyframe(30, l_down, r_down, "descend"),
        Keyframe(15, l_closed, r_closed, "grasp"),
        Keyframe(50, l_up, r_up, "lift"),
        Keyframe(20, l_up, r_up, "lift"),
    ]


def insertion_repick(world: World, arm: int) -> list[Keyframe]:
    """One arm (0 left: the socket, 1 right: the peg) picks its object from the table and lifts it beside the
    meeting point; the other arm holds its target, so the object it carries stays where it is."""
    if arm == 1:
        pos, quat = _peg_grasp(world.objects[:7])
        up = MEET_INSERTION + [0.16, 0, 0]
    else:
        pos, quat = _socket_grasp(world.objects[7:14])
        up = MEET_INSERTION + [-0.12, 0, 0]
    above = ArmTarget(pos + [0, 0, 0.1], quat, 1.0)
    closed = above.replace(pos=pos, grip=0.0)
    steps = [
        (40, above, "approach"),
        (30, above.replace(pos=pos), "descend"),
        (15, closed, "grasp"),
        (50, closed.replace(pos=up), "lift"),
        (20, closed.replace(pos=up), "lift"),
    ]
    if arm == 1:
        return [Keyframe(n, world.left, target, label) for n, target, label in steps]
    return [Keyframe(n, target, world.right, label) for n, target, label in steps]


def insertion_place(world: World, clearance: float = 0.004) -> list[Keyframe]:
    """Right arm: draw the peg back out of the socket's way, lower it until its lowest edge is ``clearance``
    above the table (a peg pivoted in the fingers hangs lower at one end), open and move up. The left arm
    holds the socket where it is."""
    peg = world.objects[:7]
    rot = np.empty(9)
    mujoco.mju_quat2Mat(rot, peg[3:7])
    lowest = peg[2] - float(
        np.abs(rot.reshape(3, 3)[2]) @ np.array([PEG_HALF, PEG_HALF_WIDTH, PEG_HALF_WIDTH])
    )
    back = world.right.replace(pos=world.right_grasp_pos + [0.04, 0, 0])
    down = back.replace(pos=back.pos - [0, 0, lowest - clearance])
    opened = down.replace(grip=1.0)
    return [
        Keyframe(15, world.left, back, "place"),
        Keyframe(40, world.left, down, "place"),
        Keyframe(15, world.left, opened, "place"),
        Keyframe(20, world.left, opened.replace(pos=down.pos + [0, 0, 0.06]), "place"),
    ]


def _peg_target(world: World, gap: float) -> np.ndarray:
    """Right grasp-point target putting the peg's centre ``gap`` beyond touching the pin, on the socket axis."""
    peg, socket = world.objects[:7], world.objects[7:14]
    axis = quat_rotate(socket[3:7], np.array([1.0, 0.0, 0.0]))
    want = socket[:3] + axis * (PIN_HALF + PEG_HALF + gap)
    return world.right_grasp_pos + (want - peg[:3])


def insertion_align(world: World) -> list[Keyframe]:
    """Bring the peg onto the socket's axis, 4 cm short of the socket mouth."""
    target = world.right.replace(pos=_peg_target(world, SOCKET_HALF - PIN_HALF + 0.04))
    return [Keyframe(40, world.left, target, "align"), Keyframe(15, world.left, target, "align")]


def peg_in_socket_frame(objects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The peg centre and the peg's long axis, both in the socket's frame."""
    peg, socket = objects[:7], objects[7:14]
    inv = socket[3:7] * np.array([1, -1, -1, -1])
    rel = quat_rotate(inv, peg[:3] - socket[:3])
    axis = quat_rotate(inv, quat_rotate(peg[3:7], np.array([1.0, 0.0, 0.0])))
    return rel, axis


def insertion_servo_step(world: World, depth: float, steps: int = 10, max_advance: float = 0.01) -> Keyframe:
    """One closed-loop step of the insertion: cancel the peg's lateral offset from the socket axis and its tilt,
    and advance at most ``max_advance`` towards the centre distance ``depth`` (peg centre to socket centre)."""
    socket = world.objects[7:14]
    rel, axis = peg_in_socket_frame(world.objects)
    want_x = max(depth, rel[0] - max_advance)
    delta_local = np.array([want_x - rel[0], -rel[1], -rel[2]])
    delta = quat_rotate(socket[3:7], delta_local)
    # rotate the gripper so that the peg's axis turns towards the socket's axis (small-angle correction)
    tilt = np.cross(axis, np.array([1.0, 0.0, 0.0]))
    angle = float(np.degrees(np.arcsin(np.clip(np.linalg.norm(tilt), 0.0, 1.0))))
    quat = world.right.quat
    if angle > 0.5:
        world_axis = quat_rotate(socket[3:7], tilt / np.linalg.norm(tilt))
        quat = quat_mul(quat_axis_angle(tuple(world_axis), 0.5 * angle), quat)
    target = world.right.replace(pos=world.right.pos + delta, quat=quat)
    return Keyframe(steps, world.left, target, "insert")

"""Waypoint plans in end-effector (grasp-point) space and their min-jerk interpolation.

A plan is a list of :class:`Keyframe` (both arms at once, so hand-overs stay synchronised). Between consecutive
keyframes every quantity follows a minimum-jerk profile
``s(u) = 10 u^3 - 15 u^4 + 6 u^5`` for ``u = k / duration`` in [0, 1]: positions and gripper commands are
interpolated linearly in ``s``, orientations by spherical interpolation (slerp) in ``s``.
"""

from __future__ import annotations

import attrs
import numpy as np


@attrs.frozen
class ArmTarget:
    """Grasp-point position (m), orientation quaternion (w, x, y, z) and gripper command (0 closed, 1 open)."""

    pos: np.ndarray = attrs.field(converter=lambda v: np.asarray(v, dtype=np.float64))
    quat: np.ndarray = attrs.field(converter=lambda v: np.asarray(v, dtype=np.float64))
    grip: float

    def replace(self, **changes: object) -> ArmTarget:
        return attrs.evolve(self, **changes)


@attrs.frozen
class Keyframe:
    """Both arms' targets, reached ``duration`` steps after the previous keyframe; ``label`` names the motion."""

    duration: int
    left: ArmTarget
    right: ArmTarget
    label: str = ""


def min_jerk(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10 - 15 * u + 6 * u * u)


def slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    dot = float(np.dot(q0, q1))
    if dot < 0:  # take the short way round
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + s * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - s) * theta) * q0 + np.sin(s * theta) * q1) / np.sin(theta)


@attrs.frozen
class Trajectory:
    """Per-step targets of both arms, sampled from a keyframe plan; holds the last pose after the end."""

    pos: np.ndarray  # [T, 2, 3]
    quat: np.ndarray  # [T, 2, 4]
    grip: np.ndarray  # [T, 2]
    labels: tuple[str, ...]  # [T]

    def __len__(self) -> int:
        return len(self.labels)

    def at(self, t: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, str]:
        t = min(t, len(self) - 1)
        return [(self.pos[t, i], self.quat[t, i]) for i in range(2)], self.grip[t], self.labels[t]


def interpolate(start: Keyframe, plan: list[Keyframe]) -> Trajectory:
    """Sample ``plan`` (starting from ``start``) at every control step with min-jerk profiles."""
    pos, quat, grip, labels = [], [], [], []
    prev = start
    for kf in plan:
        n = max(int(kf.duration), 1)
        s = min_jerk(np.arange(1, n + 1) / n)
        for si in s:
            step_pos, step_quat, step_grip = [], [], []
            for a, b in ((prev.left, kf.left), (prev.right, kf.right)):
                step_pos.append(a.pos + si * (b.pos - a.pos))
                step_quat.append(slerp(a.quat, b.quat, float(si)))
                step_grip.append(a.grip + si * (b.grip - a.grip))
            pos.append(step_pos)
            quat.append(step_quat)
            grip.append(step_grip)
            labels.append(kf.label)
        prev = kf
    return Trajectory(np.array(pos), np.array(quat), np.array(grip), tuple(labels))

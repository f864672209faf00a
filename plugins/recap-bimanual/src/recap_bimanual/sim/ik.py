"""The mocap scene as a lock-step inverse-kinematics solver (docs/sim.md).

Each control tick the planner moves the two mocap targets; the IK scene (arms only, stiff weld) is stepped one
tick and its arm joint positions become the joint scene's actions. Replaying recorded joints open loop fails
(the cube slips differently); running the solver in lock-step with the plan reading objects from the joint scene
succeeds. Poses here are "grasp points": the mocap point, 0.1347 m ahead of ``gripper_link`` between the
fingertips. Quaternions are (w, x, y, z); the identity is each arm's home orientation (left arm pointing +x,
right arm pointing -x, fingers opening sideways).
"""

from __future__ import annotations

import mujoco
import numpy as np
from gym_aloha.constants import START_ARM_POSE

from recap_bimanual.sim import scenes

ARMS = ("left", "right")


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def quat_axis_angle(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    axis_arr = np.asarray(axis, dtype=np.float64)
    half = np.deg2rad(degrees) / 2
    return np.concatenate([[np.cos(half)], np.sin(half) * axis_arr / np.linalg.norm(axis_arr)])


class MocapIK:
    """Lock-step IK for both arms of one task's scene."""

    def __init__(self, task: str):
        self.model = scenes.ik_scene(task)
        self.data = mujoco.MjData(self.model)
        self.n_substeps = round(0.02 / self.model.opt.timestep)
        self._gripper_body = [self.model.body(f"vx300s_{arm}/gripper_link").id for arm in ARMS]
        # weld relpose: the gripper link's pose in the mocap frame (eq_data[3:6] pos, [6:10] quat)
        self._rel_pos = [self.model.eq_data[i, 3:6].copy() for i in range(2)]
        self._rel_quat = [self.model.eq_data[i, 6:10].copy() for i in range(2)]
        self.reset()

    def reset(self, arm_qpos: np.ndarray | None = None) -> None:
        """Put the IK arms at ``arm_qpos`` (16 scene joints; default the start pose), targets on the grippers."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:16] = START_ARM_POSE if arm_qpos is None else arm_qpos
        mujoco.mj_forward(self.model, self.data)
        for i in range(2):
            pos, quat = self.grasp_pose(i)
            self.data.mocap_pos[i], self.data.mocap_quat[i] = pos, quat

    def grasp_pose(self, arm: int) -> tuple[np.ndarray, np.ndarray]:
        """The mocap pose that corresponds to the IK arm's current gripper pose (the weld inverted)."""
        b = self._gripper_body[arm]
        g_pos, g_quat = self.data.xpos[b], self.data.xquat[b]
        inv_rel = self._rel_quat[arm] * np.array([1, -1, -1, -1])
        m_quat = quat_mul(g_quat, inv_rel)
        m_rot = np.empty(9)
        mujoco.mju_quat2Mat(m_rot, m_quat)
        m_pos = g_pos - m_rot.reshape(3, 3) @ self._rel_pos[arm]
        return m_pos, m_quat / np.linalg.norm(m_quat)

    def solve(self, targets: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Move the mocap targets ``[(pos, quat) left, right]``, advance one tick, return 12 arm joints."""
        for i, (pos, quat) in enumerate(targets):
            self.data.mocap_pos[i] = pos
            self.data.mocap_quat[i] = quat
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        q = self.data.qpos
        return np.concatenate([q[:6], q[8:14]])

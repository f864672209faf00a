"""Per-step stage (the scene's 0-4 reward) and the strict success of each task, from MuJoCo contacts.

The scene's own reward 4 fires at the first touch of the left finger while the object is off the table, even
when the right gripper still holds it (docs/sim.md). Recap needs outcomes that a later drop turns into
a failure, so success here is strict and must hold for ``hold_steps`` consecutive control steps:

- transfer cube: the left gripper touches the cube, the right gripper does not, the cube touches nothing else
  (so it is held by the left gripper alone, off the table);
- insertion: the peg touches the pin inside the socket, neither object touches the table, and the peg's centre
  lies inside the socket's opening (lateral offset below 1 cm).
"""

from __future__ import annotations

import mujoco
import numpy as np

SUBTASKS: dict[str, tuple[str, ...]] = {
    "transfer_cube": (
        "reach for the cube with the right arm",
        "grasp the cube with the right gripper",
        "lift the cube",
        "hand the cube over to the left gripper",
        "hold the cube with the left gripper",
    ),
    "insertion": (
        "reach for the peg and the socket",
        "grasp the peg and the socket",
        "lift the peg and the socket",
        "align the peg with the socket",
        "insert the peg into the socket",
    ),
}


def _geoms(model: mujoco.MjModel, *names: str) -> frozenset[int]:
    return frozenset(model.geom(n).id for n in names)


class ContactRules:
    """Stage and strict-success evaluation for one compiled joint scene."""

    def __init__(self, model: mujoco.MjModel, task: str):
        self.task = task
        self.left_fingers = _geoms(
            model, "vx300s_left/10_left_gripper_finger", "vx300s_left/10_right_gripper_finger"
        )
        self.right_fingers = _geoms(
            model, "vx300s_right/10_left_gripper_finger", "vx300s_right/10_right_gripper_finger"
        )
        self.table = model.geom("table").id
        if task == "transfer_cube":
            self.obj = _geoms(model, "red_box")
            self.obj_body = model.body("box").id
        else:
            self.obj = _geoms(model, "red_peg")
            self.socket = _geoms(model, "socket-1", "socket-2", "socket-3", "socket-4")
            self.pin = model.geom("pin").id
            self.obj_body = model.body("peg").id
            self.socket_body = model.body("socket").id
        # the scene's reward uses only one finger per gripper; keep it verbatim for the stage
        self.stage_left = model.geom("vx300s_left/10_left_gripper_finger").id
        self.stage_right = model.geom("vx300s_right/10_right_gripper_finger").id

    def contact_pairs(self, data: mujoco.MjData) -> set[tuple[int, int]]:
        """Geom id pairs in contact, both orders."""
        pairs = set()
        for c in data.contact[: data.ncon]:
            a, b = int(c.geom1), int(c.geom2)
            pairs.add((a, b))
            pairs.add((b, a))
        return pairs

    def evaluate(self, data: mujoco.MjData) -> tuple[int, bool]:
        """(stage 0-4 as the stock scene computes it, strict success condition at this instant)."""
        pairs = self.contact_pairs(data)
        if self.task == "transfer_cube":
            return self._transfer(pairs)
        return self._insertion(pairs, data)

    def _transfer(self, pairs: set[tuple[int, int]]) -> tuple[int, bool]:
        (box,) = self.obj
        touch_left = (box, self.stage_left) in pairs
        touch_right = (box, self.stage_right) in pairs
        on_table = (box, self.table) in pairs
        stage = 0
        if touch_right:
            stage = 1
        if touch_right and not on_table:
            stage = 2
        if touch_left:
            stage = 3
        if touch_left and not on_table:
            stage = 4
        others = {b for a, b in pairs if a == box}
        strict = bool(others & self.left_fingers) and not (others - self.left_fingers)
        return stage, strict

    def _insertion(self, pairs: set[tuple[int, int]], data: mujoco.MjData) -> tuple[int, bool]:
        (peg,) = self.obj
        touch_right = (peg, self.stage_right) in pairs
        touch_left = any((s, self.stage_left) in pairs for s in self.socket)
        peg_table = (peg, self.table) in pairs
        socket_table = any((s, self.table) in pairs for s in self.socket)
        peg_socket = any((peg, s) in pairs for s in self.socket)
        pin = (peg, self.pin) in pairs
        stage = 0
        if touch_left and touch_right:
            stage = 1
        if touch_left and touch_right and not peg_table and not socket_table:
            stage = 2
        if peg_socket and not peg_table and not socket_table:
            stage = 3
        if pin:
            stage = 4
        # lateral offset of the peg centre from the socket axis, in the socket frame
        rel = data.xmat[self.socket_body].reshape(3, 3).T @ (
            data.xpos[self.obj_body] - data.xpos[self.socket_body]
        )
        inside = float(np.hypot(rel[1], rel[2])) < 0.01
        return stage, pin and inside and not peg_table and not socket_table

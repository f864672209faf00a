"""Loading the gym-aloha MuJoCo scenes, with the edits the simulated twin needs.

The stock XMLs (``gym_aloha/assets``) are read into memory with every asset they include, edited as text and
compiled with ``mujoco.MjModel.from_xml_string``; nothing is written to disk. Edits:

- render quality: ``offsamples`` (multi-sample anti-aliasing) and ``shadowsize`` default to 0, which makes a
  one-camera step several times faster (benchmarks/sim_step.py measures it; docs/sim.md);
- the inverse-kinematics scene: the end-effector (mocap) scene without the task objects and with a stiff weld
  (``solimp`` 0.9/0.95/0.001 instead of 0.25/0.25: the stock weld lags the target by 5-10 cm and ~25 deg).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import mujoco

from recap.errors import ConfigError

TASKS: tuple[str, ...] = ("transfer_cube", "insertion")

#: Our camera names (docs/data.md) -> camera names in the stock scene (the wrist cameras are there).
CAMERA_NAMES: dict[str, str] = {
    "cam_high": "top",
    "cam_left_wrist": "left_wrist",
    "cam_right_wrist": "right_wrist",
}

STIFF_WELD_SOLIMP = "0.9 0.95 0.001"
IK_WRIST_STIFFNESS = 5.0


def assets_dir() -> Path:
    import gym_aloha

    return Path(gym_aloha.__file__).parent / "assets"


@cache
def _assets() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in assets_dir().iterdir() if p.is_file()}


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError(f"unknown aloha-sim task {task!r}; expected one of {list(TASKS)}")
    return task


def _with_render_quality(assets: dict[str, bytes], offsamples: int, shadowsize: int) -> dict[str, bytes]:
    scene = assets["scene.xml"].decode()
    scene = re.sub(
        r'<quality shadowsize="\d+" offsamples="\d+"/>',
        f'<quality shadowsize="{shadowsize}" offsamples="{offsamples}"/>',
        scene,
    )
    return {**assets, "scene.xml": scene.encode()}


#: A wrist camera like the real robot's: on the gripper, 7 cm above its axis, looking 30 deg down along the
#: fingers (the stock ``left_wrist``/``right_wrist`` sit behind the wrist with a 20 deg field of view and see
#: mostly the gripper housing).
WRIST_CAMERA = '<camera name="{arm}_wrist" pos="0 0 0.07" xyaxes="0 -1 0 0.5 0 0.866" fovy="75"/>'


def _with_wrist_cameras(assets: dict[str, bytes]) -> dict[str, bytes]:
    out = dict(assets)
    for arm in ("left", "right"):
        name = f"vx300s_{arm}.xml"
        text, n = re.subn(
            rf'<camera name="{arm}_wrist"[^>]*/>', WRIST_CAMERA.format(arm=arm), assets[name].decode()
        )
        if n != 1:
            raise RuntimeError(f"the gym-aloha arm XML {name} changed: its {arm}_wrist camera was not found")
        out[name] = text.encode()
    return out


def joint_scene(task: str, *, offsamples: int = 0, shadowsize: int = 0) -> mujoco.MjModel:
    """The joint-position-controlled scene of ``task`` (the robot the policy drives), with our wrist cameras."""
    check_task(task)
    assets = _with_wrist_cameras(_with_render_quality(_assets(), offsamples, shadowsize))
    xml = assets[f"bimanual_viperx_{task}.xml"].decode()
    return mujoco.MjModel.from_xml_string(xml, assets)


def ik_scene(task: str) -> mujoco.MjModel:
    """The mocap scene of ``task`` without objects and with a stiff weld: an inverse-kinematics solver.

    Stepped in lock-step with the joint scene, its arm joint positions become the joint scene's actions.
    """
    check_task(task)
    xml = _assets()[f"bimanual_viperx_end_effector_{task}.xml"].decode()
    # Drop the task objects (cube / peg / socket bodies): the IK arms must not push anything.
    xml = re.sub(r'\s*<body name="(box|peg|socket)".*?</body>', "", xml, flags=re.S)
    xml = re.sub(r"<keyframe>.*?</keyframe>", "", xml, flags=re.S)
    xml = xml.replace('solimp=".25 .25 0.001"', f'solimp="{STIFF_WELD_SOLIMP}"')
    if STIFF_WELD_SOLIMP not in xml:
        raise RuntimeError("the gym-aloha end-effector XML changed: its weld solimp could not be stiffened")
    # The wrist is singular when wrist_angle ~ 0 (forearm_roll and wrist_rotate align); weak springs towards 0
    # on forearm_roll keep the solver from drifting along that null space into the +-pi joint limits.
    assets = dict(_assets())
    for arm in ("left", "right"):
        name = f"vx300s_{arm}.xml"
        text = assets[name].decode()
        for joint in ("forearm_roll",):
            text = text.replace(
                f'name="vx300s_{arm}/{joint}"',
                f'name="vx300s_{arm}/{joint}" stiffness="{IK_WRIST_STIFFNESS}"',
            )
        assets[name] = text.encode()
    return mujoco.MjModel.from_xml_string(xml, assets)

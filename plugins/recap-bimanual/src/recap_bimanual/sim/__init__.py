"""The simulated bimanual robot: gym-aloha MuJoCo scenes as a RobotBackend, a scripted (flawed) demonstrator
and a scripted intervening expert."""

import os

# Headless by default: MuJoCo picks its OpenGL platform when it is first imported, so choose EGL (GPU-less
# offscreen, Debian packages libegl1 libgl1-mesa-dri libopengl0) unless the user chose or a display exists.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"

"""Small deterministic episodes for the data tests (and the crash-test writer subprocess)."""

from __future__ import annotations

import numpy as np

from recap.data.spec import RobotSpec, aloha_spec

SPEC: RobotSpec = aloha_spec(height=8, width=12)


def smooth_frames(length: int, height: int, width: int, seed: int) -> np.ndarray:
    """Smooth moving patterns (video codecs are judged on natural-looking images, not noise)."""
    yy, xx = np.mgrid[0:height, 0:width]
    t = np.arange(length)[:, None, None]
    out = np.empty((length, height, width, 3), dtype=np.uint8)
    out[..., 0] = 128 + 100 * np.sin((xx[None] + 2 * t + seed) / 6.0)
    out[..., 1] = 128 + 100 * np.cos((yy[None] + t + 3 * seed) / 5.0)
    out[..., 2] = (60 + 4 * xx[None] + 3 * yy[None] + seed) % 256
    return out


def make_steps(length: int, seed: int, spec: RobotSpec = SPEC) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = {
        cam.key: smooth_frames(length, cam.height, cam.width, seed + i) for i, cam in enumerate(spec.cameras)
    }
    steps["observation.state"] = rng.normal(size=(length, spec.state_dim)).astype(np.float32)
    steps["action"] = rng.normal(size=(length, spec.action_dim)).astype(np.float32)
    steps["is_intervention"] = rng.random(length) < 0.3
    if spec.env_state_dim:
        steps["observation.environment_state"] = rng.normal(size=(length, spec.env_state_dim)).astype(
            np.float32
        )
    return steps


def sim_steps(length: int, height: int, width: int) -> dict[str, np.ndarray]:
    """``length`` steps of the simulated bimanual robot (recap-bimanual) with its three cameras rendered at
    ``height`` x ``width``, arms swinging so consecutive frames differ."""
    import torch
    from recap_bimanual.sim.backend import AlohaSimBackend, AlohaSimConfig

    config = AlohaSimConfig(
        cameras=("cam_high", "cam_left_wrist", "cam_right_wrist"), image_height=height, image_width=width
    )
    with AlohaSimBackend(config) as robot:
        obs = robot.reset("transfer_cube", seed=0)
        home = obs["observation.state"].numpy().astype(np.float64)
        rows = []
        for t in range(length):
            action = home + 0.3 * np.sin(t / 4.0 + np.arange(14))
            rows.append((obs, action))
            obs = robot.step(torch.from_numpy(action)).obs
    names = list(rows[0][0].keys())  # a TensorDict iterates over rows, not keys
    steps = {key: np.stack([o[key].numpy() for o, _ in rows]) for key in names}
    steps["action"] = np.stack([a for _, a in rows]).astype(np.float32)
    steps["is_intervention"] = np.zeros(length, dtype=bool)
    return steps

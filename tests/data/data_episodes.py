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

"""Synthetic episode stores with visible motion, interventions and a label set, for tests and benchmarks of
the tools that show a store (``recap review``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recap.data import keys
from recap.data.schema import SOURCES
from recap.data.spec import CameraSpec, RobotSpec
from recap.data.store import EpisodeStore

LABEL_SET = "synthetic-values"


def synthetic_spec(cameras: int = 1, height: int = 32, width: int = 48, fps: int = 10) -> RobotSpec:
    return RobotSpec(
        cameras=tuple(CameraSpec(f"cam{i}", height, width) for i in range(cameras)),
        state_dim=4,
        action_dim=3,
        fps=fps,
        joint_names=(),
    )


def moving_frames(length: int, height: int, width: int, tint: int) -> np.ndarray:
    """``[length, height, width, 3]`` frames: a gradient with a white square crossing left to right."""
    frames = np.empty((length, height, width, 3), dtype=np.uint8)
    frames[...] = (np.arange(width, dtype=np.uint8) * (200 // max(width, 1)))[None, None, :, None]
    frames[..., tint % 3] = 90
    side = max(2, height // 4)
    xs = (np.arange(length) * (width - side) // max(length - 1, 1)).astype(int)
    for t, x in enumerate(xs):
        frames[t, height // 2 - side // 2 : height // 2 + side // 2, x : x + side] = 255
    return frames


def synthetic_steps(spec: RobotSpec, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.linspace(0, 1, length, dtype=np.float32)[:, None]
    flags = np.zeros(length, dtype=bool)
    if length >= 10 and rng.random() < 0.5:  # about half the episodes have one intervention segment
        start = int(rng.integers(0, length - length // 5))
        flags[start : start + length // 5] = True
    steps = {
        keys.STATE: np.sin(2 * np.pi * t * np.arange(1, spec.state_dim + 1)).astype(np.float32),
        keys.ACTION: (np.cos(2 * np.pi * t * np.arange(1, spec.action_dim + 1)) + rng.normal(0, 0.05)).astype(
            np.float32
        ),
        keys.IS_INTERVENTION: flags,
    }
    for i, cam in enumerate(spec.cameras):
        steps[cam.key] = moving_frames(length, cam.height, cam.width, i)
    return steps


def fill_store(
    root: Path,
    n_episodes: int,
    length: int,
    *,
    spec: RobotSpec | None = None,
    seed: int = 0,
    tasks: tuple[str, ...] = ("pick up the cube", "open the drawer"),
    with_label_set: bool = True,
) -> EpisodeStore:
    """A new store at ``root`` with ``n_episodes`` unlabelled episodes of ``length`` steps (tasks, sources,
    policy versions and loop iterations varied) and, optionally, a label set with value, advantage and indicator per step."""
    spec = spec or synthetic_spec()
    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(root, spec)
    for i in range(n_episodes):
        store.add(
            synthetic_steps(spec, length, rng),
            task=tasks[i % len(tasks)],
            source=SOURCES[i % len(SOURCES)],
            policy_version=f"v{i % 3}",
            robot_id="synthetic",
            iteration=i % 3,
        )
    if with_label_set:
        write_synthetic_label_set(store, rng)
    return store


def write_synthetic_label_set(store: EpisodeStore, rng: np.random.Generator) -> None:
    """The label set ``LABEL_SET``: a random-walk value per episode, its step-to-step change as the
    advantage, I = 1 where it rises, threshold 0 for every task."""
    labels = {}
    for m in store.episodes():
        value = np.cumsum(rng.normal(0.2, 1.0, m.length) / np.sqrt(m.length)).astype(np.float32) - 1.0
        advantage = np.diff(value, append=value[-1]).astype(np.float32)
        labels[m.episode_id] = {"value": value, "advantage": advantage, "indicator": advantage > 0}
    thresholds = {task: 0.0 for task in store.max_length_per_task()}
    store.write_labels(LABEL_SET, labels, {"thresholds": thresholds})

"""The episode schema: per-episode metadata and validation of step-major episode data against a spec.

An episode is ``T`` steps, one row each. ``validate_steps`` turns whatever the caller hands over (a
``TensorDict[T]`` or a mapping of tensors/arrays) into plain numpy arrays of the exact dtypes the store
writes, or raises a ``SchemaError`` naming the key, the expected shape/dtype and what was found.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np
import torch
from tensordict import TensorDict

from recap.data import keys
from recap.data.spec import CameraSpec, RobotSpec
from recap.errors import SchemaError, did_you_mean

Source = Literal["demonstration", "autonomous", "correction"]
SOURCES: tuple[str, ...] = ("demonstration", "autonomous", "correction")
EPISODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def new_episode_id(robot_id: str) -> str:
    """``<UTC time with microseconds>-<robot>-<12 hex digits of a uuid4>``: sorts by time, never collides."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1e6) % 1_000_000:06d}"
    robot = re.sub(r"[^A-Za-z0-9_-]+", "_", robot_id)[:32] or "local"
    return f"{stamp}-{robot}-{uuid.uuid4().hex[:12]}"


def check_episode_fields(task: Any, source: Any, success: Any) -> None:
    if source not in SOURCES:
        raise SchemaError(
            f"source: expected one of {list(SOURCES)}, found {source!r}.{did_you_mean(str(source), SOURCES)}"
        )
    if not isinstance(task, str) or not task:
        raise SchemaError(f"task: expected a non-empty prompt string, found {task!r}")
    if success is not None and not isinstance(success, bool):
        raise SchemaError(f"success: expected True, False or None (unlabelled), found {success!r}")


def check_provenance(iteration: Any, stage: Any, seed: Any) -> None:
    """The loop's provenance fields: each may be ``None`` (recorded outside the loop)."""
    for name, value in (("iteration", iteration), ("seed", seed)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise SchemaError(f"{name}: expected an int or None, found {value!r}")
    if iteration is not None and iteration < 0:
        raise SchemaError(
            f"iteration: expected 0 (demonstrations) or a later loop iteration, found {iteration}"
        )
    if stage is not None and (not isinstance(stage, str) or not stage):
        raise SchemaError(
            f"stage: expected a non-empty stage name such as 'collect-1' or None, found {stage!r}"
        )


def encode_subtasks(subtasks: Sequence[str], length: int) -> tuple[list[str], np.ndarray]:
    """Per-step sub-task strings -> (sorted vocabulary, int32 index per step)."""
    subtasks = list(subtasks)
    if len(subtasks) != length or not all(isinstance(s, str) for s in subtasks):
        raise SchemaError(f"subtasks: expected {length} strings (one per step), found {len(subtasks)} items")
    vocab = sorted(set(subtasks))
    index = {s: i for i, s in enumerate(vocab)}
    return vocab, np.array([index[s] for s in subtasks], dtype=np.int32)


@attrs.frozen
class EpisodeMeta:
    """What the store knows about one committed episode.

    ``success`` is the latest success label (``None`` = unlabelled); its history is kept by the store.
    ``created`` is the commit time (UTC, ISO 8601).

    Provenance, ``None`` for episodes recorded outside the Recap loop (and in stores written before these
    fields existed): ``iteration`` is the loop iteration that produced the episode (0 for demonstrations,
    ``k`` for the ``k``-th collection), ``stage`` the loop stage that recorded it (``"demos"``,
    ``"collect-1"``, ``"eval-0"``...), ``seed`` the environment's reset seed.
    """

    episode_id: str
    task: str
    success: bool | None
    source: str
    policy_version: str
    robot_id: str
    fps: int
    length: int
    created: str
    iteration: int | None = None
    stage: str | None = None
    seed: int | None = None

    @property
    def duration_s(self) -> float:
        return self.length / self.fps


@attrs.frozen
class Episode:
    """One episode read back from the store: metadata, step data ``TensorDict[T]`` and per-step sub-task text."""

    meta: EpisodeMeta
    steps: TensorDict
    subtasks: list[str]


def _to_numpy(key: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    raise SchemaError(f"{key!r}: expected a tensor or numpy array, found {type(value).__name__}")


def _check(key: str, arr: np.ndarray, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """Check ``arr`` against ``shape`` and dtype kind ('uint8', 'float', 'bool', 'int'); return the
    store's dtype (float32 / int64 / bool / uint8)."""
    if arr.shape != shape:
        raise SchemaError(f"{key!r}: expected shape {list(shape)}, found {list(arr.shape)}")
    if kind == "uint8":
        if arr.dtype != np.uint8:
            raise SchemaError(f"{key!r}: expected dtype uint8 (raw pixels 0..255), found {arr.dtype}")
        return arr
    if kind == "float":
        if arr.dtype.kind != "f":
            raise SchemaError(f"{key!r}: expected a float dtype (stored as float32), found {arr.dtype}")
        if not np.isfinite(arr).all():
            raise SchemaError(f"{key!r}: contains NaN or inf; clean the recording before adding it")
        return arr.astype(np.float32, copy=False)
    if kind == "bool":
        if arr.dtype != np.bool_:
            raise SchemaError(f"{key!r}: expected dtype bool, found {arr.dtype}")
        return arr
    if arr.dtype.kind not in "iu":
        raise SchemaError(f"{key!r}: expected an integer dtype, found {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def expected_step_keys(spec: RobotSpec) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-step key -> (shape of one step, dtype kind) for the keys a spec requires."""
    out: dict[str, tuple[tuple[int, ...], str]] = {cam.key: (cam.shape, "uint8") for cam in spec.cameras}
    out[keys.STATE] = ((spec.state_dim,), "float")
    if spec.env_state_dim > 0:
        out[keys.ENV_STATE] = ((spec.env_state_dim,), "float")
    out[keys.ACTION] = ((spec.action_dim,), "float")
    out[keys.IS_INTERVENTION] = ((), "bool")
    return out


OPTIONAL_STEP_KEYS: dict[str, tuple[tuple[int, ...], str]] = {
    keys.FRAME_INDEX: ((), "int"),
    keys.TIMESTAMP: ((), "float"),
}


def validate_steps(steps: TensorDict | Mapping[str, Any], spec: RobotSpec) -> dict[str, np.ndarray]:
    """Validate one episode's steps against ``spec``; return numpy arrays keyed like ``recap.data.keys``.

    Missing ``frame_index`` / ``timestamp`` are filled as ``arange(T)`` and ``arange(T) / fps``.
    """
    if isinstance(steps, TensorDict):
        items = {k: steps.get(k) for k in steps.keys(include_nested=True, leaves_only=True)}
        items = {(".".join(k) if isinstance(k, tuple) else k): v for k, v in items.items()}
    elif isinstance(steps, Mapping):
        items = dict(steps)
    else:
        raise SchemaError(
            f"steps: expected a TensorDict[T] or a mapping of arrays, found {type(steps).__name__}"
        )
    required = expected_step_keys(spec)
    allowed = {**required, **OPTIONAL_STEP_KEYS}
    missing = [k for k in required if k not in items]
    if missing:
        raise SchemaError(f"steps: missing keys {missing}; the spec requires {sorted(required)}")
    unknown = sorted(k for k in items if k not in allowed)
    if unknown:
        raise SchemaError(
            f"steps: unknown keys {unknown}; allowed are {sorted(allowed)} (declare extra cameras or "
            "environment state in the RobotSpec; sub-task text goes in add(subtasks=...))"
        )
    arrays = {k: _to_numpy(k, v) for k, v in items.items()}
    length = arrays[keys.ACTION].shape[0] if arrays[keys.ACTION].ndim > 0 else 0
    if length < 1:
        raise SchemaError(f"steps: an episode needs at least one step, found {length}")
    out = {}
    for key, (shape, kind) in allowed.items():
        if key in arrays:
            out[key] = _check(key, arrays[key], (length, *shape), kind)
    out.setdefault(keys.FRAME_INDEX, np.arange(length, dtype=np.int64))
    out.setdefault(keys.TIMESTAMP, (np.arange(length) / spec.fps).astype(np.float32))
    return out


def spec_to_dict(spec: RobotSpec) -> dict[str, Any]:
    return {
        "cameras": [{"name": c.name, "height": c.height, "width": c.width} for c in spec.cameras],
        "state_dim": spec.state_dim,
        "action_dim": spec.action_dim,
        "fps": spec.fps,
        "env_state_dim": spec.env_state_dim,
        "joint_names": list(spec.joint_names),
    }


def spec_from_dict(data: Mapping[str, Any]) -> RobotSpec:
    try:
        return RobotSpec(
            cameras=tuple(CameraSpec(**c) for c in data["cameras"]),
            state_dim=data["state_dim"],
            action_dim=data["action_dim"],
            fps=data["fps"],
            env_state_dim=data.get("env_state_dim", 0),
            joint_names=tuple(data.get("joint_names", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"spec: not a valid RobotSpec description ({exc}); found {dict(data)}") from exc

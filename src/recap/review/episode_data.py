"""What the episode page draws: metadata, the label and its history, state/action curves, intervention
segments and, from a label set, the value, advantage, threshold and indicator of every step."""

from __future__ import annotations

from typing import Any

import numpy as np

from recap.data import keys
from recap.data.labels import success_name
from recap.data.store import EpisodeStore
from recap.errors import LabelError


def latest_label_set(store: EpisodeStore) -> str | None:
    """The most recently written label set (what `recap label` produced last), or None."""
    names = store.label_sets()
    if not names:
        return None
    return max(names, key=lambda n: (store.label_set_metadata(n).get("created", ""), n))


def _curve(values: np.ndarray) -> list[float]:
    # 4 decimals keep the JSON of a 2,000-step episode small; the plots cannot show more
    return np.round(values.astype(np.float64), 4).tolist()


def segments(flags: np.ndarray) -> list[list[int]]:
    """Runs of True as ``[start, end)`` step ranges."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2], strict=True)]


def label_state(store: EpisodeStore, episode_id: str) -> dict[str, Any]:
    """The current outcome, the compare-and-set version to send back with a new label, and the history."""
    history = store.success_history(episode_id)
    return {
        "outcome": success_name(history[-1]["success"]),
        "version": len(history) - 1,
        "history": [{**e, "outcome": success_name(e["success"])} for e in history],
    }


def label_set_curves(store: EpisodeStore, name: str, episode_id: str, task: str) -> dict[str, Any]:
    """Value / advantage / indicator of one episode in the set ``name`` and the task's advantage threshold."""
    metadata = store.label_set_metadata(name).get("metadata", {})
    per_step = store.episode_labels(name, episode_id)
    threshold = (metadata.get("thresholds") or {}).get(task)
    return {
        "name": name,
        "covers_episode": bool(per_step),
        "threshold": None if threshold is None else float(threshold),
        **{k: _curve(v.numpy()) for k, v in per_step.items() if k in ("value", "advantage", "mc_return")},
        "indicator": per_step["indicator"].numpy().astype(int).tolist() if "indicator" in per_step else None,
    }


def episode_payload(store: EpisodeStore, episode_id: str, label_set: str | None) -> dict[str, Any]:
    """Everything the episode page needs except the video, as JSON-ready values."""
    meta = store.meta(episode_id)
    arrays = store.arrays(episode_id)
    spec = store.spec
    flags = np.asarray(arrays[keys.IS_INTERVENTION])
    label_sets = store.label_sets()
    if label_set is not None and label_set not in label_sets:
        raise LabelError(f"no label set {label_set!r} in the store; have {label_sets}")
    return {
        "episode_id": episode_id,
        "task": meta.task,
        "source": meta.source,
        "policy_version": meta.policy_version,
        "iteration": getattr(meta, "iteration", None),
        "robot_id": meta.robot_id,
        "created": meta.created,
        "fps": meta.fps,
        "length": meta.length,
        "duration_s": meta.duration_s,
        "cameras": [{"name": c.name, "height": c.height, "width": c.width} for c in spec.cameras],
        "joint_names": list(spec.joint_names),
        "label": label_state(store, episode_id),
        "state": _curve(np.asarray(arrays[keys.STATE]).T),
        "action": _curve(np.asarray(arrays[keys.ACTION]).T),
        "intervention": segments(flags),
        "intervention_share": float(flags.mean()),
        "label_sets": label_sets,
        "labels": None if label_set is None else label_set_curves(store, label_set, episode_id, meta.task),
    }

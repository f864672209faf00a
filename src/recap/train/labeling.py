"""The store-labelling pipeline (``recap label``): values -> advantages -> indicators -> a label set.

1. predict V(o_t) for every step of every chosen episode with a value model, in batches of frames that span
   episode boundaries (one forward pass per ``batch_size`` frames, not per frame); under ``torchrun`` the
   batches are dealt out to the ranks (``batch_plan``) and the values gathered back;
2. hand the episodes (values, success, interventions) to a registered AdvantageLabeler (built-in "recap":
   n-step or Monte-Carlo advantages, per-task thresholds for a positive fraction, interventions forced
   positive);
3. write a label set named after the value model (``value-<hash of its weights>``) holding per step
   ``value``, ``mc_return``, ``advantage`` and ``indicator``, with the thresholds in its metadata.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import torch
from tensordict import TensorDict
from torch import nn
from tqdm.auto import tqdm

from recap import config as recap_config
from recap.config import LabelerConfig
from recap.data import EpisodeStore, keys
from recap.data.schema import EpisodeMeta
from recap.protocols import EpisodeToLabel
from recap.train import distributed as ddp
from recap.train.checkpoint import load_value, value_model_id
from recap.train.value import select_labelled

_OBS_PREFIXES = (keys.IMAGE_PREFIX, keys.STATE, keys.ENV_STATE)


@attrs.frozen
class LabelingReport:
    """What ``label_store`` did.

    Attributes:
        label_set: name of the written label set.
        value_id: id of the value model that produced the values.
        thresholds / positive_fraction: per task, eps_l and the share of steps with I = 1 before forcing.
        n_episodes / n_frames: episodes and steps labelled.
        skipped_unlabelled: episodes left out for lack of a success label (``skip_unlabelled=True``).
        frames_per_s: value-prediction throughput.
    """

    label_set: str
    value_id: str
    thresholds: dict[str, float]
    positive_fraction: dict[str, float]
    n_episodes: int
    n_frames: int
    skipped_unlabelled: tuple[str, ...]
    frames_per_s: float


def observation(steps: TensorDict, task: str) -> TensorDict:
    """The observation keys of an episode's steps plus its task prompt (what ``predict`` reads)."""
    names = [k for k in steps.keys() if isinstance(k, str) and k.startswith(_OBS_PREFIXES)]  # noqa: SIM118 - rows otherwise
    obs = steps.select(*names)
    obs.set_non_tensor(keys.TASK, task)
    return obs


def predict_values(
    estimator: nn.Module,
    episodes: Iterable[tuple[str, TensorDict]],
    *,
    batch_size: int = 256,
    total_frames: int | None = None,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """V(o_t) ``[T]`` per episode id, predicting ``batch_size`` frames at a time across episode boundaries.

    ``episodes`` yields ``(episode_id, observation TensorDict[T])`` (see ``observation``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    estimator.eval()
    pieces: dict[str, list[torch.Tensor]] = {}
    pending: list[tuple[str, TensorDict]] = []
    n_pending = 0
    bar = tqdm(total=total_frames, disable=not progress, desc="values", unit="frame")

    def flush(final: bool) -> None:
        nonlocal pending, n_pending
        while n_pending >= batch_size or (final and n_pending > 0):
            take, rows, used = min(batch_size, n_pending), [], 0
            owners: list[tuple[str, int]] = []
            while used < take:
                eid, td = pending[0]
                k = min(td.batch_size[0], take - used)
                rows.append(td[:k])
                owners.append((eid, k))
                used += k
                if k == td.batch_size[0]:
                    pending.pop(0)
                else:
                    pending[0] = (eid, td[k:])
            values = estimator.predict(torch.cat(rows) if len(rows) > 1 else rows[0])["value"].float().cpu()
            for (eid, _), v in zip(owners, values.split([n for _, n in owners]), strict=True):
                pieces.setdefault(eid, []).append(v)
            n_pending -= take
            bar.update(take)

    for eid, obs in episodes:
        pending.append((eid, obs))
        n_pending += obs.batch_size[0]
        flush(final=False)
    flush(final=True)
    bar.close()
    return {eid: torch.cat(v) for eid, v in pieces.items()}


#: one piece of one value-model batch: (episode id, first step, end step)
Segment = tuple[str, int, int]


def batch_plan(metas: list[EpisodeMeta], batch_size: int) -> list[list[Segment]]:
    """The value-model batches of a labelling run: the steps of ``metas``, in order, cut every ``batch_size``.

    The plan depends on the episodes and the batch size only, so every rank of a distributed run computes the
    same batches a single process does, and its values are bit-for-bit those of the single process.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    plan: list[list[Segment]] = [[]]
    room = batch_size
    for m in metas:
        start = 0
        while start < m.length:
            if room == 0:
                plan.append([])
                room = batch_size
            stop = min(m.length, start + room)
            plan[-1].append((m.episode_id, start, stop))
            room -= stop - start
            start = stop
    return [b for b in plan if b]


def _segment_observations(
    store: EpisodeStore,
    segments: list[Segment],
    tasks: dict[str, str],
    flags: dict[tuple[str, int], torch.Tensor],
) -> Iterator[tuple[tuple[str, int], TensorDict]]:
    """Observations of each segment (an episode is read once for consecutive segments); the intervention flags
    are kept aside in ``flags``."""
    loaded: tuple[str, TensorDict] | None = None
    for eid, start, stop in segments:
        if loaded is None or loaded[0] != eid:
            loaded = (eid, store.load(eid).steps)
        steps = loaded[1][start:stop]
        flags[(eid, start)] = steps[keys.IS_INTERVENTION].bool().clone()
        yield (eid, start), observation(steps, tasks[eid])


def _assemble(pieces: dict[tuple[str, int], torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-episode tensors from (episode, first step) pieces."""
    by_episode: dict[str, list[tuple[int, torch.Tensor]]] = {}
    for (eid, start), value in pieces.items():
        by_episode.setdefault(eid, []).append((start, value))
    return {
        eid: torch.cat([v for _, v in sorted(parts, key=lambda p: p[0])]) for eid, parts in by_episode.items()
    }


def predict_store_values(
    store: EpisodeStore,
    estimator: nn.Module,
    metas: list[EpisodeMeta],
    *,
    batch_size: int,
    info: ddp.DistInfo,
    progress: bool,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """V(o_t) and the intervention flags per episode. Under torchrun each rank predicts every ``world``-th
    batch of ``batch_plan`` and the pieces are exchanged, so every rank returns all episodes."""
    plan = batch_plan(metas, batch_size)
    mine = [seg for i, batch in enumerate(plan) if i % info.world_size == info.rank for seg in batch]
    flags: dict[tuple[str, int], torch.Tensor] = {}
    with torch.inference_mode():
        values = predict_values(
            estimator,
            _segment_observations(store, mine, {m.episode_id: m.task for m in metas}, flags),
            batch_size=batch_size,
            total_frames=sum(stop - start for _, start, stop in mine),
            progress=progress and info.is_main,
        )
    all_values: dict[tuple[str, int], torch.Tensor] = {}
    all_flags: dict[tuple[str, int], torch.Tensor] = {}
    for rank_values, rank_flags in ddp.gather_objects((values, flags), info):
        all_values.update(rank_values)
        all_flags.update(rank_flags)
    return _assemble(all_values), _assemble(all_flags)


#: the labeler used when none is configured (registered by the built-in plugin ``recap.builtins.labeler``)
DEFAULT_LABELER = "recap"


def build_labeler(config: LabelerConfig | None, registry: Any) -> Any:
    """The labeler ``config`` configures; None: the default labeler with its default settings."""
    if config is None:
        config = registry.get("labeler", DEFAULT_LABELER).config()
    return registry.build(config)


def label_store(
    store: EpisodeStore,
    value: str | Path,
    labeler: LabelerConfig | None = None,
    *,
    episodes: list[EpisodeMeta] | None = None,
    skip_unlabelled: bool = False,
    name: str | None = None,
    batch_size: int = 256,
    registry: Any = None,
    progress: bool = True,
) -> LabelingReport:
    """Label every step of the chosen episodes with the value checkpoint ``value`` and write a label set.

    Under ``torchrun`` the value-model batches are split over the ranks; the advantages and thresholds are then
    computed from every rank's values, and rank 0 writes the one label set (the same one a single process
    writes). Every rank returns the same report.

    Args:
        store: the experience.
        value: a value checkpoint directory (``recap train-value``'s ``OUT/value``).
        labeler: the labeler config (default: the built-in "recap" labeler, n-step, 30% positive).
        episodes: the episodes to label (default: all); thresholds are computed over exactly these.
        skip_unlabelled: leave out episodes without a success label (reported) instead of refusing.
        name: the label set name (default: the value model's id and a digest of the labeler settings).
        batch_size: frames per value-model call.
    """
    from recap.plugins import get_registry

    reg = registry if registry is not None else get_registry()
    chosen = store.episodes() if episodes is None else list(episodes)
    chosen, skipped = select_labelled(chosen, skip_unlabelled, store.root, "labelling")
    labeler_impl = build_labeler(labeler, reg)
    estimator = load_value(value, reg)
    info = ddp.init_distributed()
    try:
        started = time.perf_counter()
        values, flags = predict_store_values(
            store, estimator, chosen, batch_size=batch_size, info=info, progress=progress
        )
        predict_s = time.perf_counter() - started
        to_label = [
            EpisodeToLabel(m.episode_id, m.task, m.success, values[m.episode_id], flags[m.episode_id])
            for m in chosen
        ]
        result = labeler_impl.label(to_label, store.max_length_per_task())
        report = _write_label_set(
            store, value, labeler_impl, result, values, chosen, skipped, name, reg, info
        )
        ddp.barrier(info)  # the set is complete before any rank returns
    finally:
        ddp.shutdown(info)
    n_frames = sum(m.length for m in chosen)
    return attrs.evolve(report, frames_per_s=n_frames / max(predict_s, 1e-9))


def _write_label_set(
    store: EpisodeStore,
    value: str | Path,
    labeler_impl: Any,
    result: Any,
    values: dict[str, torch.Tensor],
    chosen: list[EpisodeMeta],
    skipped: tuple[str, ...],
    name: str | None,
    reg: Any,
    info: ddp.DistInfo,
) -> LabelingReport:
    """Rank 0 writes the label set (named after the value model and the labeler settings); all ranks report."""
    value_id = value_model_id(value)
    labels = {eid: {**per_step, "value": values[eid]} for eid, per_step in result.episodes.items()}
    labeler_dict = recap_config.to_dict(labeler_impl.config, reg) if hasattr(labeler_impl, "config") else None
    # value model and labeler settings both name the set, so relabelling differently never replaces labels
    name = name or f"{value_id}-{_digest(labeler_dict)}"
    metadata = {
        "value_model": value_id,
        "value_checkpoint": str(Path(value).resolve()),
        "labeler": labeler_dict,
        "thresholds": dict(result.thresholds),
        "positive_fraction": dict(result.positive_fraction),
        "skipped_unlabelled": list(skipped),
    }
    if info.is_main:
        store.write_labels(name, labels, metadata)
    return LabelingReport(
        label_set=name,
        value_id=value_id,
        thresholds=dict(result.thresholds),
        positive_fraction=dict(result.positive_fraction),
        n_episodes=len(chosen),
        n_frames=sum(m.length for m in chosen),
        skipped_unlabelled=skipped,
        frames_per_s=0.0,
    )


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:8]

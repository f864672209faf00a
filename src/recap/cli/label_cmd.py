"""``recap label STORE --value CKPT``: predict values, compute advantages and indicators, write a label set."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import tyro

from recap import config
from recap.config import LabelerConfig
from recap.data import EpisodeStore
from recap.errors import ConfigError
from recap.plugins import get_registry
from recap.train.labeling import DEFAULT_LABELER, label_store


def label(
    store: tyro.conf.Positional[Path],
    value: Path,
    mode: Literal["nstep", "monte_carlo"] = "nstep",
    lookahead: int = 50,
    positive_fraction: float = 0.3,
    per_task_fraction: dict[str, float] | None = None,
    c_fail: float | None = None,
    force_interventions: bool = True,
    labeler_config: Path | None = None,
    skip_unlabelled: bool = False,
    name: str | None = None,
    task: str | None = None,
    source: str | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> int:
    """Label every step of the store's episodes with advantages and improvement indicators.

    Args:
        store: the store directory.
        value: a value checkpoint directory (`recap train-value`'s OUT/value).
        mode: "nstep" (fine-tuning iterations) or "monte_carlo" (pre-training: A = R_t - V).
        lookahead: N of the n-step advantage (50 steps = 1 s at 50 Hz).
        positive_fraction: share of each task's steps labelled I = 1 (paper: ~0.3 pre-training, ~0.4 fine-tuning).
        per_task_fraction: per-task overrides, e.g. --per-task-fraction "fold the shirt" 0.1.
        c_fail: failure penalty in steps (default: the task's longest episode, so failures normalise to -1).
        force_interventions: label operator-correction steps I = 1.
        labeler_config: a labeler config file (.toml/.json, tagged with the labeler's name) instead of the
            options above, for other registered labelers.
        skip_unlabelled: leave out episodes without a success label (they are listed) instead of refusing.
        name: label set name (default: the value model's id, value-<hash>).
        task: label only this task's episodes.
        source: label only episodes of this source (demonstration/autonomous/correction).
        batch_size: frames per value-model call.
        progress: show a progress bar.
    """
    reg = get_registry()
    if labeler_config is not None:
        labeler: LabelerConfig = config.load(labeler_config, LabelerConfig, reg)
    else:
        try:  # the default labeler's settings, from this command's options
            labeler = reg.get("labeler", DEFAULT_LABELER).config(
                mode=mode,
                lookahead=lookahead,
                positive_fraction=positive_fraction,
                per_task_fraction=dict(per_task_fraction or {}),
                c_fail=c_fail,
                force_interventions=force_interventions,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if not (value / "model.safetensors").exists() and (value / "value" / "model.safetensors").exists():
        value = value / "value"  # a `recap train-value` run directory was given
    st = EpisodeStore.open(store)
    filters = {k: v for k, v in {"task": task, "source": source}.items() if v is not None}
    episodes = st.episodes(**filters)
    if not episodes:
        raise ConfigError(f"no episodes in {store} match {filters or 'any filter'}")
    report = label_store(
        st,
        value,
        labeler,
        episodes=episodes,
        skip_unlabelled=skip_unlabelled,
        name=name,
        batch_size=batch_size,
        registry=reg,
        progress=progress,
    )
    print(
        f"label set {report.label_set!r}: {report.n_episodes} episodes, {report.n_frames} steps "
        f"({report.frames_per_s:.0f} frames/s of value prediction)"
    )
    for t in sorted(report.thresholds):
        print(f"  {t}: threshold {report.thresholds[t]:+.5f}, positive {report.positive_fraction[t]:.1%}")
    if report.skipped_unlabelled:
        print(
            f"skipped {len(report.skipped_unlabelled)} episode(s) without a success label: "
            f"{', '.join(report.skipped_unlabelled)}"
        )
    return 0

"""``recap label --store STORE --value CKPT``: predict values, compute advantages and indicators, write a
label set.

    recap label --store runs/iter1 --value runs/value1 --labeler.mode nstep --labeler.positive-fraction 0.4

Settings are taken as ``recap loop`` takes them: ``labeler:NAME`` picks a registered labeler,
``--labeler.setting value`` sets one of its settings; ``--config FILE`` starts from saved settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from recap.cli.collect_cmd import registered_default
from recap.cli.overrides import parse_command
from recap.config import LabelerConfig
from recap.data import EpisodeStore
from recap.errors import ConfigError
from recap.plugins import get_registry
from recap.train.labeling import DEFAULT_LABELER, label_store


@attrs.frozen(kw_only=True)
class LabelSettings:
    """Label every step of the store's episodes with advantages and improvement indicators.

    Attributes:
        store: the store directory.
        value: a value checkpoint directory (`recap train-value`'s OUT/value, or OUT itself).
        labeler: how values become advantages and indicators (``recap``: n-step or Monte-Carlo advantages,
            a per-task threshold at ``positive_fraction``).
        skip_unlabelled: leave out episodes without a success label (they are listed) instead of refusing.
        name: label set name (default: the value model's id, value-<hash>).
        task: label only this task's episodes.
        source: label only episodes of this source (demonstration/autonomous/correction).
        batch_size: frames per value-model call.
        progress: show a progress bar.
    """

    store: Path
    value: Path
    labeler: LabelerConfig
    skip_unlabelled: bool = False
    name: str | None = None
    task: str | None = None
    source: str | None = None
    batch_size: int = 256
    progress: bool = True


def label(args: Sequence[str]) -> int:
    """Label a store's episodes with a value checkpoint."""
    labeler = registered_default("labeler", DEFAULT_LABELER)
    if labeler is None:
        raise ConfigError("no labeler is registered; install the recap plugins (see README)")
    settings = parse_command(LabelSettings, {"labeler": labeler}, args, "recap label", __doc__)
    value = settings.value
    if not (value / "model.safetensors").exists() and (value / "value" / "model.safetensors").exists():
        value = value / "value"  # a `recap train-value` run directory was given
    store = EpisodeStore.open(settings.store)
    filters = {k: v for k, v in {"task": settings.task, "source": settings.source}.items() if v is not None}
    episodes = store.episodes(**filters)
    if not episodes:
        raise ConfigError(f"no episodes in {settings.store} match {filters or 'any filter'}")
    report = label_store(
        store,
        value,
        settings.labeler,
        episodes=episodes,
        skip_unlabelled=settings.skip_unlabelled,
        name=settings.name,
        batch_size=settings.batch_size,
        registry=get_registry(),
        progress=settings.progress,
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


label.raw_args = True

"""The loop's learning stages: train a value function, label advantages with it, train a policy on the labels.

Each is ``stage(run, stage_dir, *, ...) -> summary`` (see ``LoopRun.stage``); the episodes a stage learns
from are passed in by the loop, chosen by their provenance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from recap.config import ExtractorConfig, LabelerConfig
from recap.data import EpisodeMeta
from recap.loop.config import LoopConfig, StageTraining
from recap.loop.run import LoopRun
from recap.train.checkpoint import value_model_id
from recap.train.labeling import label_store
from recap.train.policy import POLICY_DIR, train_policy
from recap.train.trainer import TrainerConfig
from recap.train.value import VALUE_DIR, train_value

#: trainer seeds of run seeds r and r + 1 are this far apart (a stage's own ``trainer.seed`` is added)
RUN_SEED_SPACING = 1_000_000


def value_checkpoint(stage_dir: Path) -> Path:
    return stage_dir / VALUE_DIR


def policy_checkpoint(stage_dir: Path) -> Path:
    return stage_dir / POLICY_DIR


def seeded_trainer(run: LoopRun, training: StageTraining) -> TrainerConfig:
    """The stage's trainer seeded from the run seed: initial weights and batches differ between run seeds."""
    return attrs.evolve(training.trainer, seed=training.trainer.seed + RUN_SEED_SPACING * run.cfg.seed)


def iteration_policy_training(
    cfg: LoopConfig, pi_pre: Path, previous: Path | None = None
) -> tuple[StageTraining, Path | None]:
    """The training settings and initial weights of pi_k (``LoopConfig.iteration_policy``); ``previous`` is
    pi_(k-1) from iteration 2 on (None in the first iteration)."""
    if cfg.iteration_policy == "retrain":
        return cfg.policy_pretrain, cfg.policy_init
    if cfg.iteration_policy == "continue" and previous is not None:
        return cfg.policy_finetune, previous
    return cfg.policy_finetune, pi_pre


def train_value_stage(
    run: LoopRun,
    stage_dir: Path,
    *,
    training: StageTraining,
    episodes: list[EpisodeMeta],
    init_from: Path | None,
) -> dict[str, Any]:
    """V on ``episodes`` (Eq. 1), from scratch or fine-tuned from ``init_from``."""
    result = train_value(
        run.store,
        value=run.cfg.value,
        trainer=seeded_trainer(run, training),
        out_dir=stage_dir,
        batch_size=training.batch_size,
        episodes=episodes,
        init_from=init_from,
        registry=run.registry,
    )
    return {
        "checkpoint": str(result.checkpoint),
        "metrics": result.train.metrics,
        "value_id": value_model_id(result.checkpoint),
        "resumed_from": result.train.resumed_from,
        "episodes": len(episodes),
    }


def label_stage(
    run: LoopRun,
    stage_dir: Path,
    *,
    value: Path,
    labeler: LabelerConfig,
    episodes: list[EpisodeMeta],
) -> dict[str, Any]:
    """Advantages of ``value`` on ``episodes`` and the improvement indicator they threshold to."""
    report = label_store(run.store, value, labeler, episodes=episodes, registry=run.registry, progress=False)
    return {
        "label_set": report.label_set,
        "thresholds": dict(report.thresholds),
        "positive_fraction": dict(report.positive_fraction),
        "episodes": report.n_episodes,
    }


def train_policy_stage(
    run: LoopRun,
    stage_dir: Path,
    *,
    extractor: ExtractorConfig,
    training: StageTraining,
    label_set: str,
    episodes: list[EpisodeMeta],
    init_from: Path | None,
) -> dict[str, Any]:
    """pi on ``episodes`` with the extractor (Recap: advantage conditioning on ``label_set``)."""
    result = train_policy(
        run.store,
        policy=run.cfg.policy,
        extractor=extractor,
        trainer=seeded_trainer(run, training),
        out_dir=stage_dir,
        batch_size=training.batch_size,
        chunk_size=run.cfg.chunk_size,
        label_set=label_set,
        episodes=episodes,
        init_from=init_from,
        registry=run.registry,
        resolved_config=run.cfg,
    )
    return {
        "checkpoint": str(result.checkpoint),
        "metrics": result.train.metrics,
        "resumed_from": result.train.resumed_from,
        "init_from": None if init_from is None else str(init_from),
        "episodes": len(episodes),
    }


def sft_stage(
    run: LoopRun, stage_dir: Path, *, extractor: ExtractorConfig, label_set: str, init_from: Path
) -> dict[str, Any]:
    """Demonstration fine-tuning (I = 1) of ``init_from`` on the task's successful demonstrations.

    A failed demonstration labelled I = 1 would teach the failure, so only successes are imitated; with
    none, the stage is skipped and the loop deploys ``init_from``.
    """
    demos = run.successful_demonstrations()
    if not demos:
        run.log(
            "[sft] no successful demonstration of the task: SFT skipped, the pre-trained policy is deployed"
        )
        return {"checkpoint": str(init_from), "skipped": "no successful demonstrations"}
    return train_policy_stage(
        run,
        stage_dir,
        extractor=extractor,
        training=run.cfg.policy_sft,
        label_set=label_set,
        episodes=demos,
        init_from=init_from,
    ) | {"demonstrations": len(demos)}

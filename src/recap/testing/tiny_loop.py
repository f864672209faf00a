"""A loop config shrunk to seconds (a few demonstrations, a few training steps per stage), for tests that put a
policy through every stage of ``recap loop``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from recap.config import PolicyConfig

#: the policy and value training stages of a ``LoopConfig``
TRAINING_STAGES = ("value_pretrain", "value_finetune", "policy_pretrain", "policy_sft", "policy_finetune")


def tiny_loop(
    cfg: Any,
    out: Path,
    policy: PolicyConfig,
    chunk_size: int,
    *,
    steps: int = 3,
    batch_size: int = 4,
    episodes: int = 2,
    time_limit: float = 20,
    **overrides: Any,
) -> Any:
    """``cfg`` (a ``LoopConfig``) with ``policy``, ``episodes`` demonstrations, collections and evaluations per
    stage, ``steps`` optimiser steps per training stage and episodes cut at ``time_limit`` seconds."""
    trainer = {
        "steps": steps,
        "warmup_steps": 0,
        "checkpoint_every": 50,
        "log_every": steps,
        "progress": False,
    }
    training = {
        name: attrs.evolve(
            getattr(cfg, name),
            trainer=attrs.evolve(getattr(cfg, name).trainer, **trainer),
            batch_size=batch_size,
        )
        for name in TRAINING_STAGES
    }
    collect = attrs.evolve(
        cfg.collect,
        demos=episodes,
        episodes_per_iteration=episodes,
        eval_episodes=episodes,
        chunk_execute=chunk_size,
        time_limit=time_limit,
        workers=1,
    )
    # episodes this short never succeed, and a labeler that draws positives only from successes refuses that
    labeler = cfg.finetune_labeler
    if hasattr(labeler, "successful_only"):
        labeler = attrs.evolve(labeler, successful_only=False)
    return attrs.evolve(
        cfg,
        out=out,
        policy=policy,
        chunk_size=chunk_size,
        backend=attrs.evolve(cfg.backend, time_limit=time_limit),
        collect=collect,
        **training,
        **{"finetune_labeler": labeler, **overrides},
    )

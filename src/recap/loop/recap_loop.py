"""Algorithm 1 of the paper on any registered robot, policy, value estimator and extractor.

    demos -> value-pretrain -> label-pretrain -> policy-pretrain -> sft -> eval-0
    for k in 1..K: collect-k -> value-k (from V_pre) -> label-k -> policy-k (from pi_pre, or retrained) -> eval-k

Every stage writes its resolved config, metrics, checkpoints and a summary under ``<out>/stages/<stage>``;
``<out>/store`` holds all experience, each episode tagged with the iteration and stage that recorded it, and
each stage trains on the episodes its provenance selects. A killed run resumes at the stage it was in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from recap.loop.config import LoopConfig
from recap.loop.experience import collect_autonomous, collect_demonstrations, evaluate_policy
from recap.loop.run import STORE, LoopRun, deterministic_algorithms
from recap.loop.training_stages import (
    iteration_policy_training,
    label_stage,
    policy_checkpoint,
    sft_stage,
    train_policy_stage,
    train_value_stage,
    value_checkpoint,
)

__all__ = ["STORE", "LoopResult", "run_loop"]


@attrs.frozen
class LoopResult:
    run_dir: Path
    summaries: dict[str, dict[str, Any]]


def run_loop(cfg: LoopConfig, registry: Any = None, log: Callable[[str], None] = print) -> LoopResult:
    """Run (or resume) the whole loop; returns every stage's summary."""
    if registry is None:
        from recap.plugins import get_registry

        registry = get_registry()
    with deterministic_algorithms(cfg.deterministic):
        return _run_stages(LoopRun.start(cfg, registry, log))


def _run_stages(run: LoopRun) -> LoopResult:
    cfg = run.cfg

    # D_demo: demonstrations of the task (iteration 0)
    run.stage("demos", collect_demonstrations)
    # 1: V_pre on D_demo (Eq. 1), Monte-Carlo advantages from it
    v_pre = value_checkpoint(
        run.stage(
            "value-pretrain",
            train_value_stage,
            training=cfg.value_pretrain,
            episodes=run.demonstrations(),
            init_from=None,
        ).dir
    )
    pretrain_labels = run.stage(
        "label-pretrain",
        label_stage,
        value=v_pre,
        labeler=cfg.pretrain_labeler,
        episodes=run.demonstrations(),
    ).summary["label_set"]
    # 2: pi_pre on D_demo, conditioned on V_pre's improvement indicator
    pi_pre = policy_checkpoint(
        run.stage(
            "policy-pretrain",
            train_policy_stage,
            extractor=cfg.extractor,
            training=cfg.policy_pretrain,
            label_set=pretrain_labels,
            episodes=run.demonstrations(),
            init_from=cfg.policy_init,
        ).dir
    )
    # 3-5: demonstration fine-tuning of pi_pre for the task (I = 1)
    policy = pi_pre
    if cfg.sft_extractor is not None:
        sft = run.stage(
            "sft", sft_stage, extractor=cfg.sft_extractor, label_set=pretrain_labels, init_from=pi_pre
        )
        policy = pi_pre if "skipped" in sft.summary else policy_checkpoint(sft.dir)
    run.stage("eval-0", evaluate_policy, policy=policy, label="SFT" if cfg.sft_extractor else "pre-trained")

    for k in range(1, cfg.iterations + 1):
        # 7: collect with pi^(k-1) (some episodes watched by the expert), add to D
        run.stage(f"collect-{k}", collect_autonomous, policy=policy, iteration=k)
        # 8: V^k from V_pre on D
        v_k = value_checkpoint(
            run.stage(
                f"value-{k}",
                train_value_stage,
                training=cfg.value_finetune,
                episodes=run.experience_through(k),
                init_from=v_pre,
            ).dir
        )
        labels_k = run.stage(
            f"label-{k}",
            label_stage,
            value=v_k,
            labeler=cfg.finetune_labeler,
            episodes=run.experience_through(k),
        ).summary["label_set"]
        # 9: pi^k from pi_pre (or retrained like it, or from pi^(k-1)) on D, conditioned on V^k's indicator
        training, init_from = iteration_policy_training(cfg, pi_pre, policy if k > 1 else None)
        policy = policy_checkpoint(
            run.stage(
                f"policy-{k}",
                train_policy_stage,
                extractor=cfg.extractor,
                training=training,
                label_set=labels_k,
                episodes=run.experience_through(k),
                init_from=init_from,
            ).dir
        )
        run.stage(f"eval-{k}", evaluate_policy, policy=policy, label=f"Recap iter {k}")
    return LoopResult(run.run_dir, run.summaries)

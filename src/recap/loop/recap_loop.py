"""Algorithm 1 of the paper on any registered robot, policy, value estimator and extractor.

    demos -> value-pretrain -> label-pretrain -> policy-pretrain -> sft -> eval-0
    for k in 1..K: collect-k -> value-k (from V_pre) -> label-k -> policy-k (from pi_pre) -> eval-k

Every stage writes its resolved config, metrics, checkpoints and a summary under ``<out>/stages/<stage>``;
``<out>/store`` holds all experience; a killed run resumes at the stage it was in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from recap import config as recap_config
from recap.data import EpisodeStore
from recap.loop import experience
from recap.loop.config import LoopConfig
from recap.loop.stages import StageRunner
from recap.train.checkpoint import value_model_id
from recap.train.labeling import label_store
from recap.train.policy import POLICY_DIR, train_policy
from recap.train.value import VALUE_DIR, train_value

STORE = "store"


@attrs.frozen
class LoopResult:
    run_dir: Path
    summaries: dict[str, dict[str, Any]]

    def evaluations(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.summaries.items() if k.startswith("eval-")}


def run_loop(cfg: LoopConfig, registry: Any = None, log=print) -> LoopResult:
    """Run (or resume) the whole loop; returns every stage's summary."""
    from recap.plugins import get_registry

    reg = registry if registry is not None else get_registry()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    recap_config.dump(cfg, out / "config.toml", reg)
    runner = StageRunner(out, log)
    spec = experience.backend_spec(cfg, reg)
    store_dir = out / STORE
    store = EpisodeStore.open(store_dir) if store_dir.exists() else EpisodeStore.create(store_dir, spec)
    summaries: dict[str, dict[str, Any]] = {}

    def stage(name: str, fn) -> dict[str, Any]:
        summaries[name] = runner.run(name, fn)
        return summaries[name]

    stage("demos", lambda d: experience.collect_demos(cfg, store, d, reg))
    task_eps = lambda: store.episodes(task=cfg.task)  # noqa: E731 - re-read: the store grows

    v_pre = runner.dir("value-pretrain") / VALUE_DIR
    stage("value-pretrain", lambda d: _value(cfg, store, d, cfg.value_pretrain, None, reg))
    pre_labels = stage("label-pretrain", lambda d: _label(store, v_pre, cfg.pretrain_labeler, reg))[
        "label_set"
    ]
    pi_pre = runner.dir("policy-pretrain") / POLICY_DIR
    stage(
        "policy-pretrain",
        lambda d: _policy(cfg, store, d, cfg.extractor, cfg.policy_pretrain, pre_labels, None, None, reg),
    )
    pi_current = pi_pre
    if cfg.sft_extractor is not None:
        sft = stage("sft", lambda d: _sft(cfg, store, d, pi_pre, pre_labels, reg, log))
        # from the run directory, not the recorded path: a moved or copied run directory resumes too
        pi_current = pi_pre if "skipped" in sft else runner.dir("sft") / POLICY_DIR
    stage(
        "eval-0",
        lambda d: experience.evaluate(
            cfg, pi_current, d, reg, label="SFT" if cfg.sft_extractor else "pre-trained"
        ),
    )

    for k in range(1, cfg.iterations + 1):
        policy_k = pi_current
        stage(
            f"collect-{k}", lambda d, p=policy_k, k=k: experience.collect_autonomous(cfg, store, p, k, d, reg)
        )
        stage(f"value-{k}", lambda d: _value(cfg, store, d, cfg.value_finetune, v_pre, reg, task_eps()))
        v_k = runner.dir(f"value-{k}") / VALUE_DIR
        labels_k = stage(
            f"label-{k}", lambda d, v=v_k: _label(store, v, cfg.finetune_labeler, reg, task_eps())
        )["label_set"]
        stage(
            f"policy-{k}",
            lambda d, lab=labels_k: _policy(
                cfg, store, d, cfg.extractor, cfg.policy_finetune, lab, task_eps(), pi_pre, reg
            ),
        )
        pi_current = runner.dir(f"policy-{k}") / POLICY_DIR
        stage(
            f"eval-{k}",
            lambda d, p=pi_current, k=k: experience.evaluate(cfg, p, d, reg, label=f"Recap iter {k}"),
        )
    return LoopResult(out, summaries)


def _value(
    cfg: LoopConfig, store, stage_dir: Path, training, init_from, reg, episodes=None
) -> dict[str, Any]:
    result = train_value(
        store,
        value=cfg.value,
        trainer=training.trainer,
        out_dir=stage_dir,
        batch_size=training.batch_size,
        episodes=episodes,
        init_from=init_from,
        registry=reg,
    )
    return {
        "checkpoint": str(result.checkpoint),
        "metrics": result.train.metrics,
        "value_id": value_model_id(result.checkpoint),
        "resumed_from": result.train.resumed_from,
    }


def _sft(cfg: LoopConfig, store, stage_dir: Path, pi_pre: Path, label_set: str, reg, log) -> dict[str, Any]:
    """Demonstration fine-tuning (I = 1) on the successful demonstrations of the task."""
    # A failed demonstration labelled I = 1 would teach the failure, so only successes are imitated.
    demos = [e for e in store.episodes(task=cfg.task) if e.source == "demonstration" and e.success]
    if not demos:
        log("[sft] no successful demonstration of the task: SFT skipped, the pre-trained policy is deployed")
        return {"checkpoint": str(pi_pre), "skipped": "no successful demonstrations"}
    summary = _policy(cfg, store, stage_dir, cfg.sft_extractor, cfg.policy_sft, label_set, demos, pi_pre, reg)
    return {**summary, "demonstrations": len(demos)}


def _label(store, value_dir: Path, labeler, reg, episodes=None) -> dict[str, Any]:
    report = label_store(store, value_dir, labeler, episodes=episodes, registry=reg, progress=False)
    return {
        "label_set": report.label_set,
        "thresholds": dict(report.thresholds),
        "positive_fraction": dict(report.positive_fraction),
        "episodes": report.n_episodes,
    }


def _policy(
    cfg: LoopConfig, store, stage_dir, extractor, training, label_set, episodes, init_from, reg
) -> dict[str, Any]:
    result = train_policy(
        store,
        policy=cfg.policy,
        extractor=extractor,
        trainer=training.trainer,
        out_dir=stage_dir,
        batch_size=training.batch_size,
        chunk_size=cfg.chunk_size,
        label_set=label_set,
        episodes=episodes,
        init_from=init_from,
        registry=reg,
        resolved_config=cfg,
    )
    return {
        "checkpoint": str(result.checkpoint),
        "metrics": result.train.metrics,
        "resumed_from": result.train.resumed_from,
    }

"""The loop's robot time: demonstrations, autonomous collection (some episodes watched by the intervening
expert) and evaluation on fixed seeds, optionally spread over worker processes.

Collection is resumable per episode: each finished episode's seed is appended to ``progress.jsonl`` after the
store committed it, and a resumed stage runs only the seeds not yet there.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import attrs

from recap import config as recap_config
from recap.data import EpisodeStore
from recap.loop.config import LoopConfig
from recap.rollout.collect import EpisodeSummary, RolloutReport, collect
from recap.rollout.collect import evaluate as evaluate_rollouts
from recap.train.checkpoint import load_policy

PROGRESS = "progress.jsonl"
DEMO_SEEDS, COLLECT_SEEDS, EVAL_SEEDS = 0, 100_000, 10_000_000


def backend_spec(cfg: LoopConfig, reg: Any):
    backend = _backend(cfg, reg)
    try:
        return backend.spec
    finally:
        backend.close()


def _backend(cfg: LoopConfig, reg: Any, evaluation: bool = False):
    chosen = cfg.eval_backend if evaluation and cfg.eval_backend is not None else cfg.backend
    return reg.build(chosen)


def uses_expert(i: int, share: float) -> bool:
    """Spread the expert-watched episodes evenly: episode i is watched when floor((i+1)s) > floor(i s)."""
    return math.floor((i + 1) * share) > math.floor(i * share)


def metrics(report: RolloutReport) -> dict[str, Any]:
    eps = report.episodes
    total = sum(e.length for e in eps)
    return {
        "episodes": len(eps),
        "success_rate": report.success_rate,
        "success_ci": list(report.success_rate_ci),
        "throughput_per_hour": report.throughput_per_hour,
        "throughput_ci": list(report.throughput_ci),
        "mean_time_to_success_s": None
        if math.isnan(report.mean_time_to_success_s)
        else report.mean_time_to_success_s,
        "mean_duration_s": report.mean_duration_s,
        "intervention_share": sum(e.intervention_steps for e in eps) / max(total, 1),
        "episodes_with_interventions": report.interventions,
    }


# -- work that runs in this process or in a worker -------------------------------------------------------------


@attrs.frozen
class _Job:
    """One worker's share of a stage (plain data so it crosses process boundaries)."""

    cfg_toml: str
    mode: str  # "demos" | "collect" | "eval"
    seeds: tuple[int, ...]
    expert_seeds: tuple[int, ...] = ()
    store: str = ""
    policy_dir: str = ""
    policy_version: str = ""
    progress_file: str = ""
    guidance: float | None = None  # evaluate with this CFG beta instead of the checkpoint's


def _run_job(job: _Job, threads: int | None = None) -> list[dict[str, Any]]:
    import torch

    from recap.plugins import get_registry

    if threads is not None:
        torch.set_num_threads(threads)  # workers share the cores; oversubscribed BLAS threads thrash

    reg = get_registry()
    cfg = recap_config.loads(job.cfg_toml, LoopConfig, "toml", reg)
    backend = _backend(cfg, reg, evaluation=job.mode == "eval")
    common = {
        "task": cfg.task,
        "chunk_execute": cfg.collect.chunk_execute,
        "time_limit": cfg.collect.time_limit,
    }
    out: list[dict[str, Any]] = []
    try:
        if job.mode == "demos":
            actor = reg.build(cfg.demonstrator, backend)
            deployment = None
        else:
            actor, deployment = load_policy(job.policy_dir, reg)
            if job.guidance is not None:
                deployment = attrs.evolve(deployment, guidance=job.guidance)
        store = EpisodeStore.open(job.store) if job.store else None
        expert = None
        if job.expert_seeds:
            expert = reg.build(cfg.expert, backend)
        for seed in job.seeds:
            teleop = expert if seed in job.expert_seeds else None
            if job.mode == "eval":
                report = evaluate_rollouts(backend, actor, seeds=[seed], deployment=deployment, **common)
            else:
                _, report = collect(
                    backend,
                    actor,
                    store,
                    seeds=[seed],
                    teleoperator=teleop,
                    deployment=deployment,
                    policy_version=job.policy_version,
                    **common,
                )
            summary = attrs.asdict(report.episodes[0])
            out.append(summary)
            if job.progress_file:
                with open(job.progress_file, "a") as fh:
                    fh.write(json.dumps(summary) + "\n")
    finally:
        backend.close()
    return out


def _run_jobs(cfg: LoopConfig, reg: Any, jobs: list[_Job]) -> list[dict[str, Any]]:
    jobs = [j for j in jobs if j.seeds]
    if len(jobs) <= 1:
        return [s for j in jobs for s in _run_job(j)]
    threads = max(1, (os.cpu_count() or 1) // len(jobs))
    with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
        return [s for part in pool.map(_run_job, jobs, [threads] * len(jobs)) for s in part]


def _split(seeds: list[int], workers: int) -> list[tuple[int, ...]]:
    return [tuple(seeds[w::workers]) for w in range(max(1, min(workers, len(seeds))))]


def _stage_episodes(
    cfg: LoopConfig, reg: Any, stage_dir: Path, mode: str, seeds: list[int], expert: set[int], **job: Any
) -> RolloutReport:
    progress = stage_dir / PROGRESS
    done = [json.loads(line) for line in progress.read_text().splitlines()] if progress.exists() else []
    todo = [s for s in seeds if s not in {d["seed"] for d in done}]
    cfg_toml = recap_config.dumps(cfg, "toml", reg)
    jobs = [
        _Job(cfg_toml, mode, part, tuple(s for s in part if s in expert), progress_file=str(progress), **job)
        for part in _split(todo, cfg.collect.workers)
    ]
    _run_jobs(cfg, reg, jobs)
    done = [json.loads(line) for line in progress.read_text().splitlines()] if progress.exists() else []
    by_seed = {d["seed"]: EpisodeSummary(**d) for d in done}
    return RolloutReport.from_summaries(cfg.task, [by_seed[s] for s in seeds])


def collect_demos(cfg: LoopConfig, store: EpisodeStore, stage_dir: Path, reg: Any) -> dict[str, Any]:
    seeds = [cfg.seed + DEMO_SEEDS + i for i in range(cfg.collect.demos)]
    report = _stage_episodes(
        cfg, reg, stage_dir, "demos", seeds, set(), store=str(store.root), policy_version="demonstrator"
    )
    return {"label": "demonstrations", "episodes_metrics": metrics(report)}


def collect_autonomous(
    cfg: LoopConfig, store: EpisodeStore, policy_dir: Path, k: int, stage_dir: Path, reg: Any
):
    n = cfg.collect.episodes_per_iteration
    seeds = [cfg.seed + COLLECT_SEEDS * k + i for i in range(n)]
    share = cfg.collect.intervention_share if cfg.expert is not None else 0.0
    expert = {s for i, s in enumerate(seeds) if uses_expert(i, share)}
    report = _stage_episodes(
        cfg,
        reg,
        stage_dir,
        "collect",
        seeds,
        expert,
        store=str(store.root),
        policy_dir=str(policy_dir),
        policy_version=f"iteration-{k - 1}",
    )
    return {
        "label": f"collection {k} (policy {k - 1})",
        "episodes_metrics": metrics(report),
        "policy": str(policy_dir),
    }


def evaluate(
    cfg: LoopConfig, policy_dir: Path, stage_dir: Path, reg: Any, label: str, guidance: float | None = None
) -> dict[str, Any]:
    seeds = [cfg.seed + EVAL_SEEDS + i for i in range(cfg.collect.eval_episodes)]
    report = _stage_episodes(
        cfg, reg, stage_dir, "eval", seeds, set(), policy_dir=str(policy_dir), guidance=guidance
    )
    (stage_dir / "eval.json").write_text(json.dumps(report.to_dict(), indent=2))
    return {"label": label, "episodes_metrics": metrics(report), "policy": str(policy_dir)}

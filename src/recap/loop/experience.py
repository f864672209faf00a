"""The loop's robot time: demonstrations, autonomous collection (some episodes watched by the intervening
expert) and evaluation on fixed seeds, optionally spread over worker processes.

Collection is idempotent per seed: every episode is recorded with its stage and seed, and a resumed stage
runs only the seeds the store does not hold for it, so a crash between the store's commit and the stage's
``progress.jsonl`` line never records a seed twice. Evaluation records nothing in the store; its
``progress.jsonl`` alone says which seeds are done.

Evaluation renders the cameras the evaluated policy reads (``Policy.input_cameras``) on the evaluation
backend (``eval_backend``, else ``backend``), whatever cameras the config lists.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from recap import config as recap_config
from recap.config import BackendConfig
from recap.data import EpisodeMeta, EpisodeStore, keys
from recap.data.spec import RobotSpec
from recap.deploy import open_policy, serving
from recap.loop.config import LoopConfig
from recap.loop.run import DEMOS_ITERATION, LoopRun
from recap.protocols import RobotBackend
from recap.rollout.collect import (
    EpisodeSummary,
    RolloutReport,
    backend_for_task,
    check_serves,
    collect,
    evaluation_backend_config,
)
from recap.rollout.collect import evaluate as evaluate_rollouts
from recap.rollout.progress import EpisodeProgress
from recap.rollout.seeds import evaluation_seeds, training_seeds

PROGRESS = "progress.jsonl"


def backend_spec(cfg: LoopConfig, reg: Any) -> RobotSpec:
    """The spec of the robot the loop collects on (the store's spec)."""
    backend = _build_backend(cfg.backend, cfg, reg)
    try:
        return backend.spec
    finally:
        backend.close()


def _build_backend(config: BackendConfig, cfg: LoopConfig, reg: Any) -> RobotBackend:
    """The backend of ``config`` running the loop's task."""
    return reg.build(backend_for_task(config, cfg.task))


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
    stage: str
    seeds: tuple[int, ...]
    progress_file: str
    expert_seeds: tuple[int, ...] = ()
    store: str = ""
    iteration: int | None = None
    policy_dir: str = ""  # a policy checkpoint directory or a policy server URL
    policy_version: str = ""
    guidance: float | None = None  # evaluate with this CFG beta instead of the checkpoint's


def _actor_and_backend(job: _Job, cfg: LoopConfig, reg: Any) -> tuple[Any, Any, RobotBackend]:
    """(actor, deployment settings, backend) of a job; evaluation renders what the policy reads."""
    if job.mode == "demos":
        backend = _build_backend(cfg.backend, cfg, reg)
        demonstrator = cfg.demonstrator
        actor = reg.build(demonstrator, backend)
        return actor, None, backend
    policy, deployment, _ = open_policy(job.policy_dir, reg)
    if job.guidance is not None:
        deployment = attrs.evolve(deployment, guidance=job.guidance)
    if job.mode == "eval":
        backend = _build_backend(evaluation_backend_config(cfg.eval_backend or cfg.backend, policy), cfg, reg)
    else:
        backend = _build_backend(cfg.backend, cfg, reg)
    check_serves(backend, policy)
    return policy, deployment, backend


def _run_job(
    job: _Job,
    threads: int | None = None,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
    registry: Any = None,
) -> list[dict[str, Any]]:
    """Run a job's seeds; in a worker process (``registry`` None) with the registry plugins load there."""
    import torch

    from recap.plugins import get_registry

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_seeds(job, on_episode, registry if registry is not None else get_registry())
    finally:
        torch.set_num_threads(before)  # in this process, training continues on all its threads


def _run_seeds(
    job: _Job, on_episode: Callable[[dict[str, Any]], None] | None, reg: Any
) -> list[dict[str, Any]]:
    cfg = recap_config.loads(job.cfg_toml, LoopConfig, "toml", reg)
    actor, deployment, backend = _actor_and_backend(job, cfg, reg)
    common = {
        "task": cfg.task,
        "chunk_execute": cfg.collect.chunk_execute,
        "time_limit": cfg.collect.time_limit,
        "deployment": deployment,
    }
    out: list[dict[str, Any]] = []
    try:
        store = EpisodeStore.open(job.store) if job.store else None
        expert = None
        if job.expert_seeds:
            expert = reg.build(cfg.expert, backend)
        for seed in job.seeds:
            if job.mode == "eval":
                report = evaluate_rollouts(backend, actor, seeds=[seed], **common)
            else:
                _, report = collect(
                    backend,
                    actor,
                    store,
                    seeds=[seed],
                    teleoperator=expert if seed in job.expert_seeds else None,
                    policy_version=job.policy_version,
                    iteration=job.iteration,
                    stage=job.stage,
                    **common,
                )
            summary = attrs.asdict(report.episodes[0])
            out.append(summary)
            _append_progress(Path(job.progress_file), summary)
            if on_episode is not None:
                on_episode(summary)
    finally:
        backend.close()
    return out


def _append_progress(path: Path, summary: dict[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(summary) + "\n")


def _read_progress(path: Path) -> dict[int, dict[str, Any]]:
    """Seed -> episode summary of the finished episodes (a line cut by a crash is ignored)."""
    done: dict[int, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                summary = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[summary["seed"]] = summary
    return done


def _recorded_summary(store: EpisodeStore, meta: EpisodeMeta) -> dict[str, Any]:
    """The summary of an episode the store committed but the stage's progress file missed."""
    interventions = int(np.asarray(store.arrays(meta.episode_id)[keys.IS_INTERVENTION]).sum())
    summary = EpisodeSummary(
        seed=meta.seed,
        success=meta.success,
        length=meta.length,
        duration_s=meta.duration_s,
        intervention_steps=interventions,
        source=meta.source,
        episode_id=meta.episode_id,
    )
    return attrs.asdict(summary)


def _done_seeds(stage: str, progress: Path, store: EpisodeStore | None) -> dict[int, dict[str, Any]]:
    """Seed -> summary of every episode of ``stage`` already run: the store is the record of collected
    episodes (the progress file may miss the last one), the progress file that of evaluations."""
    done = _read_progress(progress)
    if store is not None:
        for meta in store.episodes(stage=stage):
            if meta.seed is not None and meta.seed not in done:
                done[meta.seed] = _recorded_summary(store, meta)
                _append_progress(progress, done[meta.seed])
    return done


def _rollout_threads(jobs: int, deterministic: bool) -> int | None:
    """Torch threads of each rollout job: one when deterministic (an episode then samples the same numbers
    whichever process runs it and however many run); else workers share the cores (oversubscribed BLAS
    threads thrash) and a single job in this process keeps its threads."""
    if deterministic:
        return 1
    return None if jobs <= 1 else max(1, (os.cpu_count() or 1) // jobs)


def _run_jobs(jobs: list[_Job], shown: EpisodeProgress, registry: Any, deterministic: bool) -> None:
    jobs = [j for j in jobs if j.seeds]
    report = lambda summary: shown.update(summary["success"])  # noqa: E731
    threads = _rollout_threads(len(jobs), deterministic)
    if len(jobs) <= 1:
        for job in jobs:
            _run_job(job, threads, on_episode=report, registry=registry)
        return
    progress = Path(jobs[0].progress_file)
    seen = len(_read_progress(progress))
    with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_run_job, job, threads) for job in jobs]
        pending = set(futures)
        while pending:  # workers append to the progress file; show each new line as it lands
            _, pending = wait(pending, timeout=1.0)
            finished = list(_read_progress(progress).values())
            for summary in finished[seen:]:
                report(summary)
            seen = max(seen, len(finished))
        for future in futures:
            future.result()  # re-raise a worker's error


def _split(seeds: list[int], workers: int) -> list[tuple[int, ...]]:
    return [tuple(seeds[w::workers]) for w in range(max(1, min(workers, len(seeds))))]


def _stage_episodes(
    run: LoopRun,
    stage_dir: Path,
    *,
    mode: str,
    seeds: list[int],
    expert: frozenset[int] = frozenset(),
    store: EpisodeStore | None = None,
    **job: Any,
) -> RolloutReport:
    """Run every seed of the stage not run before; report all of them."""
    cfg, stage = run.cfg, stage_dir.name
    progress = stage_dir / PROGRESS
    done = _done_seeds(stage, progress, store)
    todo = [s for s in seeds if s not in done]
    cfg_toml = recap_config.dumps(cfg, "toml", run.registry)
    jobs = [
        _Job(
            cfg_toml,
            mode,
            stage,
            part,
            str(progress),
            tuple(s for s in part if s in expert),
            store=str(store.root) if store is not None else "",
            **job,
        )
        for part in _split(todo, cfg.collect.workers)
    ]
    before = [done[s] for s in seeds if s in done]
    shown = EpisodeProgress(
        len(seeds),
        stage,
        done=len(before),
        successes=sum(bool(d["success"]) for d in before),
        enabled=run.progress,
    )
    try:
        _run_jobs(jobs, shown, run.registry, cfg.deterministic)
    finally:
        shown.close()
    by_seed = _read_progress(progress)
    return RolloutReport.from_summaries(cfg.task, [EpisodeSummary(**by_seed[s]) for s in seeds])


def collect_demonstrations(run: LoopRun, stage_dir: Path) -> dict[str, Any]:
    """D_demo: ``collect.demos`` demonstrations of the task, recorded as iteration 0."""
    cfg = run.cfg
    seeds = training_seeds(cfg.seed, DEMOS_ITERATION, cfg.collect.demos)
    report = _stage_episodes(
        run,
        stage_dir,
        mode="demos",
        seeds=seeds,
        store=run.store,
        iteration=DEMOS_ITERATION,
        policy_version="demonstrator",
    )
    return {"label": "demonstrations", "episodes_metrics": metrics(report)}


def collect_autonomous(run: LoopRun, stage_dir: Path, *, policy: Path, iteration: int) -> dict[str, Any]:
    """Collection ``iteration``: episodes of ``policy`` (pi^(iteration-1)), a share watched by the expert."""
    cfg = run.cfg
    seeds = training_seeds(cfg.seed, iteration, cfg.collect.episodes_per_iteration)
    share = cfg.collect.intervention_share if cfg.expert is not None else 0.0
    with contextlib.ExitStack() as stack:
        source = str(policy)
        if cfg.collect.serve:  # the robot's path: the workers reach the policy through a server
            source = stack.enter_context(serving(policy, registry=run.registry))
        report = _stage_episodes(
            run,
            stage_dir,
            mode="collect",
            seeds=seeds,
            expert=frozenset(s for i, s in enumerate(seeds) if uses_expert(i, share)),
            store=run.store,
            iteration=iteration,
            policy_dir=source,
            policy_version=f"iteration-{iteration - 1}",
        )
    return {
        "label": f"collection {iteration} (policy {iteration - 1})",
        "episodes_metrics": metrics(report),
        "policy": str(policy),
        **({"served_at": source} if cfg.collect.serve else {}),
    }


def evaluate_policy(
    run: LoopRun, stage_dir: Path, *, policy: Path, label: str, guidance: float | None = None
) -> dict[str, Any]:
    """``collect.eval_episodes`` episodes of ``policy`` on the evaluation seeds (the same for every run seed,
    disjoint from every training seed); nothing recorded."""
    cfg = run.cfg
    seeds = evaluation_seeds(cfg.collect.eval_episodes)
    report = _stage_episodes(
        run, stage_dir, mode="eval", seeds=seeds, policy_dir=str(policy), guidance=guidance
    )
    (stage_dir / "eval.json").write_text(json.dumps(report.to_dict(), indent=2))
    return {"label": label, "episodes_metrics": metrics(report), "policy": str(policy)}

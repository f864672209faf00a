"""Many episodes: ``collect`` records them into an EpisodeStore, ``evaluate`` reports the metrics.

Metrics (docs/method.md): success rate with a Wilson 95% interval; throughput = successful episodes per
hour of robot time, the sum of all episode durations (failures at their full length), with a bootstrap 95%
interval; mean time to success (mean duration of the successful episodes); mean duration of all episodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import torch

from recap.config import BackendConfig
from recap.data import EpisodeMeta, EpisodeStore
from recap.errors import ConfigError
from recap.protocols import DeploymentSettings, Policy, RobotBackend, Teleoperator
from recap.rl import mean_time_to_success, success_rate, throughput_ci
from recap.rollout.chunking import Execution
from recap.rollout.progress import EpisodeProgress
from recap.rollout.runner import EpisodeRecord, run_episode


@attrs.frozen
class EpisodeSummary:
    seed: int | None
    success: bool | None
    length: int
    duration_s: float
    intervention_steps: int
    source: str
    episode_id: str = ""
    max_stage: int | None = None  # furthest task stage reached (tells late failures from early ones)
    held_ticks: int = 0  # ticks without a committed policy action (asynchronous waits, a lost policy server)
    inference_delays: tuple[int, ...] = attrs.field(default=(), converter=tuple)  # control ticks, per chunk


@attrs.frozen
class RolloutReport:
    """What a batch of episodes achieved (unlabelled episodes are left out of the rates)."""

    task: str
    episodes: tuple[EpisodeSummary, ...]
    success_rate: float
    success_rate_ci: tuple[float, float]
    throughput_per_hour: float
    throughput_ci: tuple[float, float]
    mean_time_to_success_s: float
    mean_duration_s: float
    interventions: int

    @classmethod
    def from_summaries(cls, task: str, episodes: Sequence[EpisodeSummary]) -> RolloutReport:
        labelled = [e for e in episodes if e.success is not None]
        nan = float("nan")
        if not labelled:
            return cls(task, tuple(episodes), nan, (nan, nan), nan, (nan, nan), nan, nan, 0)
        ok = torch.tensor([bool(e.success) for e in labelled])
        dur = torch.tensor([e.duration_s for e in labelled], dtype=torch.float64)
        rate, lo, hi = success_rate(ok)
        tput, tlo, thi = throughput_ci(ok, dur)
        return cls(
            task=task,
            episodes=tuple(episodes),
            success_rate=rate,
            success_rate_ci=(lo, hi),
            throughput_per_hour=tput,
            throughput_ci=(tlo, thi),
            mean_time_to_success_s=mean_time_to_success(ok, dur),
            mean_duration_s=float(dur.mean()),
            interventions=sum(e.intervention_steps > 0 for e in episodes),
        )

    def to_dict(self) -> dict[str, Any]:
        def clean(x: Any) -> Any:
            return None if isinstance(x, float) and math.isnan(x) else x

        data = attrs.asdict(self, recurse=True)
        data["episodes"] = [attrs.asdict(e) for e in self.episodes]
        return {
            k: (clean(v) if not isinstance(v, (list, tuple)) else [clean(x) for x in v])
            for k, v in data.items()
        }

    def lines(self) -> list[str]:
        n = len(self.episodes)
        return [
            f"task {self.task}: {n} episodes, {self.interventions} with interventions",
            f"success rate      {self.success_rate:.3f}  (95% CI {self.success_rate_ci[0]:.3f}-{self.success_rate_ci[1]:.3f})",
            f"throughput        {self.throughput_per_hour:.1f} successes/hour  "
            f"(95% CI {self.throughput_ci[0]:.1f}-{self.throughput_ci[1]:.1f})",
            f"time to success   {self.mean_time_to_success_s:.2f} s (mean over successes)",
            f"mean duration     {self.mean_duration_s:.2f} s",
        ]


def _summary(record: EpisodeRecord, episode_id: str = "") -> EpisodeSummary:
    return EpisodeSummary(
        record.seed,
        record.success,
        record.length,
        record.duration_s,
        record.intervention_steps,
        record.source,
        episode_id,
        record.max_stage,
        0 if record.execution is None else len(record.execution.held_ticks),
        () if record.execution is None else tuple(record.execution.delays_ticks),
    )


def _episodes(
    backend: RobotBackend,
    actor: Any,
    *,
    task: str,
    seeds: Iterable[int],
    progress: bool,
    on_record: Callable[[EpisodeRecord], str],
    **run_kwargs: Any,
) -> RolloutReport:
    seeds = list(seeds)
    if not seeds:
        raise ConfigError("no seeds given: pass at least one episode seed")
    shown = EpisodeProgress(len(seeds), task, enabled=progress)
    summaries = []
    try:
        for seed in seeds:
            record = run_episode(backend, actor, task=task, seed=seed, **run_kwargs)
            summaries.append(_summary(record, on_record(record)))
            shown.update(record.success)
    finally:
        shown.close()
    return RolloutReport.from_summaries(task, summaries)


def collect(
    backend: RobotBackend,
    actor: Any,
    store: EpisodeStore,
    *,
    task: str,
    seeds: Iterable[int],
    chunk_execute: int | None = None,
    time_limit: int | None = None,
    teleoperator: Teleoperator | None = None,
    deployment: DeploymentSettings | None = None,
    source: str | None = None,
    policy_version: str = "",
    robot_id: str = "",
    iteration: int | None = None,
    stage: str | None = None,
    progress: bool = False,
    execution: Execution | None = None,
) -> tuple[list[EpisodeMeta], RolloutReport]:
    """Run one episode per seed and add each to ``store`` (atomically, as it finishes).

    ``source`` overrides the recorded source (default: "demonstration" for a demonstrator, "autonomous" for a
    policy, "correction" for episodes in which the operator intervened). ``iteration`` / ``stage`` are the
    loop provenance recorded with each episode, together with its seed.
    """
    metas: list[EpisodeMeta] = []

    def add(record: EpisodeRecord) -> str:
        meta = store.add(
            record.steps,
            task=task,
            source=source or record.source,
            success=record.success,
            policy_version=policy_version,
            robot_id=robot_id,
            subtasks=record.subtasks,
            iteration=iteration,
            stage=stage,
            seed=record.seed,
        )
        metas.append(meta)
        return meta.episode_id

    report = _episodes(
        backend,
        actor,
        task=task,
        seeds=seeds,
        progress=progress,
        on_record=add,
        chunk_execute=chunk_execute,
        time_limit=time_limit,
        teleoperator=teleoperator,
        deployment=deployment,
        execution=execution,
    )
    return metas, report


def evaluate(
    backend: RobotBackend,
    actor: Any,
    *,
    task: str,
    seeds: Iterable[int],
    chunk_execute: int | None = None,
    time_limit: int | None = None,
    teleoperator: Teleoperator | None = None,
    deployment: DeploymentSettings | None = None,
    progress: bool = False,
    execution: Execution | None = None,
) -> RolloutReport:
    """Run one episode per seed (nothing recorded) and report success rate, throughput and durations.

    ``execution`` says how a policy's chunks run (sync / naive async / real-time chunking, delay).
    """
    return _episodes(
        backend,
        actor,
        task=task,
        seeds=seeds,
        progress=progress,
        on_record=lambda record: "",
        chunk_execute=chunk_execute,
        time_limit=time_limit,
        teleoperator=teleoperator,
        deployment=deployment,
        record_images=False,
        execution=execution,
    )


def backend_for_task(config: BackendConfig, task: str) -> BackendConfig:
    """``config`` set up for ``task`` when the backend has a ``task`` setting (one simulator per task), so the
    task given to a command or a loop is the task the robot runs; any other backend is used as configured."""
    if "task" in attrs.fields_dict(type(config)):
        return attrs.evolve(config, task=task)
    return config


def evaluation_backend_config(config: BackendConfig, policy: Policy) -> BackendConfig:
    """``config`` rendering exactly the cameras ``policy`` reads.

    Evaluation records nothing, so a camera the policy does not read is rendered for nobody (a state-only
    policy runs about 4x faster without rendering), and one it reads but the backend lacks would stop the
    first episode. Backends whose ``cameras`` setting is a list of camera names are adjusted; any other
    backend is used as configured and checked by :func:`check_serves`.
    """
    cameras = getattr(config, "cameras", None)
    if isinstance(cameras, (tuple, list)) and all(isinstance(c, str) for c in cameras):
        return attrs.evolve(config, cameras=tuple(policy.input_cameras))
    return config


def check_serves(backend: RobotBackend, policy: Policy) -> None:
    """Refuse a backend that lacks a camera the policy reads, before any episode starts."""
    missing = [c for c in policy.input_cameras if c not in backend.spec.camera_names]
    if missing:
        raise ConfigError(
            f"the policy reads cameras {missing}, but the backend provides {list(backend.spec.camera_names)}; "
            "configure the backend with those cameras"
        )

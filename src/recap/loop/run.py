"""``LoopRun``: what every stage of the loop shares (its config, registry, episode store and run directory),
and the data each stage trains on, chosen by the provenance recorded with every episode.

Stage functions take the run, their stage directory and keyword arguments, and return a JSON-able summary:
``run.stage("value-1", train_value_stage, training=..., episodes=..., init_from=...)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from recap import config as recap_config
from recap.data import EpisodeMeta, EpisodeStore
from recap.loop.config import LoopConfig
from recap.loop.stages import StageRunner

STORE = "store"
DEMOS_ITERATION = 0  # demonstrations are the data of iteration 0


@attrs.frozen
class StageOutput:
    """A finished stage: its directory (outputs are found from it, so a moved run directory resumes) and
    its summary."""

    dir: Path
    summary: dict[str, Any]


@attrs.define
class LoopRun:
    """One run of the loop. ``progress``: show episodes done, successes and time left while robot stages run."""

    cfg: LoopConfig
    registry: Any
    store: EpisodeStore
    runner: StageRunner
    log: Callable[[str], None]
    progress: bool = True
    summaries: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    @classmethod
    def start(
        cls, cfg: LoopConfig, registry: Any, log: Callable[[str], None], *, progress: bool = True
    ) -> LoopRun:
        """Open (or create) the run directory ``cfg.out`` and its store; record the resolved config."""
        from recap.loop.experience import backend_spec

        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        recap_config.dump(cfg, out / "config.toml", registry)
        store_dir = out / STORE
        if store_dir.exists():
            store = EpisodeStore.open(store_dir)
        else:
            store = EpisodeStore.create(store_dir, backend_spec(cfg, registry))
        return cls(cfg, registry, store, StageRunner(out, log), log, progress)

    @property
    def run_dir(self) -> Path:
        return self.runner.run_dir

    def stage(self, name: str, fn: Callable[..., dict[str, Any]], **kwargs: Any) -> StageOutput:
        """Run ``fn(self, stage_dir, **kwargs)`` as stage ``name`` unless it completed earlier."""
        summary = self.runner.run(name, lambda stage_dir: fn(self, stage_dir, **kwargs))
        self.summaries[name] = summary
        return StageOutput(self.runner.dir(name), summary)

    # -- the data of each stage, by provenance ---------------------------------------------------------------

    def demonstrations(self) -> list[EpisodeMeta]:
        """D_demo: the demonstrations the loop recorded (every task), for pre-training."""
        return by_provenance(self.store.episodes(iteration=DEMOS_ITERATION))

    def successful_demonstrations(self) -> list[EpisodeMeta]:
        """The target task's successful demonstrations, for demonstration fine-tuning."""
        return by_provenance(self.store.episodes(task=self.cfg.task, iteration=DEMOS_ITERATION, success=True))

    def experience_through(self, iteration: int) -> list[EpisodeMeta]:
        """D after collection ``iteration``: the task's demonstrations and collections 1..``iteration``."""
        return by_provenance(
            m
            for m in self.store.episodes(task=self.cfg.task)
            if m.iteration is not None and m.iteration <= iteration
        )


@contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Within the block, torch kernels give the same bits on every run when ``enabled`` (CUDA's need a fixed
    cuBLAS workspace); an op with no deterministic kernel warns rather than stopping the run. The previous
    setting is restored after it."""
    import torch

    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def by_provenance(episodes: Iterable[EpisodeMeta]) -> list[EpisodeMeta]:
    """Episodes ordered by (iteration, stage, seed), not by id: ids order episodes by the time they were
    recorded, which depends on how collection workers interleave; training samples by position in this list."""
    return sorted(episodes, key=lambda m: (m.iteration or 0, m.stage or "", m.seed or 0, m.episode_id))

"""Evaluation seeds never meet demonstration or collection seeds, whatever the run seed and sizes; configs
whose training seeds would leave their block are refused; the loop's stages draw their seeds from these
ranges (the demonstration and collection stages are run with a recording stand-in for the robot)."""

from __future__ import annotations

import itertools
from pathlib import Path

import attrs
import pytest

from recap.errors import ConfigError
from recap.loop import experience
from recap.rollout.seeds import (
    EVAL_SEED_BASE,
    MAX_ITERATIONS,
    MAX_RUN_SEED,
    SEED_LIMIT,
    STAGE_STRIDE,
    check_training_plan,
    check_training_seeds,
    evaluation_seeds,
    is_evaluation_seed,
    training_seeds,
)

RUN_SEEDS = (0, 1, 2, 17, MAX_RUN_SEED - 1, MAX_RUN_SEED)
SIZES = (1, 60, 960, STAGE_STRIDE)


def _run_training_seeds(run_seed: int, iterations: int, episodes: int) -> set[int]:
    return {s for k in range(iterations + 1) for s in training_seeds(run_seed, k, episodes)}


def test_training_seeds_of_any_run_never_meet_evaluation_seeds():
    evaluation = set(evaluation_seeds(1000))
    for run_seed, episodes in itertools.product(RUN_SEEDS, SIZES):
        seeds = _run_training_seeds(run_seed, MAX_ITERATIONS, episodes)
        assert len(seeds) == (MAX_ITERATIONS + 1) * episodes  # no two stages share a seed
        assert not seeds & evaluation
        assert all(0 <= s < EVAL_SEED_BASE and not is_evaluation_seed(s) for s in seeds)


def test_runs_with_different_seeds_use_disjoint_training_seeds_and_the_same_evaluation_seeds():
    blocks = [_run_training_seeds(r, 3, 500) for r in RUN_SEEDS]
    for a, b in itertools.combinations(blocks, 2):
        assert not a & b
    assert evaluation_seeds(5) == [EVAL_SEED_BASE + i for i in range(5)]
    assert evaluation_seeds(3, first=2) == evaluation_seeds(5)[2:]
    assert all(is_evaluation_seed(s) for s in evaluation_seeds(10, first=SEED_LIMIT - EVAL_SEED_BASE - 10))


@pytest.mark.parametrize(
    ("run_seed", "iterations", "episodes", "fix"),
    [
        (-1, 1, 10, "choose a seed"),
        (MAX_RUN_SEED + 1, 1, 10, "choose a seed"),
        (0, MAX_ITERATIONS + 1, 10, "at most"),
        (0, 1, STAGE_STRIDE + 1, "fewer demonstrations"),
    ],
)
def test_plans_that_would_leave_their_block_are_refused(run_seed, iterations, episodes, fix):
    with pytest.raises(ConfigError, match=fix):
        check_training_plan(run_seed, iterations, episodes)


def test_recorded_and_evaluated_ranges_are_checked():
    check_training_seeds(EVAL_SEED_BASE - 5, 5)
    with pytest.raises(ConfigError, match="reach the evaluation seeds"):
        check_training_seeds(EVAL_SEED_BASE - 5, 6)
    with pytest.raises(ConfigError, match="evaluation seed range"):
        evaluation_seeds(10, first=SEED_LIMIT - EVAL_SEED_BASE - 9)
    with pytest.raises(ConfigError, match="evaluation seed range"):
        evaluation_seeds(3, first=-1)


@attrs.frozen
class _Collect:
    demos: int
    episodes_per_iteration: int
    eval_episodes: int
    intervention_share: float = 0.0
    serve: bool = False


@attrs.frozen
class _Cfg:
    seed: int
    collect: _Collect
    expert: None = None


@attrs.define
class _Run:
    cfg: _Cfg
    store: object = None


@pytest.mark.parametrize(
    ("run_seed", "demos", "per_iteration"), [(0, 60, 60), (3, 7, 200), (MAX_RUN_SEED, 1, 5)]
)
def test_loop_stages_collect_on_training_seeds_and_evaluate_on_shared_evaluation_seeds(
    monkeypatch, tmp_path, run_seed, demos, per_iteration
):
    asked: dict[str, list[int]] = {}

    def record(run, stage_dir, *, mode, seeds, **_):
        asked[stage_dir.name] = list(seeds)
        return experience.RolloutReport.from_summaries("t", [])

    monkeypatch.setattr(experience, "_stage_episodes", record)
    monkeypatch.setattr(experience, "metrics", lambda report: {})
    run = _Run(_Cfg(run_seed, _Collect(demos, per_iteration, eval_episodes=9)))
    experience.collect_demonstrations(run, Path("demos"))
    for k in (1, 2, 3):
        experience.collect_autonomous(run, Path(f"collect-{k}"), policy=Path("p"), iteration=k)
    stage = tmp_path / "eval-1"
    stage.mkdir()
    experience.evaluate_policy(run, stage, policy=Path("p"), label="x")

    training = [s for name, seeds in asked.items() if name != "eval-1" for s in seeds]
    assert len(training) == len(set(training)) == demos + 3 * per_iteration
    assert asked["eval-1"] == evaluation_seeds(9)  # independent of the run seed
    assert not set(training) & set(asked["eval-1"])
    assert asked["demos"] == training_seeds(run_seed, 0, demos)

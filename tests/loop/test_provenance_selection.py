"""Each stage of the loop reads the episodes its provenance selects, whatever else the store holds."""

from __future__ import annotations

import types

import numpy as np

from recap.data import EpisodeStore
from recap.data.spec import RobotSpec
from recap.loop.run import LoopRun
from recap.loop.stages import StageRunner

SPEC = RobotSpec(cameras=(), state_dim=2, action_dim=2, joint_names=("a", "b"))


def _add(store: EpisodeStore, *, task="pick", source="autonomous", success=True, **provenance) -> None:
    steps = {
        "observation.state": np.zeros((3, 2), np.float32),
        "action": np.zeros((3, 2), np.float32),
        "is_intervention": np.zeros(3, bool),
    }
    store.add(steps, task=task, source=source, success=success, **provenance)


def _run(tmp_path) -> LoopRun:
    store = EpisodeStore.create(tmp_path / "store", SPEC)
    demo = {"source": "demonstration", "iteration": 0, "stage": "demos"}
    _add(store, **demo, seed=0)
    _add(store, **demo, seed=1, success=False)
    _add(store, **demo, seed=2, task="place")
    _add(store, iteration=1, stage="collect-1", seed=100)
    _add(store, iteration=2, stage="collect-2", seed=200)  # a later iteration, already in the store
    _add(store, source="demonstration", seed=7)  # imported from elsewhere: no loop provenance
    _add(store, task="place", iteration=1, stage="collect-1", seed=101)
    cfg = types.SimpleNamespace(task="pick")  # the selection reads only the target task
    return LoopRun(cfg, None, store, StageRunner(tmp_path / "run"), log=lambda line: None)


def test_pretraining_reads_the_demonstrations_of_every_task(tmp_path):
    assert sorted(m.seed for m in _run(tmp_path).demonstrations()) == [0, 1, 2]


def test_sft_reads_the_task_s_successful_demonstrations(tmp_path):
    assert [m.seed for m in _run(tmp_path).successful_demonstrations()] == [0]


def test_iteration_k_reads_the_task_s_data_up_to_k(tmp_path):
    run = _run(tmp_path)
    assert sorted(m.seed for m in run.experience_through(0)) == [0, 1]
    assert sorted(m.seed for m in run.experience_through(1)) == [0, 1, 100]
    assert sorted(m.seed for m in run.experience_through(2)) == [0, 1, 100, 200]


def test_stages_read_episodes_in_provenance_order_not_recording_order(tmp_path):
    """Two collection workers finish episodes in any order; ids follow that order, training must not."""
    store = EpisodeStore.create(tmp_path / "store", SPEC)
    # ids sort like recording times; recorded out of seed order, as interleaved workers do
    for i, seed in enumerate((100_002, 100_000, 100_001)):
        _add(store, iteration=1, stage="collect-1", seed=seed, episode_id=f"a{i}")
    for i, seed in enumerate((1, 0)):
        _add(store, source="demonstration", iteration=0, stage="demos", seed=seed, episode_id=f"b{i}")
    run = LoopRun(types.SimpleNamespace(task="pick"), None, store, StageRunner(tmp_path / "run"), log=print)
    assert [m.seed for m in store.episodes()] == [100_002, 100_000, 100_001, 1, 0]  # the store: id order
    assert [m.seed for m in run.experience_through(1)] == [0, 1, 100_000, 100_001, 100_002]
    assert [m.seed for m in run.demonstrations()] == [0, 1]

"""Collection is idempotent per seed: a run killed (SIGKILL) after the store committed an episode but before the
stage recorded its progress, then resumed, holds every seed of the stage exactly once.

The kill is placed, not timed: a child process wraps ``EpisodeStore.add`` so that it kills its own process
right after the N-th commit returns, which is the gap between the commit and the progress line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections import Counter

import attrs
import pytest

from recap import config as recap_config
from recap.loop.experience import PROGRESS, collect_demonstrations
from recap.loop.run import LoopRun
from recap.plugins import load_registry

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("recap_bimanual") is None, reason="needs the simulated robot plugin"
)

DEMOS = 4
KILL_AFTER_COMMIT = 2

CHILD = """
import os, signal, sys
from recap import config as recap_config
from recap.data.store import EpisodeStore
from recap.loop.config import LoopConfig
from recap.loop.experience import collect_demonstrations
from recap.loop.run import LoopRun
from recap.plugins import load_registry

commit = EpisodeStore.add
commits = []

def commit_then_die(self, *args, **kwargs):
    meta = commit(self, *args, **kwargs)
    commits.append(meta)
    if len(commits) == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
    return meta

EpisodeStore.add = commit_then_die
reg = load_registry(entrypoints=True)
cfg = recap_config.load(sys.argv[1], LoopConfig, reg)
LoopRun.start(cfg, reg, log=print, progress=False).stage("demos", collect_demonstrations)
"""


def _config(tmp_path, reg):
    cfg = recap_config.resolve_preset("smoke", reg)
    return attrs.evolve(
        cfg,
        out=tmp_path / "run",
        backend=attrs.evolve(cfg.backend, cameras=(), time_limit=30),
        collect=attrs.evolve(cfg.collect, demos=DEMOS, time_limit=30, workers=1),
    )


def test_a_kill_between_commit_and_progress_does_not_collect_the_seed_twice(tmp_path):
    reg = load_registry(entrypoints=True)
    cfg = _config(tmp_path, reg)
    recap_config.dump(cfg, tmp_path / "loop.toml", reg)
    env = {k: v for k, v in os.environ.items() if k != "RECAP_NO_ENTRYPOINTS"}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "loop.toml"), str(KILL_AFTER_COMMIT)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    progress = tmp_path / "run" / "stages" / "demos" / PROGRESS
    # the kill landed in the gap: two episodes committed, only the first one's progress written
    assert len(progress.read_text().splitlines()) == KILL_AFTER_COMMIT - 1

    run = LoopRun.start(cfg, reg, log=lambda line: None, progress=False)
    assert len(run.store.episodes()) == KILL_AFTER_COMMIT
    summary = run.stage("demos", collect_demonstrations).summary

    metas = run.store.episodes()
    seeds = Counter(m.seed for m in metas)
    assert seeds == Counter(range(cfg.seed, cfg.seed + DEMOS))  # each seed once, none lost
    assert {(m.iteration, m.stage, m.source) for m in metas} == {(0, "demos", "demonstration")}
    assert summary["episodes_metrics"]["episodes"] == DEMOS
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    assert sorted(d["seed"] for d in lines) == list(range(DEMOS))
    by_seed = {d["seed"]: d for d in lines}
    assert {by_seed[m.seed]["episode_id"] for m in metas} == {m.episode_id for m in metas}


@pytest.mark.slow  # two spawned worker processes import torch and the simulator
def test_two_workers_record_every_seed_once_and_report_each_episode(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RECAP_NO_ENTRYPOINTS", raising=False)  # spawned workers load the installed plugins
    reg = load_registry(entrypoints=True)
    cfg = _config(tmp_path, reg)
    cfg = attrs.evolve(cfg, collect=attrs.evolve(cfg.collect, workers=2))
    run = LoopRun.start(cfg, reg, log=lambda line: None)
    summary = run.stage("demos", collect_demonstrations).summary
    assert sorted(m.seed for m in run.store.episodes()) == list(range(DEMOS))
    assert summary["episodes_metrics"]["episodes"] == DEMOS
    assert f"[demos] {DEMOS}/{DEMOS} episodes" in capsys.readouterr().err  # the parent saw every worker's

"""The loop's collection through a policy server on loopback (``collect.serve``)."""

from __future__ import annotations

import importlib.util

import attrs
import pytest

from recap import config as recap_config
from recap.loop.experience import backend_spec, collect_autonomous
from recap.loop.run import LoopRun
from recap.plugins import load_registry
from recap.protocols import DeploymentSettings
from recap.train.checkpoint import save_policy

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("recap_bimanual") is None, reason="needs the simulated robot plugin"
)


def test_collection_runs_through_a_loopback_server(tmp_path):
    reg = load_registry(entrypoints=True)
    cfg = recap_config.resolve_preset("smoke", reg)
    cfg = attrs.evolve(
        cfg,
        out=tmp_path / "run",
        backend=attrs.evolve(cfg.backend, cameras=(), time_limit=30),
        collect=attrs.evolve(cfg.collect, episodes_per_iteration=2, time_limit=30, workers=1, serve=True),
        expert=None,
    )
    spec = backend_spec(cfg, reg)
    policy = reg.build(cfg.policy, spec, None)
    checkpoint = save_policy(
        tmp_path / "pi0", policy, cfg.policy, spec, None, DeploymentSettings(True, 1.0), reg
    )
    run = LoopRun.start(cfg, reg, log=lambda line: None, progress=False)
    summary = run.stage("collect-1", collect_autonomous, policy=checkpoint, iteration=1).summary
    assert summary["served_at"].startswith("ws://127.0.0.1:")
    metas = run.store.episodes()
    assert len(metas) == 2 and {(m.iteration, m.source) for m in metas} == {(1, "autonomous")}
    assert {m.policy_version for m in metas} == {"iteration-0"}

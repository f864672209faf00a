"""The pi0.6-style VLA through the whole loop (tiny preset, one iteration): it reads the camera, so the
evaluation backend must render it, and every stage trains on the episodes its provenance selects."""

from __future__ import annotations

import importlib.util

import pytest

from recap import config as recap_config
from recap.loop.recap_loop import run_loop
from recap.loop.run import LoopRun
from recap.testing.registry import installed_registry
from recap.testing.tiny_loop import tiny_loop

NEEDED = ("recap_bimanual", "recap_pi06", "recap_distributional_value", "recap_advantage_conditioning")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in NEEDED),
        reason="needs the sim, pi06 and loop plugins",
    ),
]


def _tiny_pi06_loop(tmp_path, reg):
    from recap_pi06.config import PI06_TINY

    cfg = recap_config.resolve_preset("smoke", reg)
    return tiny_loop(cfg, tmp_path / "run", PI06_TINY, PI06_TINY.chunk_size)


@pytest.fixture
def reg():
    """The installed plugins, also as the process-wide registry (checkpoints name configs through it)."""
    with installed_registry() as registry:
        yield registry


def test_pi06_runs_through_the_loop_and_is_evaluated_with_its_camera(tmp_path, reg):
    cfg = _tiny_pi06_loop(tmp_path, reg)
    assert cfg.backend.cameras == ("cam_high",) and cfg.eval_backend is None

    result = run_loop(cfg, reg, log=lambda line: None)

    stages = ["demos", "value-pretrain", "label-pretrain", "policy-pretrain", "sft", "eval-0"]
    stages += ["collect-1", "value-1", "label-1", "policy-1", "eval-1"]
    assert list(result.summaries) == stages
    for name in ("eval-0", "eval-1"):
        assert result.summaries[name]["episodes_metrics"]["episodes"] == 2, name
    store = LoopRun.start(cfg, reg, log=lambda line: None).store
    provenance = sorted((m.iteration, m.stage, m.seed) for m in store.episodes())
    assert provenance == [
        (0, "demos", 0),
        (0, "demos", 1),
        (1, "collect-1", 100_000),
        (1, "collect-1", 100_001),
    ]
    assert result.summaries["value-pretrain"]["episodes"] == 2  # the demonstrations
    assert result.summaries["value-1"]["episodes"] == 4  # demonstrations and the first collection
    assert result.summaries["policy-1"]["episodes"] == 4

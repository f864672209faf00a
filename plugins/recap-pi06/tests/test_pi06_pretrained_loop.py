"""A tiny imported pi0.5 (openpi key layout) through the whole Recap loop: ``policy_init`` makes the pre-training
stage fine-tune the imported weights, and every stage after it runs on them."""

from __future__ import annotations

import importlib.util

import pytest
import safetensors.torch
from test_pi06_import_pi05 import TINY_PI05, openpi_pi05_state

from recap import config as recap_config
from recap.loop.experience import backend_spec
from recap.loop.recap_loop import run_loop
from recap.protocols import DeploymentSettings
from recap.testing.registry import installed_registry
from recap.testing.tiny_loop import tiny_loop
from recap.train.checkpoint import load_policy, save_policy

NEEDED = ("recap_bimanual", "recap_distributional_value", "recap_advantage_conditioning")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in NEEDED), reason="needs the sim and loop plugins"
    ),
]


@pytest.fixture
def reg():
    with installed_registry() as registry:
        yield registry


def test_imported_pi05_runs_the_smoke_loop(tmp_path, reg):
    from recap_pi06.weights.importer import import_policy

    cfg = recap_config.resolve_preset("smoke", reg)
    spec = backend_spec(cfg, reg)
    state = openpi_pi05_state(pad=16)  # the sim's 14-D actions fit pi0.5-style padding
    (tmp_path / "pi05").mkdir()
    safetensors.torch.save_file(state, str(tmp_path / "pi05" / "model.safetensors"))
    policy, config, _ = import_policy(str(tmp_path / "pi05"), TINY_PI05, spec, None)
    assert policy.needs_fitting  # weights, but no FAST merges
    save_policy(tmp_path / "imported", policy, config, spec, None, DeploymentSettings())

    cfg = tiny_loop(
        cfg,
        tmp_path / "run",
        config,
        config.chunk_size,
        steps=2,
        batch_size=2,
        episodes=1,
        time_limit=10,
        policy_init=tmp_path / "imported",
    )
    result = run_loop(cfg, reg, log=lambda line: None)
    assert "policy-1" in result.summaries and "eval-1" in result.summaries
    pretrained, _ = load_policy(result.summaries["policy-pretrain"]["checkpoint"], reg)
    key = "paligemma_with_expert.gemma_expert.model.layers.0.input_layernorm.dense.weight"
    moved = (pretrained.expert.layers[0].attn_norm.norm.dense.weight - state[key]).abs().max()
    assert 0 < moved < 0.1, (
        "pre-training fine-tuned the imported weights (a few small steps), not a fresh model"
    )
    assert not pretrained.needs_fitting  # its first fine-tune fitted FAST on the demonstrations
    finetuned, _ = load_policy(result.summaries["policy-1"]["checkpoint"], reg)
    assert finetuned.fast.tok.to_str() == pretrained.fast.tok.to_str()  # and later ones keep it

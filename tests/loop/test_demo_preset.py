"""The ``demo`` preset (what `recap demo` runs) resolves to the documented settings, and ``smoke`` is the same
pipeline with only its size changed."""

from __future__ import annotations

import importlib.util

import pytest

from recap import config as recap_config
from recap.plugins import load_registry

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("recap_bimanual") is None
    or importlib.util.find_spec("recap_distributional_value") is None
    or importlib.util.find_spec("recap_advantage_conditioning") is None,
    reason="the demo preset names the sim, distributional-value and advantage-conditioning plugins",
)

#: the fields the smoke preset shrinks; everything else must be the demo's
SMOKE_RESIZES = {
    "out",
    "collect",
    "policy",
    "value",
    "value_pretrain",
    "value_finetune",
    "policy_pretrain",
    "policy_sft",
    "policy_finetune",
}


@pytest.fixture(scope="module")
def registry():
    return load_registry(entrypoints=True)


def test_demo_preset_resolves_to_the_documented_pipeline(registry):
    cfg = recap_config.resolve_preset("demo", registry)
    names = {
        field: registry.entry_for(getattr(cfg, field)).name
        for field in ("backend", "demonstrator", "policy", "value", "extractor", "sft_extractor")
    }
    assert names == {
        "backend": "aloha-sim",
        "demonstrator": "scripted",
        "policy": "mlp-flow",
        "value": "distributional",
        "extractor": "advantage-conditioning",
        "sft_extractor": "advantage-conditioning",
    }
    assert cfg.iterations == 1 and cfg.task == "transfer_cube"
    assert cfg.policy.uses_env_state and cfg.policy.min_std == 0.05 and cfg.value.network.min_std == 0.05
    assert cfg.extractor.dropout == 0.3 and cfg.sft_extractor.sft
    assert (cfg.collect.demos, cfg.collect.episodes_per_iteration, cfg.collect.eval_episodes) == (60, 60, 100)
    assert cfg.finetune_labeler.mode == "nstep" and cfg.finetune_labeler.lookahead == 10
    assert cfg.finetune_labeler.successful_only and cfg.finetune_labeler.positive_fraction == 0.4
    assert cfg.policy_pretrain.trainer.steps == 60000
    # a resolved preset survives the round trip through plain data (how configs are written to TOML and JSON)
    assert recap_config.from_dict(type(cfg), recap_config.to_dict(cfg, registry), registry) == cfg


def test_smoke_is_the_demo_pipeline_with_only_its_size_changed(registry):
    demo = recap_config.to_dict(recap_config.resolve_preset("demo", registry), registry)
    smoke = recap_config.to_dict(recap_config.resolve_preset("smoke", registry), registry)
    changed = {k for k in demo if demo[k] != smoke[k]}
    assert changed <= SMOKE_RESIZES, f"smoke differs from demo in {sorted(changed - SMOKE_RESIZES)}"
    for plugin_field in ("policy", "value"):
        assert smoke[plugin_field]["name"] == demo[plugin_field]["name"]

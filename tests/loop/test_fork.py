"""A fork keeps the stages before iteration K and refuses settings its kept stages did not use.

That a fork with unchanged settings reproduces the source run's iteration is checked on the smoke run of
``test_reproducible.py``.
"""

from __future__ import annotations

import attrs
import pytest
from test_demo_smoke import pytestmark  # noqa: F401 - the smoke preset needs the same plugins

from recap import config as recap_config
from recap.errors import ConfigError
from recap.loop.fork import fork_run, kept_stage
from recap.plugins import load_registry


def test_kept_stages_end_with_the_collection_of_the_forked_iteration():
    names = ["demos", "value-pretrain", "policy-pretrain", "sft", "eval-0", "eval-pretrain"]
    names += [f"{s}-{k}" for k in (1, 2) for s in ("collect", "value", "label", "policy", "eval")]
    assert [n for n in names if kept_stage(n, 1)] == names[:6] + ["collect-1"]
    assert [n for n in names if kept_stage(n, 2)] == names[:11] + ["collect-2"]


@pytest.fixture
def source(tmp_path):
    reg = load_registry(entrypoints=True)
    cfg = attrs.evolve(recap_config.resolve_preset("smoke", reg), out=tmp_path / "source")
    (cfg.out / "stages" / "collect-1").mkdir(parents=True)
    recap_config.dump(cfg, cfg.out / "config.toml", reg)
    return cfg, reg


def test_settings_used_before_the_fork_must_stay(source, tmp_path):
    cfg, reg = source
    other = attrs.evolve(cfg, out=tmp_path / "fork", seed=cfg.seed + 1)
    with pytest.raises(ConfigError, match=r"must stay the source's: \['seed'\]"):
        fork_run(cfg.out, other, reg, 1)
    assert not (tmp_path / "fork").exists()


def test_a_fork_needs_the_collection_finished_and_a_new_directory(source, tmp_path):
    cfg, reg = source
    retrain = attrs.evolve(cfg, out=tmp_path / "fork", iteration_policy="retrain")
    with pytest.raises(ConfigError, match="collect-1 has not finished"):
        fork_run(cfg.out, retrain, reg, 1)
    with pytest.raises(ConfigError, match="not into itself"):
        fork_run(cfg.out, attrs.evolve(retrain, out=cfg.out), reg, 1)
    (tmp_path / "fork" / "stages").mkdir(parents=True)
    with pytest.raises(ConfigError, match="already holds a run"):
        fork_run(cfg.out, retrain, reg, 1)


def test_each_iteration_policy_names_its_starting_weights(source, tmp_path):
    from recap.loop.training_stages import iteration_policy_training

    cfg, _ = source
    pi_pre, pi_1 = tmp_path / "pi_pre", tmp_path / "pi_1"
    assert iteration_policy_training(cfg, pi_pre, pi_1) == (cfg.policy_finetune, pi_pre)  # the paper's
    cont = attrs.evolve(cfg, iteration_policy="continue")
    assert iteration_policy_training(cont, pi_pre, pi_1) == (cfg.policy_finetune, pi_1)
    assert iteration_policy_training(cont, pi_pre, None) == (cfg.policy_finetune, pi_pre)  # iteration 1
    retrain = attrs.evolve(cfg, iteration_policy="retrain")
    assert iteration_policy_training(retrain, pi_pre, pi_1) == (cfg.policy_pretrain, cfg.policy_init)

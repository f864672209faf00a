"""`recap train-value`, `recap label` and `recap plot-values` end to end, including kill-and-resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from recap import config
from recap.cli.main import main
from recap.cli.train_value_cmd import TrainValueConfig
from recap.testing.registry import process_registry
from recap.train import TrainerConfig
from recap.train.state import checkpoint_dirs

from .tiny_value import TinyValueConfig, make_store, registry

RUNNER = Path(__file__).parent / "cli_runner.py"


@pytest.fixture(scope="module")
def reg():
    r = registry()
    with process_registry(r):
        yield r


def write_config(path: Path, store: Path, out: Path, steps: int, reg) -> Path:
    trainer = TrainerConfig(
        steps=steps, lr=1e-2, warmup_steps=3, checkpoint_every=10, log_every=5, progress=False
    )
    cfg = TrainValueConfig(store=store, out=out, value=TinyValueConfig(), trainer=trainer, batch_size=16)
    return config.dump(cfg, path, reg)


def runner(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(RUNNER), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_train_label_plot_from_the_command_line(tmp_path, reg, capsys):
    store = make_store(tmp_path / "store", unlabelled=1)
    cfg = write_config(tmp_path / "run.toml", tmp_path / "store", tmp_path / "run", 20, reg)
    assert main(["train-value", "--config", str(cfg)]) == 2  # refused: one unlabelled episode
    assert "recap data label-success" in capsys.readouterr().err
    assert main(["train-value", "--config", str(cfg), "--skip-unlabelled", "--trainer.steps", "12"]) == 0
    out = capsys.readouterr().out
    assert "value checkpoint:" in out and "skipped 1 unlabelled" in out
    resolved = config.load(tmp_path / "run" / "train" / "resolved_config.toml", TrainValueConfig, reg)
    assert resolved.trainer.steps == 12 and resolved.skip_unlabelled

    ckpt = tmp_path / "run" / "value"
    args = ["label", "--store", str(tmp_path / "store"), "--value", str(ckpt), "--labeler.lookahead", "5"]
    args.append("--no-progress")
    assert main(args) == 2
    assert "label-success" in capsys.readouterr().err
    labeler = ["--labeler.mode", "monte_carlo", "--labeler.positive-fraction", "0.4"]
    assert main([*args, "--skip-unlabelled", "True", *labeler]) == 0
    out = capsys.readouterr().out
    assert "positive 40.0%" in out and "without a success label" in out
    (label_set,) = store.label_sets()
    assert store.label_set_metadata(label_set)["metadata"]["labeler"]["mode"] == "monte_carlo"

    first = store.episodes()[0].episode_id
    assert (
        main(["plot-values", str(tmp_path / "store"), "--episode", first, "--out", str(tmp_path / "plots")])
        == 0
    )
    for name in (f"value_{first}.png", "advantages.png"):
        png = tmp_path / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.slow
def test_train_value_resumes_after_sigkill_with_identical_weights(tmp_path, reg):
    make_store(tmp_path / "store")
    full = write_config(tmp_path / "full.toml", tmp_path / "store", tmp_path / "full", 40, reg)
    killed = write_config(tmp_path / "killed.toml", tmp_path / "store", tmp_path / "killed", 40, reg)
    assert main(["train-value", "--config", str(full)]) == 0  # uninterrupted reference, in this process
    proc = runner("--kill-at", "27", "train-value", "--config", str(killed))
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert [s for s, _ in checkpoint_dirs(tmp_path / "killed" / "train")] == [10, 20]
    assert not (tmp_path / "killed" / "value").exists()
    resumed = runner("train-value", "--config", str(killed))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_file(str(tmp_path / "full" / "value" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "value" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)

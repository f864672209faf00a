"""The generic trainer: schedule, EMA, exact resume after SIGKILL, torchrun data parallel, bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tensordict import TensorDict

from recap.errors import ConfigError
from recap.train import TrainerConfig, train
from recap.train.schedule import warmup_cosine_lr
from recap.train.state import checkpoint_dirs, export_weights

HERE = Path(__file__).parent
SCRIPT = HERE / "toy_training.py"
sys.path.insert(0, str(HERE))
import toy_training  # noqa: E402


def _script(*args: str, nproc: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc is None:
        cmd = [sys.executable, str(SCRIPT), *args]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
               f"--master-port={port}", "--master-addr=127.0.0.1", str(SCRIPT), *args]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_warmup_then_cosine_to_floor():
    lrs = [
        warmup_cosine_lr(s, base_lr=1.0, warmup_steps=10, total_steps=110, final_ratio=0.1)
        for s in range(110)
    ]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))  # monotone decay after warmup
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the cosine
    assert warmup_cosine_lr(
        110, base_lr=1.0, warmup_steps=10, total_steps=110, final_ratio=0.1
    ) == pytest.approx(0.1)


def test_training_reduces_loss_and_writes_metrics(tmp_path):
    model, result = toy_training.run(tmp_path, 60)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == list(range(5, 65, 5))
    assert lines[-1]["loss_mse"] < 0.6 * lines[0]["loss_mse"]
    assert result.step == 60 and result.resumed_from is None
    assert [s for s, _ in checkpoint_dirs(tmp_path)] == [50, 60]  # keep_checkpoints=2


@pytest.mark.slow
def test_resume_after_sigkill_is_exact(tmp_path):
    """Optimiser, EMA, RNG (dropout) and step all come back: the killed-and-resumed run ends bit-identical."""
    full, killed = tmp_path / "full", tmp_path / "killed"
    reference, _ = toy_training.run(full, 40, ema=0.9)  # uninterrupted, in this process
    proc = _script(str(killed), "40", "--ema", "0.9", "--kill-at", "23")
    assert proc.returncode == -9, proc.stderr  # really killed, mid-run
    assert [s for s, _ in checkpoint_dirs(killed)] == [10, 20]
    assert not (killed / "final.safetensors").exists()
    resumed, result = toy_training.run(killed, 40, ema=0.9)
    assert result.resumed_from == 20
    for (k, a), b in zip(reference.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"EMA weights {k}")
    raw_a = load_file(str(export_weights(full / "checkpoints" / "step_00000040", tmp_path / "a.safetensors")))
    raw_b = load_file(
        str(export_weights(killed / "checkpoints" / "step_00000040", tmp_path / "b.safetensors"))
    )
    for k in raw_a:
        torch.testing.assert_close(raw_a[k], raw_b[k], rtol=0, atol=0, msg=f"raw weights {k}")
    assert (full / "metrics.jsonl").read_text().count("\n") == (killed / "metrics.jsonl").read_text().count(
        "\n"
    )


def test_init_from_loads_weights(tmp_path):
    model, _ = toy_training.run(tmp_path / "a", 10)
    other = toy_training.make_model()
    torch.nn.init.zeros_(other.inp.weight)
    cfg = TrainerConfig(steps=1, lr=0.0, warmup_steps=0, progress=False, weight_decay=0.0)
    train(other, toy_training.make_loss_fn(other), toy_training.make_batch_fn(8), cfg, tmp_path / "b",
          init_from=tmp_path / "a" / "checkpoints" / "step_00000010")  # fmt: skip
    torch.testing.assert_close(other.inp.weight, model.inp.weight)


def test_loss_without_loss_terms_is_refused(tmp_path):
    model = toy_training.make_model()

    def bad_loss(batch):
        return TensorDict({"mse": model(batch["x"]).pow(2).mean()}, batch_size=[])

    cfg = TrainerConfig(steps=2, progress=False)
    with pytest.raises(ConfigError, match="loss_"):
        train(model, bad_loss, toy_training.make_batch_fn(8), cfg, tmp_path)


class _RunsCode:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_resume_refuses_a_crafted_checkpoint_without_running_it(tmp_path):
    import pickle

    from recap.errors import StoreError

    out = tmp_path / "run"
    toy_training.run(out, 10)
    step = checkpoint_dirs(out)[-1][1]
    marker = tmp_path / "pwned"
    (step / ".metadata").write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(StoreError, match="refusing"):
        toy_training.run(out, 20)  # resumes from the crafted checkpoint
    with pytest.raises(StoreError, match="refusing"):
        export_weights(step, tmp_path / "w.safetensors")
    assert not marker.exists()
    # the trainer state is JSON: nothing in a checkpoint directory is unpickled outside the allow-list
    assert json.loads((step / "trainer_state.json").read_text())["step"] == 10

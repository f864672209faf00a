"""2-rank CPU (gloo) training under torchrun: FSDP2 and DDP match one rank, bf16 trains, frozen parts stay put,
a SIGKILLed sharded run resumes exactly, and checkpoints reshard between 1 and 2 ranks."""

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

from recap.train.checkpoint import load_weights
from recap.train.state import checkpoint_dirs, export_weights

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import dist_jobs  # noqa: E402
import toy_training  # noqa: E402

pytestmark = pytest.mark.slow


def torchrun(*args: str) -> subprocess.CompletedProcess:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", f"--master-port={port}",
           "--master-addr=127.0.0.1", str(HERE / "dist_jobs.py"), *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("variants")
    proc = torchrun("variants", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def one_rank(tmp_path: Path, steps: int, **settings) -> dict[str, torch.Tensor]:
    model, _ = toy_training.run(tmp_path / "one", steps, dropout=0.0, **settings)
    return model.state_dict()


@pytest.mark.parametrize("name", ["fsdp2", "fsdp2_ac", "fsdp2_accum", "ddp", "fsdp2_ema"])
def test_two_ranks_match_one_rank_at_the_same_global_batch(variants, tmp_path, name):
    """Sharded EMA weights too: the final model of an EMA run is the average."""
    ema = dist_jobs.VARIANTS[name][2].get("ema")
    model, _ = toy_training.run(tmp_path / "one", dist_jobs.VARIANTS[name][0], ema=ema, dropout=0.0)
    reference = model.state_dict()
    two = load_file(str(variants / name / "final.safetensors"))
    assert set(two) == set(reference)
    for k, a in reference.items():  # equal up to float summation order
        torch.testing.assert_close(two[k], a, rtol=0, atol=1e-5, msg=f"{name}: {k}")
    assert not torch.equal(reference["inp.weight"], toy_training.make_model(0.0).inp.weight)  # it trained


@pytest.mark.parametrize(
    ("name", "dtype"), [("fsdp2_bf16_mixed", torch.float32), ("fsdp2_bf16", torch.bfloat16)]
)
def test_bf16_trains_and_lowers_the_loss(variants, name, dtype):
    losses = json.loads((variants / name / "losses.json").read_text())
    assert losses[-1] < 0.5 * losses[0], losses
    weights = load_file(str(variants / name / "final.safetensors"))
    assert weights["blocks.0.fc1.weight"].dtype == dtype  # bf16-mixed keeps fp32 master weights


def test_a_frozen_part_stays_put_when_sharded(variants, tmp_path):
    two = load_file(str(variants / "fsdp2_frozen" / "final.safetensors"))
    initial = toy_training.make_model(0.0).state_dict()
    torch.testing.assert_close(two["inp.weight"], initial["inp.weight"], rtol=0, atol=0)
    assert not torch.equal(two["head.weight"], initial["head.weight"])
    reference = one_rank(tmp_path, 12, freeze=("input",))
    for k, a in reference.items():
        torch.testing.assert_close(two[k], a, rtol=0, atol=1e-5, msg=k)


def test_sigkill_and_resume_on_two_ranks_gives_the_uninterrupted_weights(variants, tmp_path):
    out = tmp_path / "jobs"
    killed = torchrun("killed", str(out))
    assert killed.returncode != 0  # SIGKILLed mid-run
    assert [s for s, _ in checkpoint_dirs(out / "killed")] == [10, 20]
    alone = subprocess.run(  # a 1-rank run of 20 steps killed at 13: its checkpoint at step 10 ...
        [sys.executable, str(HERE / "toy_training.py"), str(out / "from_one_rank"), "20", "--kill-at", "13",
         "--dropout", "0", "--strategy", "fsdp2"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert alone.returncode == -9 and [s for s, _ in checkpoint_dirs(out / "from_one_rank")] == [10]
    resumed = torchrun("resume", str(out))  # ... continued on 2 ranks, next to the killed run's resume
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    a = load_file(str(variants / "uninterrupted" / "final.safetensors"))
    b = load_file(str(out / "killed" / "final.safetensors"))
    for k in a:  # dropout masks come from each rank's restored generator
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=k)

    reference = one_rank(tmp_path, 20)  # 1 rank -> 2 ranks reshards and continues the same run
    continued = load_file(str(out / "from_one_rank" / "final.safetensors"))
    for k, w in reference.items():
        torch.testing.assert_close(continued[k], w, rtol=0, atol=1e-5, msg=k)

    # 2 ranks -> 1: the sharded checkpoint loads into a plain model and predicts what the 2-rank run does
    step = out / "killed" / "checkpoints" / "step_00000025"
    plain, served = toy_training.make_model(0.1), toy_training.make_model(0.1)
    load_weights(plain, step)
    served.load_state_dict(load_file(str(export_weights(step, tmp_path / "served.safetensors"))))
    trained = toy_training.make_model(0.1)
    trained.load_state_dict(b)
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = trained.eval()(x)
        torch.testing.assert_close(plain.eval()(x), expected, rtol=0, atol=0)
        torch.testing.assert_close(served.eval()(x), expected, rtol=0, atol=0)


def test_pi06_sharded_keeps_knowledge_insulation_and_frozen_parts(variants, tmp_path):
    """FSDP2 per block (vision, decoder, expert) with activation checkpointing: the flow loss alone never moves
    the backbone (its keys/values are detached), a frozen vision tower stays put, and 2 ranks match 1."""
    pytest.importorskip("recap_pi06")
    import pi06_job

    initial = pi06_job.make_policy().state_dict()
    for name in pi06_job.RUNS:
        two = load_file(str(variants / name / "final.safetensors"))
        one = pi06_job.run(tmp_path / "one", name, strategy="ddp")  # alone: the plain model
        for k, w in one.items():
            torch.testing.assert_close(two[k], w, rtol=0, atol=1e-5, msg=f"{name}: {k}")
        moved = {k for k, w in initial.items() if w.is_floating_point() and not torch.equal(two[k], w)}
        assert any(k.startswith("expert.") for k in moved), name
        assert not any(k.startswith("trunk.vision.") for k in moved), (
            name
        )  # frozen, or no gradient reaches it
        backbone_moved = any(k.startswith("trunk.decoder.") for k in moved)
        assert backbone_moved == (name == "pi06_frozen_vision"), (
            name
        )  # only the FAST loss trains the backbone

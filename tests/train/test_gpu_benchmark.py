"""benchmarks/gpu.py: its plan without a GPU, the same code path at tiny shapes, and the demo-gpu preset it times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    # the script runs as on a user's machine: plugins from their entry points
    env = {**{k: v for k, v in os.environ.items() if k != "RECAP_NO_ENTRYPOINTS"}, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600
    )


def _need_the_demo_plugins() -> None:
    for plugin in (
        "recap_pi06",
        "recap_bimanual",
        "recap_distributional_value",
        "recap_advantage_conditioning",
    ):
        pytest.importorskip(plugin)


def test_plan_names_every_measurement_and_exits_zero():
    proc = _run("--plan")
    assert proc.returncode == 0, proc.stderr
    for part in (
        "pi0.5-shaped",
        "Gemma 3 4B",
        "width 2560 x 34 layers",
        "CFG",
        "demo-gpu",
        "activation checkpointing",
    ):
        assert part in proc.stdout, part


@pytest.mark.slow
def test_tiny_run_measures_everything_through_the_gpu_code_path(tmp_path):
    _need_the_demo_plugins()
    out = tmp_path / "figures.json"
    proc = _run("--tiny", "--no-install", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    row = report["models"]["pi06-tiny"]
    assert row["params"] > 0 and row["sequence_tokens"] > 0 and row["flops_per_sample"] > 0
    assert row["samples_per_s"] > 0 and row["chunk_ms"] > 0 and row["chunk_cfg_ms"] > 0
    # 6 N T: a forward+backward costs at least 6 FLOPs per parameter per token through the decoder
    assert row["flops_per_sample"] > 6 * 0.5 * row["params"]
    demo = report["demo_gpu"]
    assert demo["steps_per_s"] > 0 and demo["policy_training_min"] > 0
    assert "| pi06-tiny |" in proc.stdout


def test_demo_gpu_preset_runs_pi06_small_from_camera_images():
    _need_the_demo_plugins()
    import attrs
    from recap_pi06.config import PI06_SMALL

    from recap import config
    from recap.plugins import load_registry

    loop = config.resolve_preset("demo-gpu", load_registry(entrypoints=True))
    assert loop.policy == attrs.evolve(PI06_SMALL, chunk_size=20, uses_env_state=False, min_std=0.05)
    assert loop.backend.privileged_state is False and loop.backend.cameras
    assert loop.value.network.cameras == ("cam_high",) and not loop.value.network.use_env_state
    assert (
        loop.policy_pretrain.trainer.device == "cuda"
        and loop.policy_pretrain.trainer.precision == "bf16-mixed"
    )

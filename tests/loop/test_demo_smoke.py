"""End to end, as a user runs it: `recap loop smoke` killed mid-stage, then `recap demo --preset smoke` on the same
run directory resumes, finishes, and writes the table, plots and report with consistent, finite metrics.

This test drives the installed CLI with the shipped plugins (entry points on), so it skips where they are not
installed (the per-plugin nox sessions).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recap.train.state import checkpoint_dirs

NEEDED = ("recap_bimanual", "recap_distributional_value", "recap_advantage_conditioning")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in NEEDED),
        reason="needs the sim, value and extractor plugins",
    ),
]

TINY = [
    "--collect.episodes-per-iteration", "2", "--collect.eval-episodes", "2",
    "--policy-pretrain.trainer.checkpoint-every", "10",
]  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RECAP_NO_ENTRYPOINTS"}
    env.setdefault("MUJOCO_GL", "egl")
    return env


def _recap(*args: str) -> list[str]:
    return [sys.executable, "-m", "recap.cli.main", *args]


def _kill_during_policy_pretrain(out: Path) -> None:
    proc = subprocess.Popen(_recap("loop", "smoke", "--out", str(out), *TINY), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    train_dir = out / "stages" / "policy-pretrain" / "train"
    deadline = time.monotonic() + 600
    try:
        # a committed checkpoint, not the temporary directory it is written in (killed then, none would remain)
        while not checkpoint_dirs(train_dir):
            assert proc.poll() is None, "the loop ended before policy pre-training wrote a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "stages" / "policy-pretrain" / "summary.json").exists()


def test_smoke_demo_resumes_after_kill_and_reports(tmp_path):
    out = tmp_path / "run"
    _kill_during_policy_pretrain(out)
    done = subprocess.run(_recap("demo", "--preset", "smoke", "--out", str(out), *TINY), env=_env(),
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = done.stdout
    for stage in ("demos", "value-pretrain", "label-pretrain"):
        assert f"[{stage}] done earlier, skipping" in log
    pretrain = json.loads((out / "stages" / "policy-pretrain" / "summary.json").read_text())
    assert pretrain["resumed_from"] is not None and pretrain["resumed_from"] >= 10

    for name in ("report.md", "config.toml", "plots/progress.png", "plots/advantages.png"):
        assert (out / name).stat().st_size > 0, name
    assert "success rate" in log and "Recap iter 1" in log
    report = (out / "report.md").read_text()
    assert "## Results per stage" in report and "plots/progress.png" in report

    for stage in ("eval-0", "eval-1"):
        summary = json.loads((out / "stages" / stage / "summary.json").read_text())
        m = summary["episodes_metrics"]
        episodes = json.loads((out / "stages" / stage / "eval.json").read_text())["episodes"]
        assert m["episodes"] == len(episodes) == 2
        successes = sum(bool(e["success"]) for e in episodes)
        hours = sum(e["duration_s"] for e in episodes) / 3600
        assert math.isclose(m["success_rate"], successes / 2)
        assert math.isclose(m["throughput_per_hour"], successes / hours, rel_tol=1e-6)
        assert all(math.isfinite(x) for x in (*m["success_ci"], *m["throughput_ci"]))
    for stage in ("value-pretrain", "policy-pretrain", "value-1", "policy-1"):
        metrics = json.loads((out / "stages" / stage / "summary.json").read_text())["metrics"]
        assert math.isfinite(metrics["loss"]), stage

    # a moved run directory resumes: the next iteration re-runs from the moved SFT policy, not a recorded path
    moved = tmp_path / "moved"
    out.rename(moved)
    for stage in ("collect-1", "value-1", "label-1", "policy-1", "eval-1"):
        shutil.rmtree(moved / "stages" / stage)
    again = subprocess.run(_recap("loop", "smoke", "--out", str(moved), *TINY), env=_env(),
                           capture_output=True, text=True, timeout=900)  # fmt: skip
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "[sft] done earlier, skipping" in again.stdout
    collect = json.loads((moved / "stages" / "collect-1" / "summary.json").read_text())
    assert Path(collect["policy"]) == moved / "stages" / "sft" / "policy"

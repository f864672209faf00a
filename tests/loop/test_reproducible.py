"""The same config and seed give the same run: the smoke loop, run twice with two collection workers (so the
episodes land in the store in whatever order the workers finish), records the same episodes, writes the same
checkpoints and the same evaluation tables. Episode ids and wall-clock times are the only differences allowed.
A fork of the run at iteration 1 (``recap loop --fork-from``) re-trains iteration 1 to the same weights.

Drives the installed CLI with the shipped plugins, so it skips where they are not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from test_demo_smoke import _env, _recap, pytestmark  # noqa: F401 - the same plugins and CLI as the smoke run

from recap.data import EpisodeStore
from recap.train.checkpoint import WEIGHTS

#: every stage of the smoke loop, as small as it goes: 5 demonstrations (the fifth succeeds, so SFT runs) and 4
#: collected episodes (2 watched by the expert) split over 2 workers, a few dozen optimiser steps per stage
SMALL = [
    "--collect.demos", "5", "--collect.episodes-per-iteration", "4", "--collect.eval-episodes", "2",
    "--collect.workers", "2",
    "--value-pretrain.trainer.steps", "20", "--value-finetune.trainer.steps", "10",
    "--policy-pretrain.trainer.steps", "30", "--policy-sft.trainer.steps", "10",
    "--policy-finetune.trainer.steps", "20",
]  # fmt: skip


def _run(out: Path) -> None:
    cmd = _recap("loop", "smoke", "--out", str(out), *SMALL)
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _episodes(run: Path) -> dict[tuple, dict]:
    """(stage, seed) -> what the store holds for the episode, ids and times left out."""
    store = EpisodeStore.open(run / "store")
    out = {}
    for meta in store.episodes():
        arrays = store.arrays(meta.episode_id)
        out[(meta.stage, meta.seed)] = {
            "meta": (meta.task, meta.success, meta.source, meta.policy_version, meta.length, meta.iteration),
            "arrays": {k: np.asarray(v) for k, v in arrays.items()},
        }
    return out


def _checkpoints(run: Path) -> dict[str, dict[str, np.ndarray]]:
    return {str(p.relative_to(run)): load_file(p) for p in sorted((run / "stages").glob(f"*/*/{WEIGHTS}"))}


def _evaluations(run: Path) -> dict[str, dict]:
    return {
        p.parent.name: json.loads(p.read_text()) for p in sorted((run / "stages").glob("eval-*/eval.json"))
    }


BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _benchmark(script: str, *args: str) -> str:
    cmd = [sys.executable, str(BENCHMARKS / script), *args]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _check_benchmarks_read_the_run(run: Path, tmp_path: Path) -> None:
    """The result scripts of benchmarks/ on a finished run: the seed benchmark (every loop stage reused, the
    pre-trained policy evaluated), an iteration ablation, the extractor arms and the failure table."""
    seeds = tmp_path / "seeds"
    shutil.copytree(run, seeds / "seed-0")
    _benchmark(
        "seeds.py", "--preset", "smoke", "--iterations", "1", "--seed", "0", "--out", str(seeds), "--", *SMALL
    )
    per_seed = json.loads((seeds / "seed-0" / "results.json").read_text())
    labels = [row["label"] for row in per_seed["stages"]]
    assert labels[:2] == ["demonstrator (its own demonstration seeds)", "pre-trained (I = 1)"]
    assert labels[2:] == ["SFT", "Recap iter 1"]
    assert "| pre-trained (I = 1) |" in _benchmark("seeds.py", "--aggregate", "--out", str(seeds))
    assert f"--aggregate --out {seeds}" in (seeds / "results.md").read_text()  # the command names its --out
    quality = _benchmark("label_quality.py", str(run))
    assert "| label-1 | successful |" in quality and "| label-pretrain | successful episodes |" in quality
    first = json.loads((run / "stages" / "eval-1" / "eval.json").read_text())["episodes"][0]
    traced = _benchmark("trace_episode.py", str(run), "--stage", "eval-1", "--episodes", "1")
    assert f"## seed {first['seed']}: success {first['success']}" in traced  # the same episode, replayed

    ablated = tmp_path / "ablated"
    args = ["--out", str(ablated), "--steps", "5", "--eval-episodes", "2", "--force-interventions", "false"]
    args += ["--iteration-policy", "retrain", "--ema-decay", "0.9"]
    summary = json.loads(_benchmark("ablate_iteration.py", str(run), *args).strip().splitlines()[-1])
    assert summary["episodes_metrics"]["episodes"] == 2
    original = json.loads((run / "stages" / "label-1" / "summary.json").read_text())["label_set"]
    relabelled = json.loads((ablated / "stages" / "label-1" / "summary.json").read_text())["label_set"]
    assert relabelled != original  # a new label set beside the run's own
    assert not (run / "stages" / "eval-pretrain").exists()  # the ablated run is only read

    reinit = tmp_path / "reinit"
    args = ["--out", str(reinit), "--steps", "2", "--eval-episodes", "1", "--reinit", "indicator_embed"]
    _benchmark("ablate_iteration.py", str(run), *args)
    before = load_file(run / "stages" / "policy-pretrain" / "policy" / WEIGHTS)
    after = load_file(reinit / "init" / WEIGHTS)
    changed = [name for name in before if not np.array_equal(before[name], after[name])]
    assert changed == ["indicator_embed.weight"]  # only the indicator's embedding is drawn afresh

    arms = tmp_path / "arms"
    table = _benchmark(
        "extractors.py", "--run", str(run), "--out", str(arms), "--iterations", "1", "--guidance", "2.0"
    )
    for arm in (
        "| SFT |",
        "| Recap iteration 1 (beta=1) |",
        "| Recap iteration 1, CFG (beta=2) |",
        "| AWR |",
        "| PPO |",
    ):
        assert arm in table, table
    assert not (run / "stages" / "eval-pretrained").exists()  # the compared run is only read

    table = _benchmark("failures.py", str(run), str(ablated))
    assert "| Recap iter 1 (variant) |" in table and "All 2 runs pooled" in table


def _check_fork_reruns_the_iteration(run: Path, tmp_path: Path) -> None:
    """A fork at iteration 1 with the source's own settings records nothing new and trains and scores
    iteration 1 exactly as the source run did."""
    fork = tmp_path / "fork"
    done = subprocess.run(
        _recap("loop", "--fork-from", str(run), "--fork-at", "1", "--out", str(fork)),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[collect-1] done earlier, skipping" in done.stdout
    assert "[value-1] running" in done.stdout and "[policy-1] running" in done.stdout
    assert _episodes(fork).keys() == _episodes(run).keys()
    kept = json.loads((fork / "stages" / "label-pretrain" / "summary.json").read_text())["label_set"]
    source_store, fork_store = EpisodeStore.open(run / "store"), EpisodeStore.open(fork / "store")
    # the kept label set with the labeller's record as it was (label-1's set is written again by its stage)
    assert (
        fork_store.label_set_metadata(kept)["metadata"] == source_store.label_set_metadata(kept)["metadata"]
    )
    rerun = {p: w for p, w in _checkpoints(fork).items() if Path(p).parts[1] in ("value-1", "policy-1")}
    source = _checkpoints(run)
    assert len(rerun) == 2
    for path, tensors in rerun.items():
        for name, tensor in tensors.items():
            np.testing.assert_array_equal(tensor, source[path][name], err_msg=f"{path} {name}")
    assert _evaluations(fork)["eval-1"] == _evaluations(run)["eval-1"]


def test_same_config_and_seed_give_the_same_run(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    _run(first)
    _run(second)

    a, b = _episodes(first), _episodes(second)
    assert sorted(a) == sorted(b) and len(a) == 9
    assert {stage for stage, _ in a} == {"demos", "collect-1"}
    for key in a:
        assert a[key]["meta"] == b[key]["meta"], key
        assert a[key]["arrays"].keys() == b[key]["arrays"].keys(), key
        for name, array in a[key]["arrays"].items():
            np.testing.assert_array_equal(array, b[key]["arrays"][name], err_msg=f"{key} {name}")

    wa, wb = _checkpoints(first), _checkpoints(second)
    assert {Path(p).parts[1] for p in wa} >= {
        "value-pretrain",
        "policy-pretrain",
        "sft",
        "value-1",
        "policy-1",
    }
    assert wa.keys() == wb.keys()
    for path, tensors in wa.items():
        assert tensors.keys() == wb[path].keys(), path
        for name, tensor in tensors.items():
            np.testing.assert_array_equal(tensor, wb[path][name], err_msg=f"{path} {name}")

    ea, eb = _evaluations(first), _evaluations(second)
    assert sorted(ea) == ["eval-0", "eval-1"]
    assert ea == eb

    _check_fork_reruns_the_iteration(first, tmp_path)
    _check_benchmarks_read_the_run(first, tmp_path)

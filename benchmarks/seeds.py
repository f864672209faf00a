"""Results over run seeds: the loop preset for S independent seeds, then the mean and a 95% interval across them.

Each seed is its own resumable invocation (hours of CPU spread over several sittings); ``--aggregate`` then
reads every finished seed:

    python benchmarks/seeds.py --seed 0 --iterations 2           # runs (or resumes) run seed 0 of the demo
    python benchmarks/seeds.py --seed 1 --iterations 2           # ... one invocation per seed
    python benchmarks/seeds.py --aggregate --package-data        # tables; the spread `recap demo` prints

A run seed ``N`` derives the demonstration and collection episodes, the initial weights and the training
batches (``LoopConfig.seed``); evaluation episodes are the same for every seed, so seeds differ only in what
they learned. For the demonstrator (on its own demonstration seeds), the pre-trained policy (sampled with I = 1),
SFT and Recap iteration k it reports success, throughput, failure rate, time to success and late failures
(episodes that reached the hand-over, stage 4, and still failed: the flawed demonstrator's targeted failure).

Writes ``<out>/seed-N/`` (the run directory, with ``results.json`` once finished) and, with ``--aggregate``,
``<out>/results.md`` and ``<out>/results.json``; ``--package-data`` also writes ``recap/loop/seed_spread.json``,
which ``recap demo`` prints beside its own run. Arguments after ``--`` are loop overrides
(``-- --collect.eval-episodes 20``). ``--fork-from runs/seeds --fork-at K`` starts each seed from that seed's
earlier run, re-running iteration K onward with the overrides on the episodes it recorded before collection
K + 1 (``recap.loop.fork``):

    python benchmarks/seeds.py --seed 0 --out runs/seeds-retrain --fork-from runs/seeds -- --iteration-policy retrain
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import attrs
import torch
from extractors import late_failure_rate, late_failure_share

from recap.cli.loop_cmd import parse_loop_args
from recap.data.atomic_json import write_json_atomic
from recap.loop.experience import PROGRESS, evaluate_policy
from recap.loop.fork import fork_run
from recap.loop.recap_loop import run_loop
from recap.loop.run import LoopRun
from recap.loop.seed_spread import METRICS, SPREAD_FILE, spread_table
from recap.loop.training_stages import policy_checkpoint
from recap.plugins import get_registry
from recap.rl import mean_ci

RESULTS = "results.json"
PACKAGE_SPREAD = Path(__file__).resolve().parents[1] / "src" / "recap" / "loop" / SPREAD_FILE


PRETRAINED_EVAL = "eval-pretrain"
DEFAULT_OUT = Path("runs/seeds")


def _row(name: str, summary: dict[str, Any], late_failures: float) -> dict[str, Any]:
    m = summary["episodes_metrics"]
    return {
        "stage": name,
        "label": summary["label"],
        "metrics": {
            "success_rate": m["success_rate"],
            "throughput_per_hour": m["throughput_per_hour"],
            "failure_rate": 1.0 - m["success_rate"],
            "mean_time_to_success_s": m["mean_time_to_success_s"],
            "late_failure_rate": late_failures,
        },
    }


def _stage_results(run_dir: Path, summaries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The five metrics of one seed: the demonstrator (on its own demonstration seeds), then every evaluation
    stage (the pre-trained policy, SFT, Recap iteration k) on the shared evaluation seeds."""
    stages = run_dir / "stages"
    demos = [json.loads(line) for line in (stages / "demos" / PROGRESS).read_text().splitlines() if line]
    demonstrator = summaries["demos"] | {"label": "demonstrator (its own demonstration seeds)"}
    rows = [_row("demos", demonstrator, late_failure_share(demos))]
    evals = [PRETRAINED_EVAL] + [n for n in summaries if n.startswith("eval-") and n != PRETRAINED_EVAL]
    rows += [_row(n, summaries[n], late_failure_rate(stages / n)) for n in evals]
    return rows


def _evaluate_pretrained(cfg: Any, registry: Any) -> dict[str, Any]:
    """pi_pre (sampled with I = 1) on the evaluation seeds: what the demonstrations alone teach the loop's
    policy before SFT and before any experience of its own."""
    run = LoopRun.start(cfg, registry, print)
    pi_pre = policy_checkpoint(run.runner.dir("policy-pretrain"))
    return run.stage(PRETRAINED_EVAL, evaluate_policy, policy=pi_pre, label="pre-trained (I = 1)").summary


def run_seed(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = parse_loop_args([args.preset, *overrides], "benchmarks/seeds.py")
    run_dir = args.out / f"seed-{args.seed}"
    cfg = attrs.evolve(cfg, seed=args.seed, iterations=args.iterations, out=run_dir)
    started = time.perf_counter()
    registry = get_registry()
    if args.fork_from is not None and not run_dir.exists():
        fork_run(args.fork_from / run_dir.name, cfg, registry, args.fork_at)
    result = run_loop(cfg, registry)
    summaries = result.summaries | {PRETRAINED_EVAL: _evaluate_pretrained(cfg, registry)}
    results = {
        "preset": args.preset,
        "overrides": _effective(args.preset, overrides),
        "seed": args.seed,
        "iterations": args.iterations,
        "forked_from": None if args.fork_from is None else f"{args.fork_from} at iteration {args.fork_at}",
        "stages": _stage_results(result.run_dir, summaries),
        "wall_s_this_invocation": round(time.perf_counter() - started, 1),
    }
    write_json_atomic(run_dir / RESULTS, results)
    print(f"wrote {run_dir / RESULTS}")
    return 0


@functools.cache
def _resolved(preset: str, overrides: tuple[str, ...]) -> Any:
    return parse_loop_args([preset, *overrides], "benchmarks/seeds.py")


def _effective(preset: str, overrides: list[str]) -> list[str]:
    """``overrides``, or none when they leave the preset as it is today (a fork's overrides that later became
    the preset's defaults): the spread is then the preset's own."""
    if overrides and _resolved(preset, tuple(overrides)) == _resolved(preset, ()):
        return []
    return list(overrides)


def _finished(out: Path) -> list[dict[str, Any]]:
    runs = [json.loads(p.read_text()) for p in sorted(out.glob(f"seed-*/{RESULTS}"))]
    if not runs:
        sys.exit(f"no finished seed under {out}: run `python benchmarks/seeds.py --seed N` first")
    for r in runs:
        r["overrides"] = _effective(r["preset"], r["overrides"])
    kinds = {(r["preset"], tuple(r["overrides"]), r["iterations"]) for r in runs}
    if len(kinds) > 1:
        sys.exit(
            f"the seeds under {out} ran different settings {sorted(kinds)}; aggregate one setting per --out"
        )
    return sorted(runs, key=lambda r: r["seed"])


#: metrics that are shares (0..1); the others (throughput, time) are only bounded below by 0
SHARES = ("success_rate", "failure_rate", "late_failure_rate")


def _clipped(key: str, stats: tuple[float, float, float]) -> tuple[float, float, float]:
    """A Student-t interval cut to the metric's range: with few seeds it reaches past 0% or 100%."""
    mean, low, high = stats
    top = 1.0 if key in SHARES else math.inf
    return mean, max(low, 0.0), min(high, top)  # NaN (one seed) stays NaN: max/min keep the first NaN


def _spread(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per evaluation stage: (mean, low, high) across seeds of each metric (time to success over the seeds
    that had a success)."""
    stages = []
    for i, row in enumerate(runs[0]["stages"]):
        metrics = {}
        for key, *_ in METRICS:
            values = [r["stages"][i]["metrics"][key] for r in runs]
            values = [v for v in values if v is not None]
            stats = _clipped(key, mean_ci(values)) if values else None
            metrics[key] = None if stats is None else [None if math.isnan(x) else x for x in stats]
        stages.append({"stage": row["stage"], "label": row["label"], "metrics": metrics})
    return stages


def _per_seed_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| seed | stage | " + " | ".join(t for _, t, _, _ in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for r in runs:
        for row in r["stages"]:
            cells = [
                "-" if row["metrics"][key] is None else fmt.format(scale * row["metrics"][key])
                for key, _, scale, fmt in METRICS
            ]
            lines.append(f"| {r['seed']} | {row['label']} | " + " | ".join(cells) + " |")
    return lines


def aggregate(args: argparse.Namespace) -> int:
    runs = _finished(args.out)
    first = runs[0]
    seeds = [r["seed"] for r in runs]
    overrides = " ".join(first["overrides"])
    out = "" if args.out == DEFAULT_OUT else f" --out {args.out}"
    per_seed = (
        f"python benchmarks/seeds.py --preset {{preset}} --iterations {first['iterations']} --seed N{out}"
    )
    command = f"{per_seed}{' -- ' + overrides if overrides else ''} (N = {', '.join(map(str, seeds))}), then "
    command += f"python benchmarks/seeds.py --aggregate{out} --package-data"
    spread = {
        "preset": first["preset"],
        "overrides": first["overrides"],
        "iterations": first["iterations"],
        "seeds": seeds,
        "command": command,
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()}), torch {torch.__version__}",
        "date": date.today().isoformat(),
        "stages": _spread(runs),
    }
    write_json_atomic(args.out / RESULTS, {**spread, "per_seed": runs})
    lines = [
        f"# Recap over {len(runs)} seeds: `{first['preset']}` preset, {first['iterations']} iteration(s)",
        "",
        f"Command: `{command.replace('{preset}', first['preset'])}`; {spread['machine']}, {spread['date']}.",
        "",
        "## Mean across seeds [Student-t 95% interval, cut to the metric's range]",
        "",
        *spread_table(spread),
        "",
        "## Per seed",
        "",
        *_per_seed_table(runs),
        "",
    ]
    (args.out / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if args.package_data:
        write_json_atomic(PACKAGE_SPREAD, spread)
        print(f"wrote {PACKAGE_SPREAD}")
    return 0


def main() -> int:
    argv = sys.argv[1:]
    overrides = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--seed", type=int, help="run (or resume) this run seed")
    what.add_argument("--aggregate", action="store_true", help="tables over every finished seed under --out")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--iterations", type=int, default=2, help="Recap iterations K per seed")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument(
        "--package-data", action="store_true", help="with --aggregate: write the package's spread"
    )
    ap.add_argument(
        "--fork-from",
        type=Path,
        help="a --out of earlier seeds: each new seed starts from that seed's run (recap.loop.fork)",
    )
    ap.add_argument("--fork-at", type=int, default=1, help="with --fork-from: the iteration re-run first")
    args = ap.parse_args(argv)
    if args.package_data and not args.aggregate:
        ap.error("--package-data goes with --aggregate")
    return aggregate(args) if args.aggregate else run_seed(args, overrides)


if __name__ == "__main__":
    raise SystemExit(main())

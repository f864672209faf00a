"""Compare policy extractors on the same data and seeds (the paper's Fig. 7-style comparison, in simulation).

Runs the loop preset once (demonstrations -> pre-training -> SFT -> ``--iterations`` rounds of collection,
value fine-tuning and relabelling -> Recap), or takes a finished run (``--run``), then trains AWR and PPO the
way the loop trains pi_k (``iteration_policy``: from pi_pre, or retrained like it) on the last iteration's data
and labels, and evaluates every arm on the same fixed seeds:

    SFT | Recap (beta = 1) | Recap + CFG (beta sweep, same weights) | AWR | PPO

and, for reference, the advantage-conditioned pre-trained policy (sampled with I = 1) the SFT stage starts from.

It also reports the targeted failure mode of the flawed demonstrator: the grasp that looks fine and drops the
cube after the hand-over ("late failure": the episode reached stage 4, the hand-over touch, but not the strict
success), and how much of it each method removes.

    python benchmarks/extractors.py --out runs/bench                      # full size (~1 h on 2 CPU cores)
    python benchmarks/extractors.py --preset smoke --out /tmp/bench --eval-episodes 4 --guidance 2.0
    python benchmarks/extractors.py --run runs/seeds/seed-0 --out runs/arms/seed-0 --guidance 2.0

Writes ``results.json`` and ``results.md`` into ``--out``; the run is resumable stage by stage.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import attrs

from recap import config as recap_config
from recap.data import EpisodeStore
from recap.loop.config import LoopConfig
from recap.loop.experience import evaluate_policy
from recap.loop.recap_loop import run_loop
from recap.loop.run import STORE, LoopRun
from recap.loop.stages import StageRunner
from recap.loop.training_stages import iteration_policy_training, seeded_trainer
from recap.plugins import get_registry
from recap.train.policy import POLICY_DIR, train_policy

LATE_STAGE = 4


def late_failure_rate(stage_dir: Path) -> float:
    """Share of evaluation episodes that reached the hand-over (stage 4) and still failed."""
    return late_failure_share(json.loads((stage_dir / "eval.json").read_text())["episodes"])


def late_failure_share(eps: list[dict]) -> float:
    """Share of episode summaries (``success``, ``max_stage``) that reached stage 4 and still failed."""
    late = [e for e in eps if e["success"] is False and (e.get("max_stage") or 0) >= LATE_STAGE]
    return len(late) / max(len(eps), 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--out", type=Path, default=Path("runs/bench"))
    ap.add_argument("--eval-episodes", type=int, default=100)
    ap.add_argument("--guidance", type=float, nargs="*", default=[1.5, 2.0, 2.5])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--iterations", type=int, default=2, help="Recap iterations; AWR and PPO use the last one's data"
    )
    ap.add_argument(
        "--run",
        type=Path,
        help="a finished loop run to compare on (e.g. runs/seeds/seed-0) instead of running the preset",
    )
    args = ap.parse_args()
    reg = get_registry()
    started = time.perf_counter()
    last = args.iterations
    runner = StageRunner(args.out / "arms")
    if args.run is not None:  # read the finished run; arms and their evaluations go under --out only
        cfg = attrs.evolve(recap_config.load(args.run / "config.toml", LoopConfig, reg), iterations=last)
        args.eval_episodes = cfg.collect.eval_episodes
        run_dir, source = args.run, StageRunner(args.run, log=lambda _: None)
        if source.summary(f"eval-{last}") is None:
            raise SystemExit(
                f"{args.run}: stage eval-{last} has not finished; compare on a finished iteration"
            )
        label_set = source.summary(f"label-{last}")["label_set"]
        run = LoopRun(cfg, reg, EpisodeStore.open(args.run / STORE), runner, print, False)
    else:
        base = recap_config.resolve_preset(args.preset, reg)
        cfg = attrs.evolve(
            base,
            out=args.out / "loop",
            iterations=last,
            collect=attrs.evolve(base.collect, eval_episodes=args.eval_episodes, workers=args.workers),
        )
        loop = run_loop(cfg, reg)
        run_dir, label_set = loop.run_dir, loop.summaries[f"label-{last}"]["label_set"]
        run = LoopRun.start(cfg, reg, print)
    pi_pre = run_dir / "stages" / "policy-pretrain" / POLICY_DIR
    runner.run(
        "eval-pretrained", lambda d: evaluate_policy(run, d, policy=pi_pre, label="pre-trained (I = 1)")
    )
    arms: dict[str, Path] = {
        "SFT": run_dir / "stages" / "eval-0",
        "pre-trained, before SFT (I = 1)": runner.dir("eval-pretrained"),
        **{f"Recap iteration {k} (beta=1)": run_dir / "stages" / f"eval-{k}" for k in range(1, last + 1)},
    }
    recap_policy = run_dir / "stages" / f"policy-{last}" / POLICY_DIR
    for beta in args.guidance:
        name = f"cfg-{beta:g}"
        runner.run(
            name,
            lambda d, b=beta: evaluate_policy(
                run, d, policy=recap_policy, label=f"Recap CFG beta={b:g}", guidance=b
            ),
        )
        arms[f"Recap iteration {last}, CFG (beta={beta:g})"] = runner.dir(name)
    # the arms are trained the way the loop trains pi_k (fine-tuned from pi_pre, or retrained like it)
    previous = run_dir / "stages" / f"policy-{last - 1}" / POLICY_DIR if last > 1 else None
    training, init_from = iteration_policy_training(cfg, pi_pre, previous)
    for arm, extractor in (("AWR", {"name": "awr"}), ("PPO", {"name": "ppo"})):
        ext = _extractor(extractor, reg)
        key = arm.lower()
        runner.run(
            f"train-{key}",
            lambda d, e=ext: {
                "checkpoint": str(
                    train_policy(
                        run.store,
                        policy=cfg.policy,
                        extractor=e,
                        trainer=seeded_trainer(run, training),
                        out_dir=d,
                        batch_size=training.batch_size,
                        chunk_size=cfg.chunk_size,
                        label_set=label_set,
                        episodes=run.experience_through(last),
                        init_from=init_from,
                        registry=reg,
                    ).checkpoint
                )
            },
        )
        runner.run(
            f"eval-{key}",
            lambda d, k=key, a=arm: evaluate_policy(
                run, d, policy=runner.dir(f"train-{k}") / POLICY_DIR, label=a
            ),
        )
        arms[arm] = runner.dir(f"eval-{key}")

    results = {}
    for arm, stage_dir in arms.items():
        m = json.loads((stage_dir / "summary.json").read_text())["episodes_metrics"]
        results[arm] = {**m, "late_failure_rate": late_failure_rate(stage_dir)}
    meta = {
        "preset": None if args.run is not None else args.preset,
        "source": f"Run `{args.run}`" if args.run is not None else f"Preset `{args.preset}`",
        "eval_episodes": args.eval_episodes,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {__import__('os').cpu_count()} cores",
        "date": str(date.today()),
        "wall_s": round(time.perf_counter() - started),
        "iterations": last,
        "command": f"python benchmarks/extractors.py --run {args.run} --out {args.out} --iterations {last}"
        if args.run is not None
        else f"python benchmarks/extractors.py --preset {args.preset} --out {args.out} "
        f"--eval-episodes {args.eval_episodes} --iterations {last}",
    }
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "arms": results}, indent=2))
    md = table(results, meta)
    (args.out / "results.md").write_text(md)
    print(md)
    return 0


def _extractor(data: dict, reg):
    from recap.config import ExtractorConfig

    return recap_config.from_dict(ExtractorConfig, data, reg)


def table(results: dict, meta: dict) -> str:
    sft = results["SFT"]
    lines = [
        f"{meta['source']}, {meta['eval_episodes']} evaluation episodes per arm on the same seeds; "
        f"{meta['machine']}; {meta['date']}; `{meta['command']}`.",
        "",
        "| arm | success [95% CI] | throughput /h [95% CI] | x SFT | time to success (s) | late failures |",
        "|---|---|---|---|---|---|",
    ]
    for arm, m in results.items():
        ratio = (
            m["throughput_per_hour"] / sft["throughput_per_hour"]
            if sft["throughput_per_hour"]
            else float("nan")
        )
        tts = "-" if m["mean_time_to_success_s"] is None else f"{m['mean_time_to_success_s']:.2f}"
        lines.append(
            f"| {arm} | {100 * m['success_rate']:.0f}% [{100 * m['success_ci'][0]:.0f}, {100 * m['success_ci'][1]:.0f}] "
            f"| {m['throughput_per_hour']:.0f} [{m['throughput_ci'][0]:.0f}, {m['throughput_ci'][1]:.0f}] | {ratio:.2f} "
            f"| {tts} | {100 * m['late_failure_rate']:.0f}% |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

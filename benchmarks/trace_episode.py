"""Replay evaluation episodes of a loop run and print how the arms move: for the first few episodes of an
evaluation stage that ended at a given task stage, the policy is run again on the same seed with the loop's
execution settings (the same episode: sampling is seeded per episode), and every 50 ticks the script prints the
mean per-tick joint motion of each arm and the right arm's joints.

    python benchmarks/trace_episode.py runs/seeds/seed-0 --stage eval-1 --ended-at 0
    python benchmarks/trace_episode.py runs/seeds/seed-0 --stage eval-0 --seeds 2147483650

What it is for: telling a stall (no motion) from an arm that wanders off (growing motion, joints at their
limits) in the episodes ``benchmarks/failures.py`` counts.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from recap import config as recap_config  # noqa: E402
from recap.deploy import open_policy  # noqa: E402
from recap.loop.config import LoopConfig  # noqa: E402
from recap.loop.training_stages import policy_checkpoint  # noqa: E402
from recap.plugins import get_registry  # noqa: E402
from recap.rollout.collect import backend_for_task, evaluation_backend_config  # noqa: E402
from recap.rollout.runner import run_episode  # noqa: E402

WINDOW = 50


def policy_of(run: Path, stage: str) -> Path:
    """The checkpoint an evaluation stage scored: eval-pretrain pi_pre, eval-K pi_K, eval-0 the SFT policy
    (pi_pre where the loop skipped SFT)."""
    trained = {"eval-0": ["sft", "policy-pretrain"], "eval-pretrain": ["policy-pretrain"]}.get(
        stage, [stage.replace("eval-", "policy-")]
    )
    for name in trained:
        path = policy_checkpoint(run / "stages" / name)
        if path.is_dir():
            return path
    raise SystemExit(
        f"{run}: no policy checkpoint for {stage} (looked in stages/{', stages/'.join(trained)})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a loop run directory")
    ap.add_argument(
        "--stage", default="eval-1", help="the evaluation stage whose policy and episodes to replay"
    )
    ap.add_argument(
        "--ended-at", type=int, default=None, help="only failed episodes that ended at this stage"
    )
    ap.add_argument("--seeds", type=int, nargs="*", default=None, help="these evaluation seeds instead")
    ap.add_argument("--episodes", type=int, default=3, help="how many episodes to replay")
    args = ap.parse_args()

    stage_dir = args.run / "stages" / args.stage
    if not (stage_dir / "eval.json").exists():
        raise SystemExit(
            f"{stage_dir}: no eval.json; give an evaluation stage of the run (eval-0, eval-1, ...)"
        )
    episodes = json.loads((stage_dir / "eval.json").read_text())["episodes"]
    policy_dir = policy_of(args.run, args.stage)
    if args.seeds:
        chosen = [e for e in episodes if e["seed"] in set(args.seeds)]
    else:
        chosen = [
            e
            for e in episodes
            if args.ended_at is None or (not e["success"] and e.get("max_stage") == args.ended_at)
        ]
    chosen = chosen[: args.episodes]
    if not chosen:
        raise SystemExit(f"no episode of {args.stage} matches; see benchmarks/failures.py {args.run}")

    reg = get_registry()
    cfg = recap_config.load(args.run / "config.toml", LoopConfig, reg)
    policy, deployment, _ = open_policy(policy_dir, reg)
    backend = reg.build(evaluation_backend_config(backend_for_task(cfg.backend, cfg.task), policy))
    half = backend.spec.action_dim // 2
    np.set_printoptions(precision=2, suppress=True, linewidth=160)
    try:
        for e in chosen:
            record = run_episode(
                backend,
                policy,
                task=cfg.task,
                seed=e["seed"],
                chunk_execute=cfg.collect.chunk_execute,
                time_limit=cfg.collect.time_limit,
                deployment=deployment,
                record_images=False,
            )
            state = record.steps.get("observation.state").numpy()
            print(f"## seed {e['seed']}: success {record.success}, furthest stage {record.max_stage}")
            print(
                "| ticks | left arm motion (mrad/tick) | right arm motion (mrad/tick) | right arm joints at the end (rad) |"
            )
            print("|---|---|---|---|")
            motion = np.abs(np.diff(state, axis=0))
            for start in range(0, len(motion), WINDOW):
                window = motion[start : start + WINDOW]
                end = min(start + WINDOW, len(state) - 1)
                left, right = (
                    1000 * window[:, : half - 1].mean(),
                    1000 * window[:, half : 2 * half - 1].mean(),
                )
                print(f"| {start}-{end} | {left:.1f} | {right:.1f} | {state[end, half : 2 * half - 1]} |")
            print()
    finally:
        backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

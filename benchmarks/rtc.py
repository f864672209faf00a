"""Synchronous vs naive asynchronous vs real-time chunking on the simulated transfer cube, with injected delays.

    nice -n 10 python benchmarks/rtc.py --episodes 30 --delays 0,2,4,6,8,10   # trains the policy first
    nice -n 10 python benchmarks/rtc.py --modes rtc --max-guidance 1 ...     # RTC with another guidance clip
    nice -n 10 python benchmarks/rtc.py --policy runs/demo/stages/sft/policy --episodes 100

The policy: an MLP flow policy (privileged object state, no cameras; hidden 384, depth 3, H = 20) trained by
behaviour cloning on 50 clean scripted demonstrations for 20,000 steps (about 26 minutes on a busy 2-core
machine; reused from --workdir when present), or any policy checkpoint given with --policy. Each cell runs the same episode seeds
with chunk length H, s executed actions per chunk and an inference delay of d control ticks injected in the
simulator (deterministic however loaded the machine is), for d = 0 .. H - s. Reported per cell: strict success
rate, throughput (successes per hour of robot time, holding included), the mean episode duration, ticks spent
holding per episode, and the joint jumps at chunk boundaries (radians, arm joints, between the
commanded actions of the tick before and the tick a new chunk takes over): the largest over all episodes and
the median over episodes of each episode's largest (the median step inside chunks is given for scale). Writes
the table to stdout and JSON (with every episode's largest jump) to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from recap import config as config_io
from recap.data import EpisodeStore
from recap.plugins import get_registry
from recap.rollout import Execution, collect, run_episode
from recap.train.checkpoint import load_policy
from recap.train.policy import train_policy
from recap.train.trainer import TrainerConfig

TASK = "transfer_cube"
ARM_JOINTS = [i for i in range(14) if i not in (6, 13)]  # grippers are 0..1, not radians
BACKEND = {"task": TASK, "cameras": [], "privileged_state": True, "time_limit": 400}


def config(kind: str, name: str, settings: dict):
    registry = get_registry()
    return config_io.from_dict(registry.get(kind, name).config, settings, registry)


def build(kind: str, name: str, settings: dict, *args):
    return get_registry().build(config(kind, name, settings), *args)


def train_demo_policy(workdir: Path, demos: int, steps: int) -> Path:
    """Collect clean scripted demonstrations and behaviour-clone an MLP flow policy (reused when present)."""
    checkpoint = workdir / "policy" / "policy"
    if (checkpoint / "model.safetensors").exists():
        return checkpoint
    store_dir = workdir / "demos"
    with build("backend", "aloha-sim", BACKEND) as backend:
        if not store_dir.exists():
            store = EpisodeStore.create(store_dir, backend.spec)
            demonstrator = build("demonstrator", "scripted", {}, backend)
            collect(backend, demonstrator, store, task=TASK, seeds=range(demos), progress=True)
        store = EpisodeStore.open(store_dir)
    policy = config(
        "policy",
        "mlp-flow",
        {"hidden": 384, "depth": 3, "chunk_size": 20, "uses_env_state": True, "min_std": 0.05},
    )
    train_policy(
        store,
        policy=policy,
        extractor=config("extractor", "advantage-conditioning", {"sft": True}),
        trainer=TrainerConfig(
            steps=steps,
            lr=1e-3,
            warmup_steps=min(200, steps // 5),
            weight_decay=1e-4,
            checkpoint_every=steps,
            log_every=max(1, steps // 10),
            progress=True,
        ),  # fmt: skip
        out_dir=workdir / "policy",
        batch_size=256,
        chunk_size=20,
    )
    return checkpoint


class CommandRecorder:
    """Wraps a backend and keeps the actions the runner commanded (before the backend's per-tick limits)."""

    def __init__(self, backend):
        self.backend, self.spec, self.labels_success = backend, backend.spec, backend.labels_success
        self.commands: list[torch.Tensor] = []

    def reset(self, task, seed=None):
        self.commands = []
        return self.backend.reset(task, seed)

    def step(self, action):
        self.commands.append(torch.as_tensor(action, dtype=torch.float32).clone())
        return self.backend.step(action)

    def close(self):
        self.backend.close()


def boundary_jumps(commands: torch.Tensor, switch_ticks: list[int]) -> tuple[float, float]:
    """(largest jump at chunk switches, median step elsewhere), arm joints, radians."""
    steps = (commands[1:, ARM_JOINTS] - commands[:-1, ARM_JOINTS]).abs().amax(-1)  # step into tick t+1
    at_switch = [float(steps[t - 1]) for t in switch_ticks if 1 <= t < len(commands)]
    inside = torch.ones(len(steps), dtype=torch.bool)
    inside[[t - 1 for t in switch_ticks if 1 <= t < len(commands)]] = False
    return max(at_switch, default=0.0), float(steps[inside].median()) if inside.any() else 0.0


def run_cell(
    backend, policy, deployment, mode: str, delay: int, execute: int, seeds: list[int], max_guidance: float
) -> dict:
    execution = Execution(mode, delay_ticks=delay, max_guidance=max_guidance)
    successes, durations, held, jumps, inside = 0, [], [], [], []
    for seed in seeds:
        record = run_episode(
            backend, policy, task=TASK, seed=seed, chunk_execute=execute, deployment=deployment,
            record_images=False, execution=execution,
        )  # fmt: skip
        successes += bool(record.success)
        durations.append(record.duration_s)
        log = record.execution
        held.append(len(log.held_ticks))
        largest, median = boundary_jumps(
            torch.stack(backend.commands), [c.start_tick for c in log.chunks[1:]]
        )
        jumps.append(largest)
        inside.append(median)
    hours = sum(durations) / 3600
    return {
        "mode": log.mode if log.mode != "rtc" else f"rtc (beta {max_guidance:g})",
        "delay_ticks": delay,
        "episodes": len(seeds),
        "success_rate": successes / len(seeds),
        "throughput_per_hour": successes / hours,
        "mean_duration_s": sum(durations) / len(seeds),
        "held_ticks_per_episode": sum(held) / len(seeds),
        "max_boundary_jump_rad": max(jumps),
        "median_boundary_jump_rad": sorted(jumps)[len(jumps) // 2],
        "episode_boundary_jumps_rad": jumps,
        "median_inner_step_rad": sorted(inside)[len(inside) // 2],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-rtc"))
    parser.add_argument("--policy", type=Path, default=None, help="policy checkpoint (default: train one)")
    parser.add_argument("--demos", type=int, default=50)
    parser.add_argument("--train-steps", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=100, help="episodes per cell (the spec: 100)")
    parser.add_argument("--execute", type=int, default=10, help="s: actions executed per chunk")
    parser.add_argument("--delays", type=str, default="", help="comma-separated ticks (default 0..H-s)")
    parser.add_argument("--modes", type=str, default="sync,naive,rtc")
    parser.add_argument("--max-guidance", type=float, default=5.0, help="RTC's clip on the guidance weight")
    parser.add_argument("--seed", type=int, default=1_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    checkpoint = args.policy or train_demo_policy(args.workdir, args.demos, args.train_steps)
    policy, deployment = load_policy(checkpoint)
    horizon = int(policy.chunk_size)
    delays = (
        [int(d) for d in args.delays.split(",")] if args.delays else list(range(horizon - args.execute + 1))
    )
    seeds = list(range(args.seed, args.seed + args.episodes))
    backend = CommandRecorder(build("backend", "aloha-sim", BACKEND))
    fps = backend.spec.fps
    rows = []
    print(
        f"policy {checkpoint}: H = {horizon}, s = {args.execute}, {args.episodes} episodes per cell",
        flush=True,
    )
    print(
        "| mode | d (ticks) | d (ms) | success | throughput (/h) | mean episode (s) | held ticks/ep | "
        "largest boundary jump (rad) | median episode's largest jump | median step inside chunks |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for delay in delays:
        for mode in args.modes.split(","):
            row = run_cell(backend, policy, deployment, mode, delay, args.execute, seeds, args.max_guidance)
            rows.append(row)
            print(
                f"| {row['mode']} | {delay} | {1000 * delay / fps:.0f} | {row['success_rate']:.2f} | "
                f"{row['throughput_per_hour']:.0f} | {row['mean_duration_s']:.2f} | "
                f"{row['held_ticks_per_episode']:.1f} | {row['max_boundary_jump_rad']:.3f} | "
                f"{row['median_boundary_jump_rad']:.3f} | {row['median_inner_step_rad']:.3f} |",
                flush=True,
            )
    backend.close()
    print(f"\n{len(rows)} cells in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    out = args.out or args.workdir / "rtc.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"policy": str(checkpoint), "horizon": horizon, "execute": args.execute, "rows": rows}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

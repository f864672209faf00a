"""How the evaluation episodes of loop runs end: the furthest task stage each failure reached, and where the
cube stood in the episodes that failed.

Reads ``stages/eval-*/eval.json`` of every run directory given (a ``recap loop`` or ``recap demo`` output, or
the ``seed-N`` directories of ``benchmarks/seeds.py``) and re-creates each evaluation episode's initial scene on
the simulator (``reset`` only, nothing is stepped) to read the cube's position:

    python benchmarks/failures.py runs/demo
    python benchmarks/failures.py runs/seeds/seed-*            # one table per run, then all runs pooled

Prints, per evaluation stage, the episodes by the furthest task stage reached (transfer cube: 0 reach, 1 grasp,
2 lift, 3 hand over, 4 held by the left gripper; the last split into failed and succeeded) and the success rate
on the near and far cubes: "far" is the fifth of the evaluation episodes with the largest cube y, the same split
for every run.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import attrs  # noqa: E402
import numpy as np  # noqa: E402
from recap_bimanual.sim.rules import SUBTASKS  # noqa: E402

from recap import config as recap_config  # noqa: E402
from recap.loop.config import LoopConfig  # noqa: E402
from recap.plugins import get_registry  # noqa: E402
from recap.rollout.collect import backend_for_task  # noqa: E402

STAGES = len(SUBTASKS["transfer_cube"])
FAR_SHARE = 0.2


def eval_stages(run_dir: Path) -> dict[str, dict]:
    """``{stage name: eval.json}`` of a run, in stage order (eval-pretrain first when present)."""
    found = {p.parent.name: json.loads(p.read_text()) for p in (run_dir / "stages").glob("eval-*/eval.json")}
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != "eval-pretrain", kv[0])))


def cube_positions(run_dir: Path, seeds: list[int]) -> dict[int, np.ndarray]:
    """The object position (x, y, z) at reset for each seed, on the run's own backend settings."""
    reg = get_registry()
    cfg = recap_config.load(run_dir / "config.toml", LoopConfig, reg)
    backend = reg.build(
        attrs.evolve(backend_for_task(cfg.backend, cfg.task), cameras=[], privileged_state=True)
    )
    try:
        return {s: backend.reset(cfg.task, s)["observation.environment_state"][:3].numpy() for s in seeds}
    finally:
        backend.close()


def stage_row(episodes: list[dict], far: set[int]) -> list[str]:
    ends = Counter(
        "success" if e["success"] else f"stage {min(e.get('max_stage') or 0, STAGES - 1)}" for e in episodes
    )
    cells = [str(ends.get(f"stage {k}", 0)) for k in range(STAGES)] + [str(ends.get("success", 0))]
    near_eps = [e for e in episodes if e["seed"] not in far]
    far_eps = [e for e in episodes if e["seed"] in far]
    for group in (near_eps, far_eps):
        wins = sum(bool(e["success"]) for e in group)
        cells.append(f"{wins}/{len(group)}")
    return cells


HEADER = [
    "| stage | ended at stage 0 | 1 | 2 | 3 | 4, failed | success | near cubes: success | far cubes: success |",
    "|---|---|---|---|---|---|---|---|---|",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="run directories (with stages/eval-*/eval.json)")
    args = ap.parse_args()
    pooled: dict[str, list[dict]] = {}
    labels: dict[str, str] = {}
    far: set[int] = set()
    for run_dir in args.runs:
        stages = eval_stages(run_dir)
        if not stages:
            raise SystemExit(f"{run_dir}: no stages/eval-*/eval.json; give a loop run directory")
        seeds = sorted({e["seed"] for data in stages.values() for e in data["episodes"]})
        if not far:
            poses = cube_positions(run_dir, seeds)
            ys = np.array([poses[s][1] for s in seeds])
            cut = np.quantile(ys, 1.0 - FAR_SHARE)
            far = {s for s in seeds if poses[s][1] > cut}
            print(f"far cubes: y > {cut:.3f} m ({len(far)} of {len(seeds)} evaluation episodes)\n")
        print(f"## {run_dir}\n")
        print("\n".join(HEADER))
        for name, data in stages.items():
            summary = json.loads((run_dir / "stages" / name / "summary.json").read_text())
            labels[name] = summary["label"]
            pooled.setdefault(name, []).extend(data["episodes"])
            print(f"| {summary['label']} | " + " | ".join(stage_row(data["episodes"], far)) + " |")
        print()
    if len(args.runs) > 1:
        print(f"## All {len(args.runs)} runs pooled\n")
        print("\n".join(HEADER))
        for name, episodes in pooled.items():
            print(f"| {labels[name]} | " + " | ".join(stage_row(episodes, far)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What a run's label sets call I = 1: the share of positive steps in successful and in failed episodes, split
into moving and still steps and by sub-task, for every ``label-*`` stage of the run.

    python benchmarks/label_quality.py runs/seeds/seed-0
    python benchmarks/label_quality.py runs/ablate/sf0.4-seed0 --store runs/seeds/seed-0/store --source demonstration

A good fine-tuning label set marks moving steps of successful episodes positive far more often than still
ones (the demonstrator's pauses) and keeps failed episodes' steps negative; steps recorded under a correction
are left out of the outcome rows (they are forced to I = 1 by default) and counted in rows of their own. "Still": no
state dimension moves more than ``--still`` per tick. Sub-tasks are ordered by where they first appear. A
second table gives the label set's mean value V at the first step of each sub-task, by outcome: where the
value function already tells a doomed episode from a good one.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recap.data.store import EpisodeStore


@dataclass(frozen=True)
class EpisodeSteps:
    """What the tables need of one episode's steps, read from the store once."""

    success: bool
    still: np.ndarray  # bool [T]
    forced: np.ndarray  # bool [T]: recorded under a correction
    subtask: np.ndarray  # int [T]: position of the step's sub-task in the run's order


def episode_steps(
    store: EpisodeStore, metas, still_below: float
) -> tuple[dict[str, EpisodeSteps], list[str]]:
    """Each episode's steps, and the sub-task texts ordered by their mean first step over the episodes."""
    raw, first = {}, defaultdict(list)
    for m in metas:
        arrays = store.arrays(m.episode_id)
        vocab = store.subtask_vocab(m.episode_id)
        texts = np.array([vocab[i] for i in np.asarray(arrays["subtask_index"])])
        for text in np.unique(texts):
            first[text].append(float(np.argmax(texts == text)) / max(len(texts), 1))
        state = np.asarray(arrays["observation.state"])
        still = np.abs(np.diff(state, axis=0, append=state[-1:])).max(1) < still_below
        raw[m.episode_id] = (
            bool(m.success),
            still,
            np.asarray(arrays["is_intervention"]).astype(bool),
            texts,
        )
    order = sorted(first, key=lambda text: np.mean(first[text]))
    number = {text: i for i, text in enumerate(order)}
    steps = {
        eid: EpisodeSteps(success, still, forced, np.array([number[t] for t in texts]))
        for eid, (success, still, forced, texts) in raw.items()
    }
    return steps, order


def rows_for(steps: dict[str, EpisodeSteps], labels: dict, subtasks: int) -> dict:
    """{row name: {column: [positive count, steps]}} over the episodes the label set covers."""
    table: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for eid, ep in steps.items():
        if eid not in labels:
            continue
        indicator = labels[eid]["indicator"].numpy().astype(bool)
        forced = ep.forced
        row = "successful" if ep.success else "failed"
        cells = {"all": ~forced, "moving": ~forced & ~ep.still, "still": ~forced & ep.still}
        cells.update({f"sub-task {i}": ~forced & (ep.subtask == i) for i in range(subtasks)})
        for column, mask in cells.items():
            table[row][column][0] += int(indicator[mask].sum())
            table[row][column][1] += int(mask.sum())
        table[f"{row}: under correction"]["all"][0] += int(indicator[forced].sum())
        table[f"{row}: under correction"]["all"][1] += int(forced.sum())
    return table


def values_at_subtask_start(steps: dict[str, EpisodeSteps], labels: dict) -> dict:
    """{outcome: {sub-task number: [V at the sub-task's first step, one per episode that reached it]}};
    empty when the label set holds no values."""
    out: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for eid, ep in steps.items():
        if eid not in labels:
            continue
        if "value" not in labels[eid]:
            return {}
        for i in np.unique(ep.subtask):
            t = int(np.argmax(ep.subtask == i))
            out["successful" if ep.success else "failed"][int(i)].append(float(labels[eid]["value"][t]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="loop run directories (with stages/label-*)")
    ap.add_argument("--store", type=Path, default=None, help="the store (default: RUN/store)")
    ap.add_argument("--source", nargs="*", default=None, help="only episodes of these sources")
    ap.add_argument("--still", type=float, default=0.003, help="per-tick motion below which a step is still")
    args = ap.parse_args()
    for run in args.runs:
        store_dir = args.store or run / "store"
        if not store_dir.is_dir():
            raise SystemExit(f"{store_dir}: no episode store; give the run's store with --store")
        store = EpisodeStore.open(store_dir)
        metas = [m for m in store.episodes() if args.source is None or m.source in args.source]
        if not metas:
            raise SystemExit(f"{store_dir}: no episodes of sources {args.source}")
        steps, order = episode_steps(store, metas, args.still)
        columns = ["all", "moving", "still"] + [f"sub-task {i}" for i in range(len(order))]
        stages = sorted((run / "stages").glob("label-*/summary.json"))
        if not stages:
            raise SystemExit(f"{run}: no stages/label-*/summary.json")
        label_sets = {
            p.parent.name: store.read_labels(json.loads(p.read_text())["label_set"]) for p in stages
        }
        print(f"## {run}\n")
        print("sub-tasks: " + "; ".join(f"{i} {t}" for i, t in enumerate(order)) + "\n")
        print("| label stage | steps of | " + " | ".join(columns) + " |")
        print("|---|---|" + "---|" * len(columns))
        for stage, labels in label_sets.items():
            table = rows_for(steps, labels, len(order))
            for row in ("successful", "failed", "successful: under correction", "failed: under correction"):
                cells = table.get(row)
                if not cells or not cells["all"][1]:
                    continue
                shown = [
                    f"{cells[c][0] / cells[c][1]:.0%} ({cells[c][1]})"
                    if cells.get(c) and cells[c][1]
                    else "-"
                    for c in columns
                ]
                print(f"| {stage} | {row} | " + " | ".join(shown) + " |")
        print()
        print("| label stage | mean V at the start of, in | " + " | ".join(columns[3:]) + " |")
        print("|---|---|" + "---|" * (len(columns) - 3))
        for stage, labels in label_sets.items():
            starts = values_at_subtask_start(steps, labels)
            for row in ("successful", "failed"):
                if row in starts:
                    cells = [
                        f"{np.mean(starts[row][i]):+.2f} ({len(starts[row][i])})" if starts[row][i] else "-"
                        for i in range(len(order))
                    ]
                    print(f"| {stage} | {row} episodes | " + " | ".join(cells) + " |")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

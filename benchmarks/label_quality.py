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
from pathlib import Path

import numpy as np

from recap.data.store import EpisodeStore


def subtask_order(store: EpisodeStore, metas) -> list[str]:
    """Sub-task texts ordered by their mean first step over the episodes."""
    first: dict[str, list[float]] = defaultdict(list)
    for m in metas:
        index = np.asarray(store.arrays(m.episode_id)["subtask_index"])
        vocab = store.subtask_vocab(m.episode_id)
        for i in np.unique(index):
            first[vocab[i]].append(float(np.argmax(index == i)) / max(len(index), 1))
    return sorted(first, key=lambda text: np.mean(first[text]))


def rows_for(store: EpisodeStore, label_set: str, metas, order: list[str], still_below: float) -> dict:
    """{row name: {column: [positive count, steps]}}."""
    table: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    covered = set(store.read_labels(label_set))
    for m in metas:
        if m.episode_id not in covered:
            continue
        arrays = store.arrays(m.episode_id)
        indicator = store.episode_labels(label_set, m.episode_id)["indicator"].numpy().astype(bool)
        state = np.asarray(arrays["observation.state"])
        still = np.abs(np.diff(state, axis=0, append=state[-1:])).max(1) < still_below
        forced = np.asarray(arrays["is_intervention"]).astype(bool)
        vocab = store.subtask_vocab(m.episode_id)
        subtask = np.array([vocab[i] for i in np.asarray(arrays["subtask_index"])])
        row = "successful" if m.success else "failed"
        cells = {"all": ~forced, "moving": ~forced & ~still, "still": ~forced & still}
        cells.update({f"sub-task {order.index(t)}": ~forced & (subtask == t) for t in order})
        for column, mask in cells.items():
            table[row][column][0] += int(indicator[mask].sum())
            table[row][column][1] += int(mask.sum())
        table[f"{row}: under correction"]["all"][0] += int(indicator[forced].sum())
        table[f"{row}: under correction"]["all"][1] += int(forced.sum())
    return table


def values_at_subtask_start(store: EpisodeStore, label_set: str, metas, order: list[str]) -> dict:
    """{outcome: {sub-task number: [V at the sub-task's first step, one per episode that reached it]}}."""
    out: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    covered = set(store.read_labels(label_set))
    for m in metas:
        if m.episode_id not in covered:
            continue
        labels = store.episode_labels(label_set, m.episode_id)
        if "value" not in labels:
            return {}
        vocab = store.subtask_vocab(m.episode_id)
        index = np.asarray(store.arrays(m.episode_id)["subtask_index"])
        for i in np.unique(index):
            t = int(np.argmax(index == i))
            out["successful" if m.success else "failed"][order.index(vocab[i])].append(
                float(labels["value"][t])
            )
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
        order = subtask_order(store, metas)
        columns = ["all", "moving", "still"] + [f"sub-task {i}" for i in range(len(order))]
        print(f"## {run}\n")
        print("sub-tasks: " + "; ".join(f"{i} {t}" for i, t in enumerate(order)) + "\n")
        print("| label stage | steps of | " + " | ".join(columns) + " |")
        print("|---|---|" + "---|" * len(columns))
        stages = sorted((run / "stages").glob("label-*/summary.json"))
        if not stages:
            raise SystemExit(f"{run}: no stages/label-*/summary.json")
        for summary_path in stages:
            label_set = json.loads(summary_path.read_text())["label_set"]
            table = rows_for(store, label_set, metas, order, args.still)
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
                print(f"| {summary_path.parent.name} | {row} | " + " | ".join(shown) + " |")
        print()
        print("| label stage | mean V at the start of, in | " + " | ".join(columns[3:]) + " |")
        print("|---|---|" + "---|" * (len(columns) - 3))
        for summary_path in stages:
            label_set = json.loads(summary_path.read_text())["label_set"]
            starts = values_at_subtask_start(store, label_set, metas, order)
            for row in ("successful", "failed"):
                if row in starts:
                    cells = [
                        f"{np.mean(starts[row][i]):+.2f} ({len(starts[row][i])})" if starts[row][i] else "-"
                        for i in range(len(order))
                    ]
                    print(f"| {summary_path.parent.name} | {row} episodes | " + " | ".join(cells) + " |")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

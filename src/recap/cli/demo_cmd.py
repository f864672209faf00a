"""``recap demo [--preset demo|smoke] [--out DIR] [overrides]``: the Recap loop on the simulated robot, then a
table per stage, plots and ``report.md`` in the run directory."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from recap import config as recap_config
from recap.cli.loop_cmd import parse_loop_args
from recap.data import EpisodeStore
from recap.loop import report
from recap.loop.recap_loop import STORE, LoopResult, run_loop
from recap.loop.seed_spread import load_spread, spread_section
from recap.plugins import get_registry
from recap.report.values import plot_advantage_histograms, plot_episode_values

DEFAULT_PRESET = "demo"


def main(args: Sequence[str]) -> int:
    args = list(args)
    preset = DEFAULT_PRESET
    if "--preset" in args:
        i = args.index("--preset")
        preset = args[i + 1] if i + 1 < len(args) else ""
        del args[i : i + 2]
    cfg = parse_loop_args([preset, *args], "recap demo")
    if not any(a == "--out" for a in args):
        cfg = attrs.evolve(cfg, out=Path("runs") / preset)
    started = time.perf_counter()
    result = run_loop(cfg)
    plots = write_plots(result)
    config_text = recap_config.dumps(cfg, "toml", get_registry())
    spread = spread_section(load_spread(), preset)
    path = report.write_report(result.run_dir, result.summaries, plots, config_text, spread)
    print()
    print(report.table_text(result.summaries))
    print()
    print("\n".join(spread).rstrip())
    print(f"\nreport: {path}   ({time.perf_counter() - started:.0f} s this invocation)")
    return 0


main.raw_args = True


def write_plots(result: LoopResult) -> dict[str, Path]:
    """Progress per evaluation, value curves of one success and one failure, the advantage histogram."""
    out = result.run_dir / "plots"
    out.mkdir(exist_ok=True)
    plots = {"Success and throughput per stage": report.plot_progress(result.summaries, out / "progress.png")}
    labels = [s for k, s in result.summaries.items() if k.startswith("label-") and "label_set" in s]
    if not labels:
        return plots
    last = labels[-1]
    store = EpisodeStore.open(result.run_dir / STORE)
    labelled = store.read_labels(last["label_set"])
    metas = [m for m in store.episodes() if m.episode_id in labelled]
    for outcome, title in ((True, "a success"), (False, "a failure")):
        pick = next((m for m in reversed(metas) if m.success is outcome), None)
        if pick is None:
            continue
        lab = labelled[pick.episode_id]
        steps = store.load(pick.episode_id).steps
        path = plot_episode_values(
            lab["value"],
            out / f"value_{'success' if outcome else 'failure'}.png",
            mc_return=lab.get("mc_return"),
            is_intervention=steps["is_intervention"],
            advantage=lab.get("advantage"),
            indicator=lab.get("indicator"),
            fps=pick.fps,
            title=f"{pick.episode_id} ({pick.source}, {'success' if outcome else 'failure'})",
        )
        plots[f"Value over {title} ({pick.source} episode)"] = path
    adv = {m.task: [] for m in metas}
    for m in metas:
        adv[m.task].append(labelled[m.episode_id]["advantage"])
    import torch

    plots["Advantages and threshold"] = plot_advantage_histograms(
        {t: torch.cat(v) for t, v in adv.items()}, last["thresholds"], out / "advantages.png"
    )
    return plots

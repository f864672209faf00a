"""The run's results as a table, plots and ``report.md``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = (
    "stage",
    "episodes",
    "success rate [95% CI]",
    "throughput /h [95% CI]",
    "time to success (s)",
    "intervention steps",
)


def _fmt_ci(value: float, ci: list[float], pct: bool = False) -> str:
    if pct:
        return f"{100 * value:.0f}% [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"
    return f"{value:.0f} [{ci[0]:.0f}, {ci[1]:.0f}]"


def _time(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def rows(summaries: dict[str, dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per stage that measured episodes: demonstrations, collections and evaluations."""
    out = []
    for name, s in summaries.items():
        m = s.get("episodes_metrics")
        if not m:
            continue
        out.append(
            (
                s.get("label", name),
                str(m["episodes"]),
                _fmt_ci(m["success_rate"], m["success_ci"], pct=True),
                _fmt_ci(m["throughput_per_hour"], m["throughput_ci"]),
                _time(m.get("mean_time_to_success_s")),
                f"{100 * m.get('intervention_share', 0.0):.1f}%",
            )
        )
    return out


def table_markdown(summaries: dict[str, dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(summaries)]
    return "\n".join(lines)


def table_text(summaries: dict[str, dict[str, Any]]) -> str:
    data = [COLUMNS, *rows(summaries)]
    widths = [max(len(r[i]) for r in data) for i in range(len(COLUMNS))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([fmt(data[0]), "  ".join("-" * w for w in widths), *map(fmt, data[1:])])


def plot_progress(summaries: dict[str, dict[str, Any]], path: Path) -> Path:
    """Success rate and throughput (with 95% CIs) for each evaluation stage."""
    evals = [
        (s.get("label", k), s["episodes_metrics"]) for k, s in summaries.items() if k.startswith("eval-")
    ]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    names = [n for n, _ in evals]
    for ax, key, ci, title, scale in (
        (axes[0], "success_rate", "success_ci", "success rate (%)", 100.0),
        (axes[1], "throughput_per_hour", "throughput_ci", "throughput (successes / hour)", 1.0),
    ):
        vals = [scale * m[key] for _, m in evals]
        lo = [scale * (m[key] - m[ci][0]) for _, m in evals]
        hi = [scale * (m[ci][1] - m[key]) for _, m in evals]
        ax.bar(names, vals, yerr=[lo, hi], capsize=4, color=["#888888"] + ["#2a7ab9"] * (len(vals) - 1))
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(
    run_dir: Path,
    summaries: dict[str, dict[str, Any]],
    plots: dict[str, Path],
    config_text: str,
    sections: Sequence[str] = (),
) -> Path:
    """``report.md``: what ran, the table, ``sections`` (markdown lines), the plots and where everything lives."""
    evals = [s for k, s in summaries.items() if k.startswith("eval-")]
    lines = [
        "# Recap run report",
        "",
        f"Run directory: `{run_dir}`. Each stage's config, metrics and checkpoints are under `stages/<stage>/`.",
        "",
        "## Results per stage",
        "",
        table_markdown(summaries),
        "",
        "Success rates carry Wilson 95% intervals; throughput (successful episodes per hour of robot time, failures",
        "counted at full length) carries a bootstrap 95% interval over episodes. Evaluation stages use the same seeds.",
        "",
    ]
    if len(evals) >= 2:
        first, last = evals[0]["episodes_metrics"], evals[-1]["episodes_metrics"]
        ratio = (
            last["throughput_per_hour"] / first["throughput_per_hour"]
            if first["throughput_per_hour"]
            else float("inf")
        )
        fail0, fail1 = 1 - first["success_rate"], 1 - last["success_rate"]
        lines += [
            "## Change from the first to the last evaluation",
            "",
            f"- throughput x{ratio:.2f} ({first['throughput_per_hour']:.0f} -> {last['throughput_per_hour']:.0f} per hour)",
            f"- failure rate {100 * fail0:.0f}% -> {100 * fail1:.0f}%",
            "",
        ]
    lines += sections
    for title, path in plots.items():
        lines += [f"## {title}", "", f"![{title}]({path.relative_to(run_dir)})", ""]
    lines += ["## Resolved configuration", "", "```toml", config_text.rstrip(), "```", ""]
    out = run_dir / "report.md"
    out.write_text("\n".join(lines))
    return out

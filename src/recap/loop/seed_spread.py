"""What one run means: the spread of the loop's results across run seeds, as ``benchmarks/seeds.py`` measured
it (``seed_spread.json`` beside this module, written only by that benchmark's ``--aggregate --package-data``),
printed in ``recap demo``'s report beside the run's own numbers.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

SPREAD_FILE = "seed_spread.json"

#: (key in the file, column title, scale, format) of each metric
METRICS = (
    ("success_rate", "success", 100.0, "{:.0f}%"),
    ("throughput_per_hour", "throughput /h", 1.0, "{:.0f}"),
    ("failure_rate", "failure rate", 100.0, "{:.0f}%"),
    ("mean_time_to_success_s", "time to success (s)", 1.0, "{:.2f}"),
    ("late_failure_rate", "late failures", 100.0, "{:.0f}%"),
)


def load_spread() -> dict[str, Any] | None:
    """The measured spread shipped with the package, or None when the benchmark has not written one."""
    path = resources.files("recap.loop") / SPREAD_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _cell(stats: list[float | None] | None, scale: float, fmt: str) -> str:
    if not stats or stats[0] is None:
        return "-"
    mean, lo, hi = (math.nan if x is None else scale * x for x in stats)
    if math.isnan(lo):
        return fmt.format(mean)
    return f"{fmt.format(mean)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def spread_table(spread: dict[str, Any]) -> list[str]:
    """Markdown rows: per evaluation stage, the mean across seeds with its 95% interval."""
    lines = [
        "| stage | " + " | ".join(title for _, title, _, _ in METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for row in spread["stages"]:
        cells = [_cell(row["metrics"].get(key), scale, fmt) for key, _, scale, fmt in METRICS]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return lines


def spread_section(spread: dict[str, Any] | None, preset: str) -> list[str]:
    """The report's section on what one run means, for a run of ``preset``."""
    lines = ["## What one run means: the spread across seeds", ""]
    if spread is None:
        return [
            *lines,
            "No multi-seed measurement ships with this installation; `python benchmarks/seeds.py --help` says",
            "how to measure one.",
            "",
        ]
    seeds = ", ".join(str(s) for s in spread["seeds"])
    overrides = " ".join(spread.get("overrides", []))
    measured = f"`{spread['preset']}` preset" + (f" with `{overrides}`" if overrides else "")
    lines += [
        f"`benchmarks/seeds.py` ran the {measured} for run seeds {seeds} ({spread['iterations']}"
        f" iteration(s), {spread['machine']}, {spread['date']}); mean across seeds with a Student-t 95%"
        " interval (cut at 0 and 100%):",
        "",
        *spread_table(spread),
        "",
    ]
    if spread["preset"] != preset or overrides:
        lines += [
            f"This spread was measured on the {measured}, not on this run's `{preset}` settings, so it is not"
            " the spread of this run. Measure it for these settings:",
            "",
            f"    {_command_for(spread, preset)}",
            "",
        ]
    else:
        lines += [f"Regenerate: `{_command_for(spread, preset)}`", ""]
    return lines


def _command_for(spread: dict[str, Any], preset: str) -> str:
    """The benchmark's command for ``preset`` at its own size (the measured run's overrides left out)."""
    command = spread["command"].replace("{preset}", preset)
    overrides = " ".join(spread.get("overrides", []))
    return command.replace(f" -- {overrides}", "") if overrides else command

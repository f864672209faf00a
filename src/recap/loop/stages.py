"""A run directory made of stages, each done once: a killed run resumes at the stage it was in.

A stage writes its outputs under ``<run>/stages/<name>/`` and, last, ``summary.json`` (atomically). A stage
with a summary is complete and is skipped on resume; an incomplete stage runs again and its own resumable
parts (the trainer's checkpoints, collection progress) pick up where they stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recap.data.atomic_json import write_json_atomic

SUMMARY = "summary.json"


class StageRunner:
    """Runs named stages in order, skipping completed ones and recording what each produced."""

    def __init__(self, run_dir: Path, log: Callable[[str], None] = print) -> None:
        self.run_dir = Path(run_dir)
        self.log = log
        (self.run_dir / "stages").mkdir(parents=True, exist_ok=True)

    def dir(self, name: str) -> Path:
        return self.run_dir / "stages" / name

    def summary(self, name: str) -> dict[str, Any] | None:
        path = self.dir(name) / SUMMARY
        return json.loads(path.read_text()) if path.exists() else None

    def run(self, name: str, fn: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """Run ``fn(stage_dir) -> summary`` unless the stage already completed; return its summary."""
        done = self.summary(name)
        if done is not None:
            self.log(f"[{name}] done earlier, skipping")
            return done
        stage_dir = self.dir(name)
        stage_dir.mkdir(parents=True, exist_ok=True)
        self.log(f"[{name}] running")
        started = time.perf_counter()
        summary = dict(fn(stage_dir))
        summary.setdefault("stage", name)
        summary["wall_s"] = round(time.perf_counter() - started, 2)
        write_json_atomic(stage_dir / SUMMARY, summary)
        self.log(f"[{name}] finished in {summary['wall_s']:.0f} s")
        return summary

    def completed(self) -> list[str]:
        return sorted(p.parent.name for p in (self.run_dir / "stages").glob(f"*/{SUMMARY}"))

"""Start a loop run from a finished run's experience: re-run iteration K onward with other training settings.

On a robot the episodes are the expensive part. ``fork_run`` makes a new run directory that holds a finished
run's stages up to and including ``collect-K`` and every episode recorded up to collection K (with their label
sets), so ``run_loop`` on the new directory resumes at ``value-K`` with the new config: the value function, the
labels and the policy of iteration K, and everything after it, are trained again; nothing is recorded again
before collection K + 1. The source run is only read.

Only settings that the kept stages did not use may differ from the source run's (the iteration's value, labeler
and policy training, the number of iterations and the output directory); anything else is an error, because the
kept stages would not be what the new config makes.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from recap import config as recap_config
from recap.data import EpisodeStore
from recap.data.atomic_json import write_json_atomic
from recap.errors import ConfigError
from recap.loop.config import LoopConfig
from recap.loop.run import STORE
from recap.loop.stages import SUMMARY

#: LoopConfig fields that only stages from ``value-K`` on read, so a fork at K may change them
ITERATION_FIELDS = (
    "out",
    "iterations",
    "value_finetune",
    "finetune_labeler",
    "policy_finetune",
    "iteration_policy",
)
FORKED_FROM = "forked_from.json"
_ITERATION_OF_STAGE = re.compile(r"-(\d+)$")


def kept_stage(name: str, through: int) -> bool:
    """Whether stage ``name`` of the source is kept by a fork at iteration ``through``: the stages before the
    loop, those of earlier iterations, and the collection of iteration ``through``."""
    match = _ITERATION_OF_STAGE.search(name)
    return match is None or int(match.group(1)) < through or name == f"collect-{through}"


def fork_run(source: Path, cfg: LoopConfig, registry: Any, through: int) -> dict[str, Any]:
    """Make ``cfg.out`` a run that shares ``source``'s stages and episodes through collection ``through``.

    Returns what was copied (also written to ``cfg.out/forked_from.json``).
    """
    source, out = Path(source), Path(cfg.out)
    if out.resolve() == source.resolve():
        raise ConfigError(f"fork {source} into a new directory, not into itself")
    if (out / "stages").exists() or (out / STORE).exists():
        raise ConfigError(
            f"{out} already holds a run; fork into a new directory (or resume it with run_loop)"
        )
    source_cfg = recap_config.load(source / "config.toml", LoopConfig, registry)
    _check_compatible(source_cfg, cfg, registry, source)
    collect = source / "stages" / f"collect-{through}"
    if through < 1 or not (collect / SUMMARY).exists():
        raise ConfigError(
            f"{source}: stage collect-{through} has not finished; fork at an iteration K >= 1 whose collection "
            "the source run completed"
        )
    if cfg.iterations < through:
        raise ConfigError(f"the fork re-runs iteration {through}, so iterations must be >= {through}")

    stages = sorted(
        p.name
        for p in (source / "stages").iterdir()
        if (p / SUMMARY).exists() and kept_stage(p.name, through)
    )
    (out / "stages").mkdir(parents=True)
    for name in stages:
        shutil.copytree(source / "stages" / name, out / "stages" / name)

    src_store = EpisodeStore.open(source / STORE)
    store = EpisodeStore.create(
        out / STORE,
        src_store.spec,
        image_codec=src_store.image_codec,
        keyframe_interval=src_store.keyframe_interval,
    )
    kept = [m for m in src_store.episodes() if m.iteration is not None and m.iteration <= through]
    for meta in kept:
        store.copy_episode(src_store, meta.episode_id)
    # the kept label stages' sets label only kept episodes; later ones belong to stages that run again
    label_sets = sorted({s["label_set"] for s in (_summary(out, n) for n in stages) if "label_set" in s})
    for name in label_sets:
        store.copy_label_set(src_store, name)
    record = {
        "source": str(source),
        "through_iteration": through,
        "stages": stages,
        "episodes": len(kept),
        "label_sets": label_sets,
    }
    write_json_atomic(out / FORKED_FROM, record)
    recap_config.dump(cfg, out / "config.toml", registry)
    return record


def _summary(run: Path, stage: str) -> dict[str, Any]:
    return json.loads((run / "stages" / stage / SUMMARY).read_text())


def _check_compatible(source_cfg: LoopConfig, cfg: LoopConfig, registry: Any, source: Path) -> None:
    before = recap_config.to_dict(source_cfg, registry)
    after = recap_config.to_dict(cfg, registry)
    changed = sorted(
        k for k in before.keys() | after.keys() if k not in ITERATION_FIELDS and before.get(k) != after.get(k)
    )
    if changed:
        raise ConfigError(
            f"a fork of {source} keeps its stages up to the collection, so these settings must stay the "
            f"source's: {changed} (only {list(ITERATION_FIELDS)} may change); differing: "
            + json.dumps({k: [before.get(k), after.get(k)] for k in changed}, default=str)[:600]
        )

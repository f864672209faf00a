"""Normalisation statistics that come with a checkpoint: openpi's ``norm_stats.json`` (``{"norm_stats": {"state":
{"mean", "std", "q01", "q99"}, "actions": {...}}}``, per-dimension lists, possibly padded past the robot's
dimensions) as recap ``NormStats`` for a robot spec."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from recap.data import keys
from recap.data.spec import RobotSpec
from recap.data.stats import FeatureStats, NormStats
from recap.errors import ConfigError

#: openpi's feature names -> recap's
OPENPI_FEATURES = {"state": keys.STATE, "actions": keys.ACTION}
STATS_FILE = "norm_stats.json"


def find_norm_stats(checkpoint: Path) -> Path | None:
    """``norm_stats.json`` beside the checkpoint or in openpi's ``assets/<robot>/``; refuses to guess between
    several."""
    root = checkpoint if checkpoint.is_dir() else checkpoint.parent
    found = (
        [root / STATS_FILE] if (root / STATS_FILE).exists() else sorted(root.glob(f"assets/*/{STATS_FILE}"))
    )
    if len(found) > 1:
        raise ConfigError(
            f"several statistics files beside the checkpoint: {[str(p) for p in found]}; pick one with --norm-stats"
        )
    return found[0] if found else None


def read_openpi_norm_stats(path: Path, spec: RobotSpec) -> NormStats:
    """The file's state and action statistics, cut to the spec's dimensions (openpi pads them to 32)."""
    try:
        table = json.loads(path.read_text())["norm_stats"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path} is not an openpi norm_stats.json (no 'norm_stats' table): {exc}") from None
    dims = {keys.STATE: spec.state_dim, keys.ACTION: spec.action_dim}
    features = {}
    for name, key in OPENPI_FEATURES.items():
        if name not in table:
            raise ConfigError(f"{path} has no statistics for {name!r} (has {sorted(table)})")
        entry = table[name]
        missing = [s for s in ("mean", "std", "q01", "q99") if s not in entry]
        if missing:
            raise ConfigError(f"{path}: {name!r} lacks {missing}; the quantile normaliser needs q01 and q99")
        values = {s: torch.tensor(entry[s], dtype=torch.float32) for s in ("mean", "std", "q01", "q99")}
        if values["mean"].shape[0] < dims[key]:
            raise ConfigError(
                f"{path}: {name!r} has {values['mean'].shape[0]} dimensions, the robot spec needs {dims[key]}"
            )
        features[key] = FeatureStats(**{s: v[: dims[key]] for s, v in values.items()})
    return NormStats(features)

"""``recap config list|show|dump``: presets are data; these print and export them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import tyro

from recap import config
from recap.plugins import get_registry


def list_presets() -> int:
    """List registered presets with their config class and the distribution that supplied them."""
    reg = get_registry()
    for name in reg.names("preset"):
        print(f"{name:<28} {reg.preset_class(name).__name__:<24} {reg.get('preset', name).distribution}")
    return 0


def show(preset: tyro.conf.Positional[str], format: Literal["toml", "json"] = "toml") -> int:
    """Print a preset's resolved config.

    Args:
        preset: a registered preset name (see `recap config list`).
        format: output format.
    """
    reg = get_registry()
    print(config.dumps(config.resolve_preset(preset, reg), format, reg), end="")
    return 0


def dump(preset: tyro.conf.Positional[str], path: tyro.conf.Positional[Path]) -> int:
    """Write a preset to PATH (.toml or .json) to edit and pass back with --config.

    Args:
        preset: a registered preset name.
        path: destination file.
    """
    reg = get_registry()
    out = config.dump(config.resolve_preset(preset, reg), path, reg)
    print(f"wrote {out}")
    return 0

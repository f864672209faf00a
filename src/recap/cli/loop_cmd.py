"""``recap loop PRESET [--config FILE] [overrides]``: Algorithm 1 from a named preset.

``recap loop --fork-from RUN [--fork-at K] --out NEW [overrides]`` re-runs iteration K onward of a finished run
with changed iteration settings, on the episodes it already recorded (``recap.loop.fork``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from recap import config
from recap.errors import ConfigError, did_you_mean
from recap.loop.config import LoopConfig
from recap.plugins import get_registry

LOOP_HELP = """Pre-train, SFT, then iterate: collect, value, relabel, policy, evaluate.

A `kind:name` switch picks a registered implementation; `--field.setting value` sets one of its settings.
Options may come before or after any switch: each goes to its own field. Booleans take `--flag`,
`--no-flag` or `--flag True/False`. For example, the pi0.6-style VLA with two cameras and a watching expert:

    {prog} smoke policy:pi06 --policy.chunk-size 10 --chunk-size 10 --backend.cameras cam_high cam_left_wrist
        expert:scripted-expert --collect.eval-episodes 10 --out runs/pi06

(evaluation renders the cameras the policy reads; `recap config show smoke` prints every setting)."""


def loop_presets(registry) -> list[str]:
    return [n for n in registry.names("preset") if registry.preset_class(n) is LoopConfig]


def parse_loop_args(args: Sequence[str], prog: str, default_preset: str | None = None) -> LoopConfig:
    """Resolve ``PRESET`` (or ``--config FILE``) and apply ``--a.b value`` overrides."""
    from recap.cli.overrides import parse

    reg = get_registry()
    args = list(args)
    names = loop_presets(reg)
    base: LoopConfig | None = None
    if "--config" in args:
        base = config.load(
            _pop_option(args, "--config", "a path to a .toml or .json loop config"), LoopConfig, reg
        )
    elif args and not args[0].startswith("-"):
        name = args.pop(0)
        if name not in names:
            raise ConfigError(f"no loop preset named {name!r}; presets: {names}.{did_you_mean(name, names)}")
        base = config.resolve_preset(name, reg)
    elif default_preset is not None and not any(a in ("-h", "--help") for a in args[:1]):
        base = config.resolve_preset(default_preset, reg)
    if base is None:
        if not names:
            raise ConfigError("no loop presets are registered; install the recap plugins (see README)")
        print(f"usage: {prog} PRESET [--config FILE] [--field.sub value ...]\npresets: {', '.join(names)}")
        if any(a in ("-h", "--help") for a in args):
            base = config.resolve_preset(names[0], reg)
        else:
            sys.exit(2)
    return parse(LoopConfig, base, args, prog, LOOP_HELP.format(prog=prog), reg)


def _pop_option(args: list[str], flag: str, expected: str) -> str:
    i = args.index(flag)
    if i + 1 >= len(args) or args[i + 1].startswith("--"):
        raise ConfigError(f"{flag} needs {expected}")
    value = args[i + 1]
    del args[i : i + 2]
    return value


def main(args: Sequence[str]) -> int:
    from recap.loop.recap_loop import run_loop

    args = list(args)
    fork = None
    if "--fork-from" in args:
        source = Path(_pop_option(args, "--fork-from", "a finished run directory"))
        at = _pop_option(args, "--fork-at", "the iteration K to re-run from") if "--fork-at" in args else "1"
        if not at.isdigit():
            raise ConfigError(f"--fork-at needs an iteration number K >= 1, got {at!r}")
        fork = (source, int(at))
        if "--config" not in args and (not args or args[0].startswith("-")):
            args = ["--config", str(source / "config.toml"), *args]  # the source's settings, then overrides
    cfg = parse_loop_args(args, "recap loop")
    if fork is not None:
        from recap.loop.fork import fork_run

        record = fork_run(fork[0], cfg, get_registry(), fork[1])
        print(
            f"forked {record['episodes']} episodes and {len(record['stages'])} stages of {fork[0]} into {cfg.out}"
        )
    result = run_loop(cfg)
    print(f"run directory: {result.run_dir}")
    return 0


main.raw_args = True

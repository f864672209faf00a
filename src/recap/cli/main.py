"""``recap`` — dispatches ``recap <command> [<sub>] ...`` to a tyro-parsed function.

Each command is ``module:function``; the function's typed signature (or a config class) is the CLI, so every
field is overridable with ``--a.b value``. Modules are imported only when their command runs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import tyro

from recap.errors import RecapError, did_you_mean

#: command words -> ("module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("recap.cli.plugins_cmd:plugins", "list loaded plugins and what they registered"),
    "config list": ("recap.cli.config_cmd:list_presets", "list the registered presets"),
    "config show": ("recap.cli.config_cmd:show", "print a preset as TOML or JSON"),
    "config dump": ("recap.cli.config_cmd:dump", "write a preset to a .toml/.json file to edit and reuse"),
}


def _usage() -> str:
    width = max(len(k) for k in COMMANDS)
    rows = "\n".join(f"  recap {k:<{width}}  {h}" for k, (_, h) in sorted(COMMANDS.items()))
    return f"usage: recap <command> [options]\n\ncommands:\n{rows}\n\n`recap <command> --help` shows its options."


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from recap import __version__

        print(__version__)
        return 0
    for n_words in (2, 1):
        key = " ".join(args[:n_words])
        if len(args) >= n_words and key in COMMANDS:
            target, _ = COMMANDS[key]
            module, func = target.split(":")
            fn = getattr(importlib.import_module(module), func)
            try:
                result = tyro.cli(fn, args=args[n_words:], prog=f"recap {key}")
            except RecapError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            return result if isinstance(result, int) else 0
    groups = sorted({k.split()[0] for k in COMMANDS})
    print(
        f"error: unknown command {args[0]!r}.{did_you_mean(args[0], groups)}\n\n{_usage()}", file=sys.stderr
    )
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

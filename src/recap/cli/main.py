"""``recap`` — dispatches ``recap <command> [<sub>] ...`` to a tyro-parsed function.

Each command is ``module:function``; the function's typed signature (or a config class) is the CLI, so every
field is overridable with ``--a.b value``. Modules are imported only when their command runs.
"""

from __future__ import annotations

import importlib
import signal
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
    "data info": ("recap.cli.data_cmd:info", "episode store: counts by task/source/success, hours, disk use"),
    "data label-success": ("recap.cli.data_cmd:label_success", "label an episode success/failure (or clear)"),
    "data transcode": (
        "recap.cli.data_cmd:transcode_cmd",
        "copy a store to another image codec (raw, zlib, av1, h264, lossless), verified frame by frame",
    ),
    "data import-lerobot": (
        "recap.cli.data_cmd:import_lerobot_cmd",
        "import a LeRobot v3 dataset into a store",
    ),
    "data export-lerobot": (
        "recap.cli.data_cmd:export_lerobot_cmd",
        "export a store as a LeRobot v3 dataset",
    ),
    "train-value": ("recap.cli.train_value_cmd:main", "train (or fine-tune) a value estimator; resumable"),
    "label": ("recap.cli.label_cmd:label", "value a store and write advantages/indicators as a label set"),
    "plot-values": (
        "recap.cli.plot_cmd:plot_values",
        "plot an episode's values and per-task advantage histograms",
    ),
    "train-policy": ("recap.cli.train_policy_cmd:main", "train a policy with any registered extractor"),
    "loop": ("recap.cli.loop_cmd:main", "run (or resume) the Recap loop from a preset"),
    "demo": ("recap.cli.demo_cmd:main", "the Recap loop on the simulated robot, with a report"),
    "review": ("recap.cli.review_cmd:review", "review and label episodes in the browser (local web app)"),
    "collect": (
        "recap.cli.collect_cmd:collect",
        "record demonstrator/policy episodes (+ interventions) into a store",
    ),
    "serve": ("recap.cli.serve_cmd:serve", "serve a policy checkpoint to robots (openpi WebSocket protocol)"),
    "weights import": (
        "recap.cli.weights_cmd:import_weights",
        "import downloaded pi0 / pi0.5 / PaliGemma / Gemma 3 weights as a recap policy or value model",
    ),
    "evaluate": (
        "recap.cli.evaluate_cmd:evaluate",
        "success rate, throughput (95% CI), time to success on fixed seeds",
    ),
}


def _usage() -> str:
    width = max(len(k) for k in COMMANDS)
    rows = "\n".join(f"  recap {k:<{width}}  {h}" for k, (_, h) in sorted(COMMANDS.items()))
    return f"usage: recap <command> [options]\n\ncommands:\n{rows}\n\n`recap <command> --help` shows its options."


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `recap ... | head` ends quietly
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
                if getattr(fn, "raw_args", False):  # commands that build their CLI from presets
                    result = fn(args[n_words:])
                else:
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

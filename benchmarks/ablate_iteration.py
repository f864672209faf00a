"""Re-run one Recap iteration of a finished loop run with one thing changed, and evaluate it like the loop.

Takes the run's store, value function ``value-K`` and pre-trained policy as they are, relabels when a labeler
setting (or the value function) changes, trains ``policy-K`` again with the variant (fine-tuned from pi_pre, or
retrained from fresh weights with ``--iteration-policy retrain``), and evaluates it on the loop's evaluation
seeds with the loop's execution settings. The original run directory is read, never changed, except that a
relabelling adds its label set to the run's store (a new name; existing label sets are untouched).

    python benchmarks/ablate_iteration.py runs/demo --out runs/ablate/seed+1 --trainer-seed-offset 1
    python benchmarks/ablate_iteration.py runs/demo --out runs/ablate/no-corrections --drop-source correction
    python benchmarks/ablate_iteration.py runs/demo --out runs/ablate/no-forcing --force-interventions false
    python benchmarks/ablate_iteration.py runs/demo --out runs/ablate/mc --mode monte_carlo --steps 5000
    python benchmarks/ablate_iteration.py runs/demo --out runs/ablate/fresh-indicator --reinit indicator_embed

``--out`` becomes a run directory of its own (``config.toml``, ``stages/label-K``, ``policy-K``, ``eval-K``),
so ``benchmarks/failures.py OUT`` reads it like a loop run. Prints the evaluation summary as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import attrs
import torch

from recap import config as recap_config
from recap.data import EpisodeStore
from recap.loop.config import ITERATION_POLICIES, LoopConfig
from recap.loop.experience import evaluate_policy
from recap.loop.run import STORE, LoopRun
from recap.loop.stages import StageRunner
from recap.loop.training_stages import (
    iteration_policy_training,
    label_stage,
    policy_checkpoint,
    train_policy_stage,
    value_checkpoint,
)
from recap.plugins import get_registry
from recap.train.checkpoint import WEIGHTS, load_policy, write_safetensors


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a finished loop run directory (recap loop / recap demo --out)")
    ap.add_argument("--out", type=Path, required=True, help="where the variant's stages go")
    ap.add_argument("--iteration", type=int, default=1, help="the iteration K to re-run")
    ap.add_argument("--trainer-seed-offset", type=int, default=0, help="added to policy-K's trainer seed")
    ap.add_argument(
        "--drop-source", nargs="*", default=[], help="episode sources left out of policy-K's data"
    )
    ap.add_argument("--force-interventions", type=_bool, default=None, help="relabel with this setting")
    ap.add_argument(
        "--force-failed-interventions", type=_bool, default=None, help="relabel with this setting"
    )
    ap.add_argument("--positive-fraction", type=float, default=None, help="relabel with this setting")
    ap.add_argument("--lookahead", type=int, default=None, help="relabel with this n-step lookahead N")
    ap.add_argument(
        "--successful-only",
        type=_bool,
        default=None,
        help="relabel with this setting (positives only in successes)",
    )
    ap.add_argument(
        "--mode", choices=("nstep", "monte_carlo"), default=None, help="relabel with this advantage"
    )
    ap.add_argument(
        "--value-stage", default=None, help="relabel with this stage's value function (value-pretrain)"
    )
    ap.add_argument("--label-set", default=None, help="train on this label set of the run's store instead")
    ap.add_argument(
        "--iteration-policy",
        choices=ITERATION_POLICIES,
        default=None,
        help="train policy-K this way (retrain: from fresh weights with the pre-training settings; continue: from policy-(K-1))",
    )
    ap.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: the run's)")
    ap.add_argument(
        "--reinit",
        default=None,
        help="re-initialise pi_pre's weights whose names contain this (e.g. indicator_embed) before fine-tuning",
    )
    ap.add_argument(
        "--ema-decay", type=float, default=None, help="deploy an exponential moving average of the weights"
    )
    ap.add_argument(
        "--eval-episodes", type=int, default=None, help="evaluation episodes (default: the run's)"
    )
    args = ap.parse_args()

    reg = get_registry()
    k = args.iteration
    original = StageRunner(args.run, log=lambda _: None)
    if original.summary(f"value-{k}") is None:
        raise SystemExit(f"{args.run}: stage value-{k} has not finished; ablate a run that reached it")
    cfg = attrs.evolve(recap_config.load(args.run / "config.toml", LoopConfig, reg), out=args.out)
    if args.iteration_policy is not None:
        cfg = attrs.evolve(cfg, iteration_policy=args.iteration_policy)
    if args.eval_episodes is not None:
        cfg = attrs.evolve(cfg, collect=attrs.evolve(cfg.collect, eval_episodes=args.eval_episodes))
    args.out.mkdir(parents=True, exist_ok=True)
    recap_config.dump(cfg, args.out / "config.toml", reg)
    run = LoopRun(cfg, reg, EpisodeStore.open(args.run / STORE), StageRunner(args.out, print), print, False)

    changes = {
        name: value
        for name, value in (
            ("force_interventions", args.force_interventions),
            ("force_failed_interventions", args.force_failed_interventions),
            ("positive_fraction", args.positive_fraction),
            ("lookahead", args.lookahead),
            ("successful_only", args.successful_only),
            ("mode", args.mode),
        )
        if value is not None
    }
    relabel = bool(changes) or args.value_stage is not None
    if relabel and args.label_set:
        raise SystemExit("--label-set and relabelling options exclude each other")
    if args.label_set:
        label_set = args.label_set
    elif relabel:
        label_set = run.stage(
            f"label-{k}",
            label_stage,
            value=value_checkpoint(original.dir(args.value_stage or f"value-{k}")),
            labeler=attrs.evolve(cfg.finetune_labeler, **changes),
            episodes=run.experience_through(k),
        ).summary["label_set"]
    else:
        label_set = original.summary(f"label-{k}")["label_set"]
    episodes = [m for m in run.experience_through(k) if m.source not in set(args.drop_source)]
    previous = policy_checkpoint(original.dir(f"policy-{k - 1}")) if k > 1 else None
    training, init_from = iteration_policy_training(
        cfg, policy_checkpoint(original.dir("policy-pretrain")), previous
    )
    trainer = attrs.evolve(training.trainer, seed=training.trainer.seed + args.trainer_seed_offset)
    if args.steps is not None:
        trainer = attrs.evolve(trainer, steps=args.steps)
    if args.ema_decay is not None:
        trainer = attrs.evolve(trainer, ema_decay=args.ema_decay)
    training = attrs.evolve(training, trainer=trainer)
    if args.reinit is not None:
        if init_from is None:
            raise SystemExit(
                "--reinit changes pi_pre's weights; it has nothing to do with --iteration-policy retrain"
            )
        init_from = _reinitialised(init_from, args.reinit, args.out / "init", trainer.seed, reg)
    policy = policy_checkpoint(
        run.stage(
            f"policy-{k}",
            train_policy_stage,
            extractor=cfg.extractor,
            training=training,
            label_set=label_set,
            episodes=episodes,
            init_from=init_from,
        ).dir
    )
    summary = run.stage(
        f"eval-{k}", evaluate_policy, policy=policy, label=f"Recap iter {k} (variant)"
    ).summary
    print(
        json.dumps(
            {"variant": vars(args) | {"run": str(args.run), "out": str(args.out)}, **summary}, default=str
        )
    )
    return 0


def _reinitialised(checkpoint: Path, part: str, out: Path, seed: int, reg) -> Path:
    """A copy of the policy ``checkpoint`` whose modules named with ``part`` are initialised afresh (seeded)."""
    model, _ = load_policy(checkpoint, reg)
    names = [n for n, m in model.named_modules() if part in n and hasattr(m, "reset_parameters")]
    if not names:
        raise SystemExit(f"no module of {checkpoint} has {part!r} in its name")
    torch.manual_seed(seed)
    for name in names:
        model.get_submodule(name).reset_parameters()
    shutil.copytree(checkpoint, out, dirs_exist_ok=True)
    write_safetensors(model.state_dict(), out / WEIGHTS)
    return out


if __name__ == "__main__":
    raise SystemExit(main())

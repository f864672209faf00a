"""``recap train-value``: train (or fine-tune) a value estimator on an episode store; resumable.

No ``from __future__ import annotations`` here: the CLI copies these attrs fields into a generated class, so
their types must be real types, not strings.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from recap import config
from recap.config import ValueEstimatorConfig
from recap.data import EpisodeStore
from recap.errors import ConfigError, PluginError
from recap.plugins import get_registry
from recap.train.trainer import TrainerConfig
from recap.train.value import ValueTrainingResult, train_value

DEFAULT_ESTIMATOR = "distributional"


@attrs.frozen
class TrainValueConfig:
    """One value-training run.

    Attributes:
        store: the EpisodeStore directory.
        out: run directory: ``out/value`` is the finished checkpoint (pass it to `recap label --value`),
            ``out/train`` holds resumable checkpoints, ``metrics.jsonl`` and the resolved config.
        value: the value estimator, by registered name (``name = "distributional"`` in a config file).
        trainer: optimisation settings.
        batch_size: global batch of (o_t, R_t) samples (split over ranks under torchrun).
        init_from: a value checkpoint to fine-tune (Recap fine-tunes from the pre-trained value model).
        task / source / policy_version / robot_id: train only on matching episodes.
        skip_unlabelled: leave out episodes without a success label instead of refusing.
        cameras: cameras to read (default: all).
    """

    store: Path
    out: Path
    value: ValueEstimatorConfig
    trainer: TrainerConfig = attrs.field(factory=TrainerConfig)
    batch_size: int = 64
    init_from: Path | None = None
    task: str | None = None
    source: str | None = None
    policy_version: str | None = None
    robot_id: str | None = None
    skip_unlabelled: bool = False
    cameras: tuple[str, ...] | None = None


def default_config() -> TrainValueConfig:
    reg = get_registry()
    if DEFAULT_ESTIMATOR not in reg.names("value_estimator"):
        raise PluginError(
            f"no value estimator {DEFAULT_ESTIMATOR!r} is registered (have {reg.names('value_estimator')}); "
            "install recap-distributional-value or name one in --config"
        )
    return TrainValueConfig(
        store=Path(""), out=Path(""), value=reg.get("value_estimator", DEFAULT_ESTIMATOR).config()
    )


def run(cfg: TrainValueConfig) -> ValueTrainingResult:
    if not str(cfg.store) or not str(cfg.out) or str(cfg.store) == "." or str(cfg.out) == ".":
        raise ConfigError("recap train-value needs --store DIR and --out DIR (or both in --config FILE)")
    store = EpisodeStore.open(cfg.store)
    filters = {
        "task": cfg.task,
        "source": cfg.source,
        "policy_version": cfg.policy_version,
        "robot_id": cfg.robot_id,
    }
    episodes = store.episodes(**{k: v for k, v in filters.items() if v is not None})
    if not episodes:
        raise ConfigError(f"no episodes in {cfg.store} match { ({k: v for k, v in filters.items() if v}) }")
    return train_value(
        store,
        value=cfg.value,
        trainer=cfg.trainer,
        out_dir=cfg.out,
        batch_size=cfg.batch_size,
        episodes=episodes,
        init_from=cfg.init_from,
        skip_unlabelled=cfg.skip_unlabelled,
        cameras=cfg.cameras,
        resolved_config=cfg,
    )


def main(args: Sequence[str]) -> int:
    """`recap train-value --store S --out O [value:distributional --value.num-bins 201] [--trainer.steps N]`
    or `recap train-value --config run.toml [overrides]`."""
    from recap.cli.overrides import parse

    args = list(args)
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            raise ConfigError("--config needs a .toml/.json file (write one with `recap config dump`)")
        base = config.load(args[i + 1], TrainValueConfig, get_registry())
        del args[i : i + 2]
    else:
        base = default_config()
    cfg = parse(TrainValueConfig, base, args, "recap train-value", "Train a value estimator.", get_registry())
    result = run(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        m = result.train.metrics
        extra = "".join(f" {k}={m[k]:.4f}" for k in ("loss_value", "value_mae_bins") if k in m)
        print(f"value checkpoint: {result.checkpoint}  (steps={result.train.step}{extra})")
        if result.skipped_unlabelled:
            print(
                f"skipped {len(result.skipped_unlabelled)} unlabelled episode(s): {', '.join(result.skipped_unlabelled)}"
            )
    return 0


main.raw_args = True  # type: ignore[attr-defined]

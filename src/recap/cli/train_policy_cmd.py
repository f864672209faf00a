"""``recap train-policy --config FILE`` (or a preset): train a policy with any registered extractor."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from recap import config
from recap.config import ExtractorConfig, PolicyConfig
from recap.data import EpisodeStore
from recap.errors import ConfigError
from recap.plugins import get_registry
from recap.train.policy import train_policy
from recap.train.trainer import TrainerConfig


@attrs.frozen
class TrainPolicyConfig:
    """One policy-training run.

    Attributes:
        store: the EpisodeStore directory.
        out: run directory (resumable; the finished checkpoint is ``out/policy``).
        policy / extractor: by registered name (``name = "..."`` in a config file).
        label_set: advantage labels from `recap label` (extractors that need them refuse to start without).
        init_from: a policy checkpoint to fine-tune instead of training from scratch.
        task / source: train only on episodes of this task / source.
    """

    store: Path
    out: Path
    policy: PolicyConfig
    extractor: ExtractorConfig
    trainer: TrainerConfig = attrs.field(factory=TrainerConfig)
    batch_size: int = 64
    chunk_size: int = 20
    label_set: str | None = None
    init_from: Path | None = None
    task: str | None = None
    source: str | None = None


def run(cfg: TrainPolicyConfig) -> Path:
    store = EpisodeStore.open(cfg.store)
    episodes = store.episodes(task=cfg.task, source=cfg.source) if (cfg.task or cfg.source) else None
    result = train_policy(
        store,
        policy=cfg.policy,
        extractor=cfg.extractor,
        trainer=cfg.trainer,
        out_dir=cfg.out,
        batch_size=cfg.batch_size,
        chunk_size=cfg.chunk_size,
        label_set=cfg.label_set,
        episodes=episodes,
        init_from=cfg.init_from,
        resolved_config=cfg,
    )
    return result.checkpoint


def main(args: Sequence[str]) -> int:
    """`recap train-policy --config run.toml [--trainer.steps 100 ...]`."""
    from recap.cli.overrides import parse

    args = list(args)
    if "--config" not in args or args.index("--config") + 1 >= len(args):
        raise ConfigError(
            "recap train-policy needs --config FILE (.toml/.json) naming store, out, policy and extractor; "
            "write one from a preset with `recap config dump PRESET run.toml` or see docs/training.md"
        )
    i = args.index("--config")
    base = config.load(args[i + 1], TrainPolicyConfig, get_registry())
    del args[i : i + 2]
    cfg = parse(
        TrainPolicyConfig,
        base,
        args,
        "recap train-policy",
        "Train a policy with a registered extractor.",
        get_registry(),
    )
    checkpoint = run(cfg)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one line, from the rank that wrote it
        print(f"policy checkpoint: {checkpoint}")
    return 0


main.raw_args = True

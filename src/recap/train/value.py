"""Value training from an EpisodeStore with any registered value estimator (``recap train-value``).

Every step t of every chosen episode is a sample (o_t, task, R_t), R_t the normalised Monte-Carlo return; the
estimator's ``loss`` is minimised by the generic trainer. Fine-tuning (Recap fine-tunes the value function from
the pre-trained one every iteration) rebuilds the pre-trained model from its checkpoint and continues from its
weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from recap import config as recap_config
from recap.config import ValueEstimatorConfig
from recap.data import EpisodeStore, WindowSampler
from recap.data.schema import EpisodeMeta
from recap.errors import LabelError
from recap.train.checkpoint import read_value_checkpoint, save_value
from recap.train.returns import mc_return_columns
from recap.train.trainer import TrainerConfig, TrainResult, seed_everything, train

#: The finished value checkpoint inside a training run directory (``recap label --value RUN/value``).
VALUE_DIR = "value"
#: Resumable training state, metrics and the resolved config inside a run directory.
TRAIN_DIR = "train"


@attrs.frozen
class ValueTrainingResult:
    checkpoint: Path
    train: TrainResult
    skipped_unlabelled: tuple[str, ...] = ()


def unlabelled_error(episodes: list[EpisodeMeta], store_path: Any, what: str) -> LabelError:
    """The refusal for episodes without a success label, naming them and the fixes."""
    ids = [m.episode_id for m in episodes]
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return LabelError(
        f"{len(ids)} episode(s) have no success label, so their returns are unknown and {what} refuses them: "
        f"{shown}. Label each with `recap data label-success {store_path} EPISODE_ID --success` (or --failure), "
        "or pass --skip-unlabelled to leave them out (they are listed in the report)."
    )


def select_labelled(
    episodes: list[EpisodeMeta], skip_unlabelled: bool, store_path: Any, what: str
) -> tuple[list[EpisodeMeta], tuple[str, ...]]:
    """Episodes with a success label; unlabelled ones are refused, or skipped and returned when allowed."""
    unlabelled = [m for m in episodes if m.success is None]
    if unlabelled and not skip_unlabelled:
        raise unlabelled_error(unlabelled, store_path, what)
    kept = [m for m in episodes if m.success is not None]
    if not kept:
        raise LabelError(f"no episodes with a success label to use for {what} (of {len(episodes)} selected)")
    return kept, tuple(m.episode_id for m in unlabelled)


def train_value(
    store: EpisodeStore,
    *,
    value: ValueEstimatorConfig,
    trainer: TrainerConfig,
    out_dir: str | Path,
    batch_size: int = 64,
    episodes: list[EpisodeMeta] | None = None,
    init_from: str | Path | None = None,
    skip_unlabelled: bool = False,
    cameras: tuple[str, ...] | None = None,
    registry: Any = None,
    resolved_config: Any = None,
) -> ValueTrainingResult:
    """Train (or fine-tune from ``init_from``, a value checkpoint) and write ``out_dir/value``.

    Args:
        store: the experience (every chosen episode needs a success label).
        value: the estimator config; with ``init_from`` the checkpoint's own config, spec and statistics are
            used instead, so fine-tuning continues the same model.
        trainer: optimisation settings (``trainer.seed`` also fixes the sampled batches).
        out_dir: run directory; resumable: a killed run continues from ``out_dir/train``'s last checkpoint.
        batch_size: global batch (split over ranks under torchrun).
        episodes: restrict training to these episodes (default: all of the store).
        skip_unlabelled: leave out episodes without a success label instead of refusing.
        cameras: cameras to read (default: all of the spec).
    """
    from recap.plugins import get_registry

    reg = registry if registry is not None else get_registry()
    out_dir = Path(out_dir)
    chosen = store.episodes() if episodes is None else list(episodes)
    chosen, skipped = select_labelled(chosen, skip_unlabelled, store.root, "value training")
    if init_from is not None:
        value, spec, stats = read_value_checkpoint(init_from, reg)
    else:
        spec, stats = store.spec, store.norm_stats()
    seed_everything(trainer.seed)  # a fresh estimator's initial weights follow the trainer's seed
    estimator = reg.build(value, spec, stats, registry=reg)
    if cameras is None:
        cameras = getattr(estimator, "input_cameras", None)
    sampler = WindowSampler(
        store,
        chunk_size=1,
        batch_size=batch_size,
        seed=trainer.seed,
        episodes=chosen,
        cameras=cameras,
        label_columns=mc_return_columns(chosen, store.max_length_per_task()),
    )
    if init_from is None:
        _fit_to_data(estimator, sampler)
    result = train(
        estimator,
        estimator.loss,
        sampler.batch,
        trainer,
        out_dir / TRAIN_DIR,
        init_from=init_from,
        resolved_config=None if resolved_config is None else recap_config.dumps(resolved_config, "toml", reg),
    )
    checkpoint = out_dir / VALUE_DIR
    if result.final_weights is not None:  # rank 0 writes the estimator, whole
        save_value(checkpoint, estimator, value, spec, stats, reg, weights=result.final_weights)
    return ValueTrainingResult(checkpoint, result, skipped)


def _fit_to_data(estimator: Any, sampler: WindowSampler) -> None:
    """Fit data-dependent preprocessing (e.g. the pi0.6 value network's text tokenizer) before training."""
    fit = getattr(estimator, "fit_to_data", None) or getattr(
        getattr(estimator, "network", None), "fit_to_data", None
    )
    if fit is None:
        return
    big = WindowSampler(
        sampler.store,
        chunk_size=1,
        batch_size=2048,
        seed=sampler.seed + 7919,
        episodes=sampler.episodes,
        cameras=sampler.cameras,
        label_columns=sampler.label_columns,
    )
    fit(big.batch(0))

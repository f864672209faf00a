"""Policy training with any registered extractor on any registered policy, from an EpisodeStore.

This is the path every extractor takes, built-in or third-party: the policy is built (or loaded from the
checkpoint it fine-tunes), the extractor is built by name, the batch is checked for the keys the extractor
declares, and the generic trainer minimises ``extractor.loss(policy, batch)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from recap import config as recap_config
from recap.config import ExtractorConfig, PolicyConfig
from recap.data import EpisodeStore, WindowSampler
from recap.data.schema import EpisodeMeta
from recap.errors import RecapError
from recap.train.checkpoint import load_policy, save_policy
from recap.train.requirements import check_required_keys
from recap.train.returns import mc_return_columns
from recap.train.trainer import TrainerConfig, TrainResult, seed_everything, train

#: The finished policy checkpoint inside a training run directory.
POLICY_DIR = "policy"
#: Samples drawn to fit data-dependent preprocessing (tokenizers) before training from scratch.
FIT_SAMPLES = 2048


@attrs.frozen
class PolicyTrainingResult:
    checkpoint: Path
    train: TrainResult


def train_policy(
    store: EpisodeStore,
    *,
    policy: PolicyConfig,
    extractor: ExtractorConfig,
    trainer: TrainerConfig,
    out_dir: str | Path,
    batch_size: int,
    chunk_size: int,
    label_set: str | None = None,
    episodes: list[EpisodeMeta] | None = None,
    init_from: str | Path | None = None,
    registry: Any = None,
    resolved_config: Any = None,
) -> PolicyTrainingResult:
    """Train (or fine-tune from ``init_from``, a policy checkpoint) and write ``out_dir/policy``.

    Args:
        store: the experience.
        policy: the policy config (ignored for the architecture when ``init_from`` is given: the checkpoint's
            own config is used, so fine-tuning always continues the same model).
        extractor: which extractor and its settings.
        trainer: optimisation settings.
        out_dir: run directory (resumable: a killed run continues from its last checkpoint).
        batch_size / chunk_size: global batch and action chunk H of the training windows.
        label_set: advantage/indicator labels to join (from ``recap label``); extractors that need them say so.
        episodes: restrict training to these episodes (default: every episode in the store).
    """
    from recap.plugins import get_registry

    reg = registry if registry is not None else get_registry()
    out_dir = Path(out_dir)
    extractor_impl = reg.build(extractor)
    seed_everything(trainer.seed)  # a fresh model's initial weights follow the trainer's seed
    model, policy_config = _build_policy(store, policy, init_from, chunk_size, reg)
    chosen = store.episodes() if episodes is None else list(episodes)
    sampler = WindowSampler(
        store,
        chunk_size=chunk_size,
        batch_size=batch_size,
        seed=trainer.seed,
        episodes=chosen,
        label_set=label_set,
        cameras=model.input_cameras,  # frames the policy never reads are not copied
        label_columns=mc_return_columns(chosen, store.max_length_per_task()),
    )
    check_required_keys(sampler.batch(0), extractor_impl.required_keys, reg.entry_for(extractor).name)
    # data-fitted parts (tokenizers) are fitted on a fresh model, or on a checkpoint that says it was never fitted
    if hasattr(model, "fit_to_data") and (init_from is None or getattr(model, "needs_fitting", False)):
        model.fit_to_data(_fit_batch(sampler))
    extractor_impl.setup(model)
    result = train(
        model,
        lambda batch: extractor_impl.loss(model, batch),
        sampler.batch,
        trainer,
        out_dir / "train",
        resolved_config=None if resolved_config is None else recap_config.dumps(resolved_config, "toml", reg),
    )
    ckpt = out_dir / POLICY_DIR
    if result.final_weights is not None:  # rank 0 writes the policy, whole, for serving
        deployment = extractor_impl.deployment
        save_policy(
            ckpt,
            model,
            policy_config,
            store.spec,
            store.norm_stats(),
            deployment,
            reg,
            weights=result.final_weights,
        )
    return PolicyTrainingResult(ckpt, result)


def _build_policy(
    store: EpisodeStore, policy: PolicyConfig, init_from: str | Path | None, chunk_size: int, reg: Any
) -> tuple[Any, PolicyConfig]:
    """A fresh policy, or the checkpoint ``init_from`` with its own config; its chunk must match the windows."""
    if init_from is not None:
        model, _ = load_policy(init_from, reg)
        policy_config = _read_policy_config(init_from, reg)
    else:
        policy_config = policy
        model = reg.build(policy, store.spec, store.norm_stats())
    if getattr(model, "chunk_size", chunk_size) != chunk_size:
        raise RecapError(
            f"the policy predicts chunks of {model.chunk_size} actions but training windows have {chunk_size}; "
            "set chunk_size to the policy's chunk size"
        )
    return model, policy_config


def _fit_batch(sampler: WindowSampler):
    """One large batch of training windows for fitting tokenizers (deterministic, independent of training)."""
    big = WindowSampler(
        sampler.store,
        chunk_size=sampler.chunk_size,
        batch_size=FIT_SAMPLES,
        seed=sampler.seed + 7919,
        episodes=sampler.episodes,
        label_set=sampler.label_set,
        cameras=sampler.cameras,
        label_columns=sampler.label_columns,
    )
    return big.batch(0)


def _read_policy_config(directory: str | Path, registry: Any) -> PolicyConfig:
    from recap.train.checkpoint import CONFIG

    return recap_config.load(Path(directory) / CONFIG, PolicyConfig, registry)

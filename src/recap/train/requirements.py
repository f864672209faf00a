"""What a training batch must hold for an extractor: the keys, checked before the first step, and the label
columns, checked as an extractor reads them."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tensordict import TensorDict

from recap.data import keys
from recap.errors import LabelError, SchemaError

#: how each label key comes to be in a batch: which run writes it and how training selects it
_PRODUCED_BY: dict[str, str] = {
    keys.ADVANTAGE: (
        "advantages come from a label set: run `recap label` on the store (it predicts values with a trained "
        "value model and writes a named label set), then train the policy with that label set selected (the `label_set` option)"
    ),
    keys.INDICATOR: (
        "improvement indicators come from a label set: run `recap label` on the store (it thresholds the "
        "advantages per task and forces intervention steps positive), then train the policy with that label "
        "set selected (the `label_set` option)"
    ),
    keys.MC_RETURN: (
        "Monte-Carlo returns need success labels: label every episode's outcome (`recap label` refuses "
        "unlabelled episodes and names them), then sample with a label set selected"
    ),
    keys.IS_INTERVENTION: "is_intervention is recorded at collection time; re-collect or import with that key",
}


def check_required_keys(
    batch: TensorDict, required_keys: Iterable[str], extractor: str = "the extractor"
) -> None:
    """Raise ``LabelError`` naming the first missing key of ``required_keys`` and the run that produces it.

    Args:
        batch: a training batch (checked once, before the first optimisation step).
        required_keys: the extractor's ``required_keys``.
        extractor: the extractor's registered name, for the message.
    """
    present = set(batch.keys())
    for key in required_keys:
        if key in present:
            continue
        how = _PRODUCED_BY.get(key, f"no built-in run produces {key!r}; add it to the batches you train on")
        raise LabelError(
            f"extractor {extractor!r} needs the batch key {key!r}, but the training batch has only "
            f"{sorted(present)}. Fix: {how}."
        )


def advantage_column(batch: TensorDict) -> torch.Tensor:
    """``batch["advantage"]`` checked: float ``[B]``, finite (what AWR- and PPO-style extractors weight by)."""
    size = batch.batch_size[0]
    advantage = batch.get(keys.ADVANTAGE)
    if advantage.shape != (size,) or not advantage.is_floating_point():
        raise SchemaError(
            f"batch[{keys.ADVANTAGE!r}] must be float of shape [{size}], got {advantage.dtype} "
            f"{tuple(advantage.shape)}; it comes from `recap label`"
        )
    if not torch.isfinite(advantage).all():
        raise SchemaError("batch advantages contain NaN or inf; relabel the store with `recap label`")
    return advantage


def indicator_column(batch: TensorDict) -> torch.Tensor:
    """``batch["indicator"]`` checked: bool ``[B]`` (the improvement indicator I of a label set)."""
    size = batch.batch_size[0]
    indicator = batch.get(keys.INDICATOR)
    if indicator.shape != (size,) or indicator.dtype != torch.bool:
        raise SchemaError(
            f"batch[{keys.INDICATOR!r}] must be bool of shape [{size}], got {indicator.dtype} "
            f"{tuple(indicator.shape)}; it comes from `recap label`"
        )
    return indicator

"""Filtered behaviour cloning: imitate only the samples labelled as improvements.

    loss_k = sum_i I_i * l_k,i / max(sum_i I_i, 1)

where l_k,i are the policy's per-sample loss terms (flow matching, token NLL) with no indicator input. Samples
with I = 0 contribute nothing; a batch without positives gives a zero loss (still attached to the graph so the
trainer's backward works) and the metric ``positive_fraction`` shows it.
"""

from __future__ import annotations

import attrs
from tensordict import TensorDict

from recap.config import ExtractorConfig
from recap.data import keys
from recap.protocols import DeploymentSettings, Policy
from recap.train.requirements import indicator_column


@attrs.frozen
class FilteredBCConfig(ExtractorConfig):
    """Settings of filtered behaviour cloning.

    Attributes:
        min_positive: batches with fewer I = 1 samples than this are skipped (zero loss), so a handful of
            positives cannot dominate a step.
    """

    min_positive: int = attrs.field(default=1, validator=attrs.validators.ge(1))


class FilteredBC:
    """A ``recap.protocols.PolicyExtractor``: behaviour cloning on I = 1 samples only."""

    required_keys: tuple[str, ...] = (keys.INDICATOR,)

    def __init__(self, config: FilteredBCConfig | None = None) -> None:
        self.config = config or FilteredBCConfig()
        # no indicator input is trained, so the policy is sampled unconditionally
        self.deployment = DeploymentSettings(indicator=None, guidance=1.0)

    def setup(self, policy: Policy) -> None:
        """Nothing to prepare."""

    def loss(self, policy: Policy, batch: TensorDict) -> TensorDict:
        indicator = indicator_column(batch)
        per_sample = policy.per_sample_loss(batch, None)
        positives = indicator.float().to(per_sample.get("flow"))
        count = positives.sum()
        active = float(count.item() >= self.config.min_positive)
        out = {
            f"loss_{name}": active * (positives * value).sum() / count.clamp_min(1.0)
            for name, value in per_sample.items()
        }
        out["positive_fraction"] = positives.mean()
        return TensorDict(out, batch_size=[])

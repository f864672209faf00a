"""Advantage conditioning (pi*0.6 Eq. 3): supervised learning on all data with the improvement indicator as input.

The paper's objective is

    min_theta  E[ -log pi_theta(a | o, l)  -  alpha * log pi_theta(a | I, o, l) ],   I = 1[A(o, a) > eps_l]

and in practice, instead of two weighted terms, the indicator is dropped from the input for a random
``dropout`` share of samples (30% in the paper). The dropped samples train the unconditional policy that
classifier-free guidance needs; the rest train the conditional one. Every per-sample loss term of the policy
(flow matching, and discrete token terms where it has them) is the likelihood surrogate:

    loss_k = mean_i( w_i * l_k,i ),   w_i = 1 for dropped samples, alpha for conditioned ones.

With alpha = 1 (the default, the paper's practice) the ratio of the two terms is set by the dropout rate alone:
(1 - dropout) / dropout = 2.33 for 30%. SFT mode fixes I = 1 for every sample (fine-tuning on a task's
demonstrations before the first iteration). Intervention steps arrive already forced to I = 1 by the labeler.
At deployment the policy is sampled with I = 1 and CFG strength ``guidance`` (beta; 1 = plain conditioning).
"""

from __future__ import annotations

import attrs
import torch
from tensordict import TensorDict

from recap.config import ExtractorConfig
from recap.data import keys
from recap.protocols import DeploymentSettings, Policy
from recap.train.requirements import indicator_column


def _unit_interval(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value} (1 would never condition on I)")


@attrs.frozen
class AdvantageConditioningConfig(ExtractorConfig):
    """Settings of the advantage-conditioning extractor.

    Attributes:
        dropout: share of samples whose indicator input is dropped (paper: 0.3). Also applied in SFT mode, so
            the unconditional policy stays trained for guidance.
        sft: fix I = 1 for every sample (demonstration fine-tuning); then no label set is needed.
        guidance: CFG beta used at deployment, v = v_u + beta * (v_c - v_u) (paper: 1 by default, 1.5-2.5
            where useful; large values push actions to the edge of their support).
        alpha: weight of the conditioned samples' loss relative to the dropped ones (Eq. 3's alpha).
    """

    dropout: float = attrs.field(default=0.3, validator=_unit_interval)
    sft: bool = False
    guidance: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    alpha: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))


def draw_dropout(batch_size: int, rate: float, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Bool ``[B]``: True where the indicator is dropped, each sample independently with probability ``rate``."""
    return torch.rand(batch_size, device=device) < rate


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the masked entries (0 when there are none, so metrics stay finite)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


class AdvantageConditioning:
    """Implements ``recap.protocols.PolicyExtractor`` (registered as "advantage-conditioning")."""

    def __init__(self, config: AdvantageConditioningConfig | None = None) -> None:
        self.config = config or AdvantageConditioningConfig()
        self.required_keys: tuple[str, ...] = () if self.config.sft else (keys.INDICATOR,)
        self.deployment = DeploymentSettings(indicator=True, guidance=self.config.guidance)

    def setup(self, policy: Policy) -> None:
        """Nothing to prepare: the loss needs only the current policy."""

    def indicator_of(self, batch: TensorDict) -> torch.Tensor:
        """I per sample: all ones in SFT mode, else the label set's ``indicator``."""
        size = batch.batch_size[0]
        if self.config.sft:
            return torch.ones(size, dtype=torch.bool, device=batch.device)
        return indicator_column(batch)

    def loss(self, policy: Policy, batch: TensorDict) -> TensorDict:
        size = batch.batch_size[0]
        indicator = self.indicator_of(batch)
        dropped = draw_dropout(size, self.config.dropout, device=indicator.device)
        # a new TensorDict sharing the entries (cheap): adding the mask must not change the caller's batch
        inputs = batch.exclude("indicator_dropped")
        inputs.set("indicator_dropped", dropped)
        per_sample = policy.per_sample_loss(inputs, indicator)
        weight = torch.where(dropped, 1.0, self.config.alpha).to(per_sample.get("flow"))
        out: dict[str, torch.Tensor] = {}
        for name, value in per_sample.items():
            out[f"loss_{name}"] = (weight * value).mean()
        flow = per_sample.get("flow").detach()
        out["dropped_fraction"] = dropped.float().mean()
        out["positive_fraction"] = _masked_mean(indicator.float(), ~dropped)
        out["flow_conditioned"] = _masked_mean(flow, ~dropped)
        out["flow_unconditioned"] = _masked_mean(flow, dropped)
        return TensorDict(out, batch_size=[])

"""Advantage-weighted regression (AWR; Peng, Kumar, Zhang, Levine 2019, arXiv:1910.00177).

The policy's per-sample likelihood surrogate l_k (flow-matching loss, token NLL) is weighted by the
exponentiated advantage, with no indicator input:

    A_hat = (A - mean_B(A)) / (std_B(A) + 1e-5)      if normalize, else A_hat = A
    w     = min(exp(A_hat / beta), w_max)            (treated as a constant: no gradient)
    loss_k = mean_i( w_i * l_k,i )

Defaults follow the authors' reference implementation (github.com/xbpeng/awr, ``learning/awr_agent.py``):
temperature ``temp = 1.0``, ``weight_clip = 20``, advantages standardised over the samples used for the update.
Here the standardisation is per batch. Recap's advantages are in normalised-return units (often |A| < 0.1), so
without ``normalize`` a temperature near the advantage scale (e.g. beta = 0.05) is needed for any effect.
"""

from __future__ import annotations

import math

import attrs
import torch
from tensordict import TensorDict

from recap.config import ExtractorConfig
from recap.data import keys
from recap.protocols import DeploymentSettings, Policy
from recap.rl import standardize_advantages
from recap.train.requirements import advantage_column


@attrs.frozen
class AWRConfig(ExtractorConfig):
    """Settings of the AWR extractor.

    Attributes:
        beta: temperature of exp(A / beta) (reference implementation: 1.0, on standardised advantages).
        w_max: clip of the weights (reference implementation: 20).
        normalize: standardise advantages to zero mean and unit std per batch before weighting.
    """

    beta: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    w_max: float = attrs.field(default=20.0, validator=attrs.validators.gt(0.0))
    normalize: bool = True


def awr_weights(advantage: torch.Tensor, *, beta: float, w_max: float, normalize: bool) -> torch.Tensor:
    """``min(exp(A_hat / beta), w_max)`` per sample (see the module docstring); no gradient flows through it."""
    adv = standardize_advantages(advantage) if normalize else advantage.detach().float()
    # clamp the exponent rather than the weight so large advantages never overflow to inf
    return torch.exp(torch.clamp(adv / beta, max=math.log(w_max)))


class AWR:
    """Implements ``recap.protocols.PolicyExtractor`` (registered as "awr")."""

    required_keys: tuple[str, ...] = (keys.ADVANTAGE,)

    def __init__(self, config: AWRConfig | None = None) -> None:
        self.config = config or AWRConfig()
        # AWR trains no indicator input, so the policy is sampled unconditionally
        self.deployment = DeploymentSettings(indicator=None, guidance=1.0)

    def setup(self, policy: Policy) -> None:
        """Nothing to prepare: the loss needs only the current policy."""

    def loss(self, policy: Policy, batch: TensorDict) -> TensorDict:
        advantage = advantage_column(batch)
        cfg = self.config
        weight = awr_weights(advantage, beta=cfg.beta, w_max=cfg.w_max, normalize=cfg.normalize)
        per_sample = policy.per_sample_loss(batch, None)
        out: dict[str, torch.Tensor] = {}
        for name, value in per_sample.items():
            out[f"loss_{name}"] = (weight.to(value) * value).mean()
        out["weight_mean"] = weight.mean()
        out["weight_max"] = weight.max()
        out["clipped_fraction"] = (weight >= cfg.w_max * (1 - 1e-6)).float().mean()
        out["advantage_mean"] = advantage.detach().float().mean()
        return TensorDict(out, batch_size=[])

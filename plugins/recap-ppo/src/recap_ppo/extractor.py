"""PPO-style extraction as the pi*0.6 paper's appendix baseline: FPO likelihood ratios and the SPO objective.

A flow policy has no tractable likelihood, so (as in DPPO/FPO) the single-step flow-matching loss l stands in
for -log pi. With the *same* (tau, eps) draws for the reference and the current policy::

    rho_flow = exp(l_ref - l_theta)

and for each discrete part (``fast`` action tokens, ``subtask`` text), whose per-sample term is the mean token
negative log-likelihood, the ordinary likelihood ratio ``rho = exp(nll_ref - nll_theta)`` (per sample; the
geometric mean of the per-token ratios). Each part k is trained with the simple policy optimisation (SPO)
objective and its own trust region eps_k::

    J_k = E[ rho_k * A  -  |A| / (2 * eps_k) * (rho_k - 1)^2 ],     loss_k = -w_k * J_k

(w_flow = ``alpha``, 1 for discrete parts). J_k is maximised at rho = 1 + eps_k * sign(A), so eps_k bounds how
far one batch moves each sample's likelihood. The paper needed a small trust region (0.01) to keep this stable on
its off-policy data. The reference is a frozen copy of the policy snapshotted in ``setup`` (the policy being
fine-tuned); its losses are computed once per batch without gradients.
"""

from __future__ import annotations

import copy

import attrs
import torch
from tensordict import TensorDict

from recap.config import ExtractorConfig
from recap.data import keys
from recap.errors import RecapError
from recap.nn import draw_flow
from recap.protocols import DeploymentSettings, Policy
from recap.rl import standardize_advantages
from recap.train.requirements import advantage_column


@attrs.frozen
class PPOConfig(ExtractorConfig):
    """Settings of the PPO extractor.

    Attributes:
        trust_region: eps of the flow part (paper: 0.01).
        trust_region_discrete: eps of each discrete part (FAST tokens, sub-task text).
        alpha: weight of the flow part's objective.
        normalize: standardise advantages per batch (zero mean, unit std) as common PPO implementations do;
            the optimum rho = 1 + eps * sign(A) depends only on the sign, the step size on the scale.
        max_log_ratio: clamp of |log rho| guarding exp against overflow early in training.
    """

    trust_region: float = attrs.field(default=0.01, validator=attrs.validators.gt(0.0))
    trust_region_discrete: float = attrs.field(default=0.01, validator=attrs.validators.gt(0.0))
    alpha: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    normalize: bool = True
    max_log_ratio: float = attrs.field(default=20.0, validator=attrs.validators.gt(0.0))


def spo_objective(ratio: torch.Tensor, advantage: torch.Tensor, trust_region: float) -> torch.Tensor:
    """``mean(rho * A - |A| / (2 eps) * (rho - 1)^2)`` (to be maximised)."""
    return (ratio * advantage - advantage.abs() / (2.0 * trust_region) * (ratio - 1.0).square()).mean()


class PPO:
    """Implements ``recap.protocols.PolicyExtractor`` (registered as "ppo")."""

    required_keys: tuple[str, ...] = (keys.ADVANTAGE,)

    def __init__(self, config: PPOConfig | None = None) -> None:
        self.config = config or PPOConfig()
        self.deployment = DeploymentSettings(indicator=None, guidance=1.0)  # no indicator input is trained
        self.reference: torch.nn.Module | None = None

    def setup(self, policy: Policy) -> None:
        """Snapshot a frozen reference copy of ``policy`` (call before the first optimisation step)."""
        reference = copy.deepcopy(policy)
        reference.eval()
        reference.requires_grad_(False)
        self.reference = reference

    def trust_region_of(self, part: str) -> float:
        return self.config.trust_region if part == "flow" else self.config.trust_region_discrete

    def loss(self, policy: Policy, batch: TensorDict) -> TensorDict:
        if self.reference is None:
            raise RecapError(
                "PPO.loss was called before PPO.setup(policy); setup snapshots the reference policy"
            )
        advantage = advantage_column(batch)
        adv = standardize_advantages(advantage) if self.config.normalize else advantage.detach().float()
        device = next(iter(policy.parameters())).device
        draws = draw_flow(policy, batch.batch_size[0], device=device)
        with torch.no_grad():
            reference = self.reference.per_sample_loss(batch, None, flow_draws=draws)
        current = policy.per_sample_loss(batch, None, flow_draws=draws)
        adv = adv.to(device)
        out: dict[str, torch.Tensor] = {}
        for part, value in current.items():
            log_ratio = (reference.get(part).detach() - value).clamp(
                -self.config.max_log_ratio, self.config.max_log_ratio
            )
            ratio = log_ratio.exp()
            eps = self.trust_region_of(part)
            weight = self.config.alpha if part == "flow" else 1.0
            out[f"loss_{part}"] = -weight * spo_objective(ratio, adv, eps)
            deviation = (ratio.detach() - 1.0).abs()
            out[f"ratio_deviation_{part}"] = deviation.mean()
            out[f"outside_trust_region_{part}"] = (deviation > eps).float().mean()
            out[f"{part}_reference"] = reference.get(part).mean()
        return TensorDict(out, batch_size=[])

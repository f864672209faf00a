"""The PolicyExtractor protocol: a loss that turns labelled data into a better policy."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs
from tensordict import TensorDict

from recap.protocols.policy import Policy


@attrs.frozen
class DeploymentSettings:
    """How a policy trained by an extractor should be sampled at deployment.

    ``indicator``: True/False conditions on I, None samples unconditionally. ``guidance``: CFG beta.
    """

    indicator: bool | None = None
    guidance: float = 1.0


@runtime_checkable
class PolicyExtractor(Protocol):
    """Policy extraction (advantage conditioning, AWR, PPO, ...), working on any Policy.

    Attributes:
        required_keys: batch keys the loss needs beyond observations and actions (e.g. ``advantage``);
            the trainer checks them before the first step and names the ``recap label`` run that makes them.
        deployment: how to sample the trained policy.
    """

    required_keys: tuple[str, ...]
    deployment: DeploymentSettings

    def setup(self, policy: Policy) -> None:
        """Called once before training (e.g. PPO snapshots a frozen reference copy here)."""
        ...

    def loss(self, policy: Policy, batch: TensorDict) -> TensorDict:
        """``loss_*`` terms (scalars, summed to train) plus metric keys, in a TensorDict of batch size []."""
        ...

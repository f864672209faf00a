"""The distributional value estimator of pi*0.6 (paper Eq. 1) over any registered value network.

    min_phi  E_{(o_t, l, R_t) in D} [ H( target(R_t), p_phi(V | o_t, l) ) ],   p_phi = softmax(network(o_t, l))
    V(o_t, l) = sum_b p_phi(V = b | o_t, l) * v(b)

R_t is the per-task normalised Monte-Carlo return in [-1, 0] (``mc_return`` in the batch), the B bins have
centres v(b) evenly spaced on [-1, 0] (``bins.bin_centers``).

Targets: "two_hot" (default) puts the return's mass on its two neighbouring bins so the target's mean is
exactly R_t; "one_hot" (the paper's wording, "the bin of the return") rounds R_t to the nearest centre. We
default to two-hot because consecutive steps of one episode differ by 1 / max_length in return, which is
less than a bin width for tasks longer than B - 1 = 200 steps (4 s at 50 Hz): one-hot targets then put
neighbouring steps into the same bin and the learned value becomes a staircase with up to half a bin of bias,
which the n-step advantage (a difference of two values 50 steps apart) feels directly. Two-hot keeps the same
cross-entropy loss and output head and removes that quantisation; one-hot stays available for fidelity.
"""

from __future__ import annotations

import attrs
import torch
from tensordict import TensorDict
from torch import nn

from recap.config import ValueEstimatorConfig, ValueNetworkConfig
from recap.data import keys
from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap.errors import ConfigError, SchemaError
from recap.hookspecs import Builder
from recap_distributional_value.bins import TargetKind, bin_centers, expected_value, targets
from recap_distributional_value.network import ConvMLPConfig, ConvMLPValueNet


@attrs.frozen
class DistributionalValueConfig(ValueEstimatorConfig):
    """Settings of the "distributional" value estimator (paper Eq. 1).

    Attributes:
        num_bins: B, bins evenly spanning [-1, 0] (paper: 201).
        target: "two_hot" or "one_hot" categorical targets (see the module docstring for why two-hot).
        network: the value network (any registered ``value_network``; default "conv-mlp").
    """

    num_bins: int = attrs.field(default=201, validator=attrs.validators.ge(2))
    target: TargetKind = attrs.field(
        default="two_hot", validator=attrs.validators.in_(("two_hot", "one_hot"))
    )
    network: ValueNetworkConfig = attrs.field(factory=ConvMLPConfig)


class DistributionalValue(nn.Module):
    """Implements ``recap.protocols.ValueEstimator``: cross-entropy over value bins, expected value out.

    Attributes:
        network: maps an observation batch to logits ``[B, num_bins]``.
        centers: buffer, the bin centres v(b) ``[num_bins]``.
        bin_width: 1 / (B - 1), the unit errors are reported in (``value_mae_bins``).
    """

    def __init__(
        self,
        config: DistributionalValueConfig,
        spec: RobotSpec,
        stats: NormStats | None = None,
        network: nn.Module | None = None,
        registry: Builder | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.num_bins = config.num_bins
        if network is None:
            network = _build_network(config.network, spec, config.num_bins, stats, registry)
        self.network = network
        self.register_buffer("centers", bin_centers(config.num_bins), persistent=False)
        self.bin_width = 1.0 / (config.num_bins - 1)

    @property
    def input_cameras(self) -> tuple[str, ...] | None:
        """Cameras the network reads (None: all); samplers skip copying the other frames."""
        return getattr(self.network, "input_cameras", None)

    def logits(self, obs: TensorDict) -> torch.Tensor:
        out = self.network(obs)
        n = obs.batch_size[0] if obs.batch_size else None
        if out.ndim != 2 or out.shape[1] != self.num_bins or (n is not None and out.shape[0] != n):
            raise SchemaError(
                f"value network {type(self.network).__name__} returned logits of shape {tuple(out.shape)}; "
                f"expected [{n}, {self.num_bins}] (batch, num_bins)"
            )
        return out

    def loss(self, batch: TensorDict) -> TensorDict:
        """Cross-entropy to the categorical target of ``mc_return``, plus value error metrics."""
        if keys.MC_RETURN not in batch:
            raise SchemaError(
                f"the batch has no {keys.MC_RETURN!r}: value training needs episodes with success labels "
                "(label them with `recap data label-success`, or filter to labelled episodes)"
            )
        returns = batch[keys.MC_RETURN].float()
        logits = self.logits(batch)
        target = targets(returns, self.num_bins, self.config.target)
        ce = -(target * torch.log_softmax(logits.float(), dim=-1)).sum(-1).mean()
        with torch.no_grad():
            mae = (expected_value(logits, self.centers) - returns).abs().mean()
        return TensorDict(
            {"loss_value": ce, "value_mae": mae, "value_mae_bins": mae / self.bin_width}, batch_size=[]
        )

    @torch.no_grad()
    def predict(self, obs: TensorDict) -> TensorDict:
        """``value`` ``[B]`` (expected bin centre, in [-1, 0]) and ``logits`` ``[B, num_bins]``."""
        logits = self.logits(obs).float()
        return TensorDict(
            {"value": expected_value(logits, self.centers), "logits": logits}, batch_size=[logits.shape[0]]
        )

    def forward(self, obs: TensorDict) -> torch.Tensor:
        return self.predict(obs)["value"]


def make_distributional_value(
    config: DistributionalValueConfig, spec: RobotSpec, stats: NormStats | None, /, *, registry: Builder
) -> DistributionalValue:
    """Registry factory ``factory(config, spec, stats, *, registry) -> ValueEstimator``."""
    return DistributionalValue(config, spec, stats, registry=registry)


def _build_network(
    config: ValueNetworkConfig,
    spec: RobotSpec,
    num_bins: int,
    stats: NormStats | None,
    registry: Builder | None,
) -> nn.Module:
    """The default network directly; any other through the registry the estimator is built from."""
    if type(config) is ConvMLPConfig:
        return ConvMLPValueNet(config, spec, num_bins, stats)
    if registry is None:
        raise ConfigError(
            f"value network {type(config).__name__} is a registered plugin: build the estimator through the "
            "registry (registry.build(config, spec, stats, registry=registry)) or pass the network"
        )
    return registry.build(config, spec, num_bins, stats)

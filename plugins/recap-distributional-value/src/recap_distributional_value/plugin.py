"""Hook implementations: value estimator "distributional", value network "conv-mlp", and presets."""

from __future__ import annotations

from recap.hookspecs import RegisterPreset, RegisterValueEstimator, RegisterValueNetwork
from recap.plugins import hookimpl
from recap_distributional_value.estimator import DistributionalValueConfig, make_distributional_value
from recap_distributional_value.network import ConvMLPConfig, ConvMLPValueNet


@hookimpl
def register_value_estimators(register: RegisterValueEstimator) -> None:
    register("distributional", make_distributional_value, config=DistributionalValueConfig)


@hookimpl
def register_value_networks(register: RegisterValueNetwork) -> None:
    register("conv-mlp", ConvMLPValueNet, config=ConvMLPConfig)


@hookimpl
def register_presets(register: RegisterPreset) -> None:
    register("value-default", DistributionalValueConfig())
    # Tiny: tests and CI; small images, narrow layers, trains in seconds.
    register(
        "value-tiny",
        DistributionalValueConfig(
            network=ConvMLPConfig(
                image_size=16, channels=(8, 16), image_features=16, state_features=32, hidden=64
            )
        ),
    )

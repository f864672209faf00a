"""Hook implementations: policy ``pi06``, value network ``pi06-value``, their presets and the ``pi06`` weights
importer (``recap weights import``)."""

from __future__ import annotations

from recap.plugins import hookimpl
from recap_pi06.config import POLICY_PRESETS, VALUE_PRESETS, Pi06Config, Pi06ValueConfig
from recap_pi06.policy import Pi06Policy
from recap_pi06.value import Pi06ValueNetwork
from recap_pi06.weights.registered import Pi06WeightImporter, Pi06WeightImporterConfig
from recap_pi06.weights.registered_value import Pi06ValueImporter, Pi06ValueImporterConfig


def build_policy(config: Pi06Config, spec, stats) -> Pi06Policy:
    """``factory(config, spec, stats)`` of policy ``pi06``."""
    return Pi06Policy(config, spec, stats)


def build_value_network(config: Pi06ValueConfig, spec, num_bins: int, stats) -> Pi06ValueNetwork:
    """``factory(config, spec, num_bins, stats)`` of value network ``pi06-value``."""
    return Pi06ValueNetwork(config, spec, num_bins, stats)


@hookimpl
def register_policies(register) -> None:
    register("pi06", build_policy, config=Pi06Config)


@hookimpl
def register_value_networks(register) -> None:
    register("pi06-value", build_value_network, config=Pi06ValueConfig)


@hookimpl
def register_presets(register) -> None:
    for name, preset in {**POLICY_PRESETS, **VALUE_PRESETS}.items():
        register(name, preset)


@hookimpl
def register_weight_importers(register) -> None:
    register("pi06", Pi06WeightImporter, config=Pi06WeightImporterConfig)
    register("pi06-value", Pi06ValueImporter, config=Pi06ValueImporterConfig)

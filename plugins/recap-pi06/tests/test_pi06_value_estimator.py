"""pi06-value inside the distributional value estimator (when that plugin is installed): the core's
ValueEstimator conformance suite, checkpoints included."""

import pytest
import torch
from recap_pi06.config import PI06_VALUE_TINY
from recap_pi06.value import Pi06ValueNetwork

from recap.data import keys
from recap.testing.policy_suite import make_batch
from recap.testing.registry import process_registry
from recap.testing.value_suite import ValueEstimatorConformance

dv = pytest.importorskip("recap_distributional_value.estimator")


class TestPi06ValueInDistributionalEstimator(ValueEstimatorConformance):
    @pytest.fixture
    def config(self):
        return dv.DistributionalValueConfig(num_bins=21, network=PI06_VALUE_TINY)

    @pytest.fixture
    def make_estimator(self, config, spec, stats):
        def build():
            torch.manual_seed(0)
            net = Pi06ValueNetwork(PI06_VALUE_TINY, spec, config.num_bins, stats)
            return dv.DistributionalValue(config, spec, stats, network=net)

        return build

    @pytest.fixture
    def batch(self, spec):
        b = make_batch(spec, batch_size=8, chunk_size=10)
        b.set(keys.MC_RETURN, -torch.linspace(0.05, 0.95, 8))
        return b

    @pytest.fixture
    def checkpoint(self, config, spec, stats):
        """save_value/load_value and the estimator resolve plugin configs through the process registry."""
        from recap.plugins import load_registry

        registry = load_registry(
            extra_plugins=["recap_pi06.plugin", "recap_distributional_value.plugin"], entrypoints=False
        )
        with process_registry(registry):
            yield config, spec, stats, registry

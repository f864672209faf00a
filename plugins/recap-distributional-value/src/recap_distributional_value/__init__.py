"""recap plugin: the distributional Monte-Carlo value function of pi*0.6 (paper Eq. 1) over any registered value
network, and the small default value network "conv-mlp"."""

from recap_distributional_value.bins import bin_centers, expected_value, one_hot, targets, two_hot
from recap_distributional_value.estimator import DistributionalValue, DistributionalValueConfig
from recap_distributional_value.network import ConvMLPConfig, ConvMLPValueNet

__all__ = [
    "ConvMLPConfig",
    "ConvMLPValueNet",
    "DistributionalValue",
    "DistributionalValueConfig",
    "bin_centers",
    "expected_value",
    "one_hot",
    "targets",
    "two_hot",
]

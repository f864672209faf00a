"""recap.nn.Normalizer: the std floor, the quantile mode and loading checkpoints written before it existed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from recap.data import keys
from recap.data.stats import FeatureStats, NormStats
from recap.errors import ConfigError, SchemaError
from recap.nn import FeatureNormalizers, Normalizer, rename_on_load


def _stats(values: torch.Tensor) -> FeatureStats:
    return FeatureStats.compute(values)


def test_normalize_uses_mean_and_floored_std():
    values = torch.stack([torch.linspace(-1, 1, 101) * 4 + 2, torch.full((101,), 0.3)], dim=1)
    values[::2, 1] += 0.002  # std 0.001: below the floor
    norm = Normalizer(2, _stats(values), min_std=0.05)
    x = torch.tensor([[2.0, 0.4]])
    expected_std = torch.tensor([values[:, 0].std(unbiased=False).item(), 0.05])
    torch.testing.assert_close(norm.normalize(x), (x - values.mean(0)) / expected_std)
    torch.testing.assert_close(norm.unnormalize(norm.normalize(x)), x)


def test_identity_without_statistics():
    norm = Normalizer(3, None)
    x = torch.randn(4, 3)
    torch.testing.assert_close(norm.normalize(x), x)


def test_quantile_range_maps_q01_q99_to_minus_one_one():
    values = torch.linspace(0, 10, 1001)[:, None]
    norm = Normalizer(1, _stats(values), quantiles=True)
    q = torch.quantile(values, torch.tensor([0.01, 0.99]))
    torch.testing.assert_close(norm.to_quantile_range(q[:, None]), torch.tensor([[-1.0], [1.0]]))
    with pytest.raises(ConfigError, match="quantiles=True"):
        Normalizer(1, _stats(values)).to_quantile_range(values)


def test_bad_shapes_and_floors_are_explained():
    with pytest.raises(SchemaError, match="robot spec says"):
        Normalizer(3, _stats(torch.randn(10, 2)), name=keys.STATE)
    with pytest.raises(SchemaError, match="last dimension 2"):
        Normalizer(3, None, name=keys.STATE).normalize(torch.zeros(1, 2))
    with pytest.raises(ConfigError, match="min_std"):
        Normalizer(3, None, min_std=0.0)


def test_feature_normalizers_require_or_tolerate_missing_statistics():
    stats = NormStats.compute({keys.STATE: torch.randn(20, 3)})
    with pytest.raises(SchemaError, match="recompute"):
        FeatureNormalizers({keys.STATE: 3, keys.ACTION: 2}, stats)
    lenient = FeatureNormalizers({keys.STATE: 3, keys.ACTION: 2}, stats, require_stats=False)
    torch.testing.assert_close(lenient.normalize(keys.ACTION, torch.ones(1, 2)), torch.ones(1, 2))
    assert set(lenient.state_dict()) == {
        "observation_state.mean",
        "observation_state.std",
        "action.mean",
        "action.std",
    }


def test_old_flat_names_load_into_the_new_modules():
    stats = NormStats.compute({keys.STATE: torch.randn(20, 3) * 3, keys.ACTION: torch.randn(20, 2) + 5})
    trained = FeatureNormalizers({keys.STATE: 3, keys.ACTION: 2}, stats, quantiles=True)
    flat = {k.replace(".", "_"): v for k, v in trained.state_dict().items()}  # the pre-recap.nn layout
    fresh = FeatureNormalizers({keys.STATE: 3, keys.ACTION: 2}, None, quantiles=True)
    rename_on_load(fresh, fresh.legacy_flat_keys("", ""))
    fresh.load_state_dict(flat)
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
    fresh.load_state_dict(trained.state_dict())  # new checkpoints load as before


def test_renames_are_relative_to_the_module_they_are_registered_on():
    outer = nn.Sequential(nn.Module())
    outer[0].norm = Normalizer(2, None)
    rename_on_load(outer[0], {"mean": "norm.mean", "std": "norm.std"})
    outer.load_state_dict({"0.mean": torch.tensor([1.0, 2.0]), "0.std": torch.tensor([3.0, 4.0])})
    torch.testing.assert_close(outer[0].norm.std, torch.tensor([3.0, 4.0]))
    with pytest.raises(RuntimeError, match="Unexpected"):
        outer.load_state_dict(
            {"0.norm.mean": torch.zeros(2), "0.norm.std": torch.ones(2), "0.bogus": torch.ones(1)}
        )


def test_quantile_mode_maps_q01_q99_to_unit_range_and_back():
    """pi0.5's normalisation: q01 -> -1, q99 -> 1, and unnormalize inverts it; mean/std play no part."""
    values = torch.linspace(0, 10, 1001)[:, None] ** 2  # skewed: mean/std would give other numbers
    stats = _stats(values)
    norm = Normalizer(1, stats, mode="quantile")
    q = torch.stack([stats.q01, stats.q99])
    torch.testing.assert_close(norm.normalize(q), torch.tensor([[-1.0], [1.0]]))
    x = torch.tensor([[3.0], [50.0], [120.0]])
    torch.testing.assert_close(norm.unnormalize(norm.normalize(x)), x)
    assert not torch.allclose(norm.normalize(x), Normalizer(1, stats).normalize(x))
    with pytest.raises(ConfigError, match="mode"):
        Normalizer(1, stats, mode="minmax")

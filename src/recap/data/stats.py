"""Per-dimension normalisation statistics (mean, std, q01, q99), computed once and stored with a dataset.

Models normalise with them through ``recap.nn.Normalizer`` (which floors the std).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import attrs
import torch

from recap.errors import SchemaError

_QUANTILE_MAX_ROWS = 2**24


@attrs.frozen
class FeatureStats:
    """Statistics of one feature over all steps, each a float32 tensor ``[dim]``."""

    mean: torch.Tensor
    std: torch.Tensor
    q01: torch.Tensor
    q99: torch.Tensor

    @classmethod
    def compute(cls, values: torch.Tensor) -> FeatureStats:
        """From samples ``[N, dim]`` (N > 0, finite). Mean and std use every row; the quantiles use an evenly
        strided subset of 2**24 rows when N is larger (``torch.quantile`` refuses longer inputs)."""
        if values.ndim != 2 or values.shape[0] == 0:
            raise SchemaError(f"stats need a non-empty [N, dim] tensor, got shape {tuple(values.shape)}")
        v = values.double()
        if not torch.isfinite(v).all():
            raise SchemaError("stats input contains NaN or inf; clean or drop the offending episodes first")
        max_rows = _QUANTILE_MAX_ROWS
        qv = v if v.shape[0] <= max_rows else v[torch.linspace(0, v.shape[0] - 1, max_rows).long()]
        q = torch.quantile(qv, torch.tensor([0.01, 0.99], dtype=v.dtype), dim=0)
        return cls(v.mean(0).float(), v.std(0, unbiased=False).float(), q[0].float(), q[1].float())

    def to_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in ("mean", "std", "q01", "q99")}

    @classmethod
    def from_dict(cls, data: Mapping[str, list[float]]) -> FeatureStats:
        return cls(**{k: torch.tensor(data[k], dtype=torch.float32) for k in ("mean", "std", "q01", "q99")})


@attrs.frozen
class NormStats:
    """Statistics per feature key (``observation.state``, ``action``, ``observation.environment_state``)."""

    features: Mapping[str, FeatureStats]

    def __getitem__(self, key: str) -> FeatureStats:
        if key not in self.features:
            raise SchemaError(f"no normalisation statistics for {key!r}; have {sorted(self.features)}")
        return self.features[key]

    def __contains__(self, key: str) -> bool:
        return key in self.features

    def to_dict(self) -> dict[str, dict[str, list[float]]]:
        return {k: v.to_dict() for k, v in self.features.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, list[float]]]) -> NormStats:
        return cls({k: FeatureStats.from_dict(v) for k, v in data.items()})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def compute(cls, features: Mapping[str, torch.Tensor]) -> NormStats:
        """From ``{key: [N, dim]}`` samples."""
        return cls({k: FeatureStats.compute(v) for k, v in features.items()})

"""Normalisation of state, environment state and actions with dataset statistics (``recap.data.stats``).

One :class:`Normalizer` per feature keeps mean, std (floored at ``min_std``) and, where asked, the 1% / 99%
quantiles as buffers, so checkpoints carry the statistics the model was trained with. The ``min_std`` floor
matters: a joint that barely moves in the demonstrations (std 0.005 rad) would otherwise turn the small
deviations of the robot's own rollouts into inputs and regression targets of 10+ standard deviations, which
the policy never saw in training (docs/results-history.md lists what the floor changed on transfer cube).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from recap.data.stats import FeatureStats, NormStats
from recap.errors import ConfigError, SchemaError

#: default floor on the std, in raw units (radians for joints): what the MLP policy was tuned with
DEFAULT_MIN_STD = 0.01
#: ``mean_std``: (x - mean) / std; ``quantile``: [q01, q99] -> [-1, 1] (pi0.5)
NORMALIZATION_MODES = ("mean_std", "quantile")
#: floor on the width of the [q01, q99] range, so a constant dimension stays finite
_MIN_QUANTILE_RANGE = 1e-6


class Normalizer(nn.Module):
    """Per-dimension standardisation of one feature: ``(x - mean) / max(std, min_std)``.

    Built from the feature's :class:`~recap.data.stats.FeatureStats` or, with ``stats=None``, as the identity
    (mean 0, std 1, quantiles -1 / 1). ``quantiles=True`` also keeps q01 and q99 for
    :meth:`to_quantile_range` (pi0.5-style state discretisation); it is off by default so modules that never
    use quantiles keep them out of their checkpoints. ``mode="quantile"`` makes :meth:`normalize` the quantile
    normalisation (pi0.5's: ``[q01, q99]`` -> ``[-1, 1]``) and :meth:`unnormalize` its inverse; it keeps quantiles.
    """

    def __init__(
        self,
        dim: int,
        stats: FeatureStats | None = None,
        *,
        min_std: float = DEFAULT_MIN_STD,
        quantiles: bool = False,
        name: str = "feature",
        mode: str = "mean_std",
    ) -> None:
        super().__init__()
        if mode not in NORMALIZATION_MODES:
            raise ConfigError(f"normalisation mode must be one of {NORMALIZATION_MODES}, got {mode!r}")
        self.mode = mode
        quantiles = quantiles or mode == "quantile"
        if min_std <= 0:
            raise ConfigError(f"min_std must be > 0 (a floor on the std of {name!r}), got {min_std}")
        self.name = name
        mean, std, q01, q99 = torch.zeros(dim), torch.ones(dim), -torch.ones(dim), torch.ones(dim)
        if stats is not None:
            if tuple(stats.mean.shape) != (dim,):
                raise SchemaError(
                    f"stats for {name!r} have shape {tuple(stats.mean.shape)}, the robot spec says ({dim},); "
                    "recompute the statistics for this dataset"
                )
            mean, std, q01, q99 = stats.mean, stats.std.clamp_min(min_std), stats.q01, stats.q99
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())
        if quantiles:
            self.register_buffer("q01", q01.float().clone())
            self.register_buffer("q99", q99.float().clone())

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw units -> zero mean, unit (floored) std (or the quantile range); ``x`` is ``[..., dim]``."""
        if self.mode == "quantile":
            return self.to_quantile_range(x)
        self._check(x)
        return (x - self.mean) / self.std

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`normalize`."""
        self._check(x)
        if self.mode == "quantile":
            return (x + 1.0) / 2.0 * (self.q99 - self.q01).clamp_min(_MIN_QUANTILE_RANGE) + self.q01
        return x * self.std + self.mean

    def to_quantile_range(self, x: torch.Tensor) -> torch.Tensor:
        """Quantile normalisation: ``[q01, q99]`` maps to ``[-1, 1]`` (values outside go beyond it)."""
        if not hasattr(self, "q01"):
            raise ConfigError(f"the normaliser of {self.name!r} was built without quantiles=True")
        self._check(x)
        return 2.0 * (x - self.q01) / (self.q99 - self.q01).clamp_min(_MIN_QUANTILE_RANGE) - 1.0

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.dim:
            raise SchemaError(
                f"{self.name!r} has last dimension {x.shape[-1]}, the normaliser (robot spec) expects {self.dim}"
            )


def _module_key(key: str) -> str:
    return key.replace(".", "_")  # module names may not contain dots


class FeatureNormalizers(nn.ModuleDict):
    """One :class:`Normalizer` per feature key (``observation.state``, ``action``, ...).

    Args:
        dims: feature key -> dimension (from the robot spec).
        stats: dataset statistics, or None for identity normalisation.
        min_std: floor on every feature's std (raw units).
        quantiles: also keep q01 / q99 of every feature.
        require_stats: refuse statistics that lack one of ``dims`` (identity normalisation of a real feature
            would train silently and badly); when False such a feature is normalised as the identity.
        mode: ``mean_std`` or ``quantile`` for every feature (see :class:`Normalizer`).
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        stats: NormStats | None,
        *,
        min_std: float = DEFAULT_MIN_STD,
        quantiles: bool = False,
        require_stats: bool = True,
        mode: str = "mean_std",
    ) -> None:
        super().__init__()
        for key, dim in dims.items():
            feature = None
            if stats is not None:
                if key in stats and dim > 0:
                    feature = stats[key]
                elif require_stats and dim > 0:
                    raise SchemaError(
                        f"NormStats lack {key!r} (have {sorted(stats.features)}); recompute them"
                    )
            self[_module_key(key)] = Normalizer(
                dim, feature, min_std=min_std, quantiles=quantiles, name=key, mode=mode
            )

    def of(self, key: str) -> Normalizer:
        """The normaliser of feature ``key``."""
        if _module_key(key) not in self:
            raise SchemaError(f"no normaliser for {key!r}; have {[m.name for m in self.values()]}")
        return self[_module_key(key)]

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return self.of(key).normalize(x)

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return self.of(key).unnormalize(x)

    def legacy_flat_keys(self, old_prefix: str, new_prefix: str) -> dict[str, str]:
        """Renames for :func:`recap.nn.rename_on_load` from the flat buffer names ``{old_prefix}{feature}_{stat}``
        (how the policies and the pi0.6 trunk named them before this module) to ``{new_prefix}{feature}.{stat}``.
        """
        return {
            f"{old_prefix}{name}_{stat}": f"{new_prefix}{name}.{stat}"
            for name, norm in self.items()
            for stat, _ in norm.named_buffers()
        }

"""recap.validators: the shared range checks of config fields."""

from __future__ import annotations

import attrs
import pytest

from recap.errors import ConfigError
from recap.validators import fraction, non_negative, positive


@attrs.frozen
class _Config:
    steps: int = attrs.field(default=1, validator=positive)
    lr: float = attrs.field(default=0.0, validator=non_negative)
    share: float = attrs.field(default=1.0, validator=fraction)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("steps", 0, "steps must be positive, got 0"),
        ("lr", -1e-9, "lr must be >= 0"),
        ("share", 1.01, r"share must be in \[0, 1\]"),
        ("share", -0.01, r"share must be in \[0, 1\]"),
    ],
)
def test_out_of_range_values_are_refused_by_name(field, value, message):
    with pytest.raises(ConfigError, match=message):
        _Config(**{field: value})


def test_boundaries_are_accepted():
    _Config(steps=1, lr=0.0, share=0.0)
    _Config(share=1.0)

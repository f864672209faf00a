"""attrs validators shared by every config class: one wording of each range check.

Use them as ``attrs.field(default=..., validator=positive)``. They raise ``ConfigError`` (a ``ValueError``),
which the config loaders report with the dotted path of the field.
"""

from __future__ import annotations

from typing import Any

import attrs

from recap.errors import ConfigError


def positive(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    """``value > 0``."""
    if value <= 0:
        raise ConfigError(f"{attribute.name} must be positive, got {value}")


def non_negative(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    """``value >= 0``."""
    if value < 0:
        raise ConfigError(f"{attribute.name} must be >= 0, got {value}")


def fraction(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    """``0 <= value <= 1`` (a share or a probability)."""
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{attribute.name} must be in [0, 1], got {value}")

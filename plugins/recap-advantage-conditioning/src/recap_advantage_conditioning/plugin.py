"""Registers the "advantage-conditioning" extractor."""

from __future__ import annotations

from recap.plugins import hookimpl
from recap_advantage_conditioning.extractor import AdvantageConditioning, AdvantageConditioningConfig


@hookimpl
def register_extractors(register) -> None:
    register("advantage-conditioning", AdvantageConditioning, config=AdvantageConditioningConfig)

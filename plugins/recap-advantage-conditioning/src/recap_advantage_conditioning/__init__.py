"""Advantage-conditioned policy extraction (pi*0.6 / Recap, Eq. 3) with indicator dropout and CFG settings."""

from recap_advantage_conditioning.extractor import (
    AdvantageConditioning,
    AdvantageConditioningConfig,
    draw_dropout,
)

__all__ = ["AdvantageConditioning", "AdvantageConditioningConfig", "draw_dropout"]

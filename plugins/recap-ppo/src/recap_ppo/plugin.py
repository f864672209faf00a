"""Registers the "ppo" extractor."""

from __future__ import annotations

from recap.plugins import hookimpl
from recap_ppo.extractor import PPO, PPOConfig


@hookimpl
def register_extractors(register) -> None:
    register("ppo", PPO, config=PPOConfig)

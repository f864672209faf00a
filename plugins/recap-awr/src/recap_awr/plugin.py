"""Registers the "awr" extractor."""

from __future__ import annotations

from recap.plugins import hookimpl
from recap_awr.extractor import AWR, AWRConfig


@hookimpl
def register_extractors(register) -> None:
    register("awr", AWR, config=AWRConfig)

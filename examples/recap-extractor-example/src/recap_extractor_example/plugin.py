"""The plugin module named by the entry point: one hook registering the extractor by name."""

from __future__ import annotations

from recap.config import ExtractorConfig
from recap.hookspecs import ExtractorFactory, Register
from recap.plugins import hookimpl
from recap_extractor_example.extractor import FilteredBC, FilteredBCConfig


@hookimpl
def register_extractors(register: Register[ExtractorFactory, ExtractorConfig]) -> None:
    register("filtered-bc", FilteredBC, config=FilteredBCConfig)

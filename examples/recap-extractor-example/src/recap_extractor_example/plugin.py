"""The plugin module named by the entry point: one hook registering the extractor by name."""

from __future__ import annotations

from recap.hookspecs import RegisterExtractor
from recap.plugins import hookimpl
from recap_extractor_example.extractor import FilteredBC, FilteredBCConfig


@hookimpl
def register_extractors(register: RegisterExtractor) -> None:
    register("filtered-bc", FilteredBC, config=FilteredBCConfig)

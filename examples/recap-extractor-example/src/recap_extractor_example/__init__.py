"""An example third-party recap plugin: filtered behaviour cloning."""

from recap_extractor_example.extractor import FilteredBC, FilteredBCConfig

__all__ = ["FilteredBC", "FilteredBCConfig"]

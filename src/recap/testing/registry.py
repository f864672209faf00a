"""The installed plugins as the process-wide registry for one test (checkpoints name their configs through it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from recap.plugins import Registry, load_registry, set_registry


@contextmanager
def installed_registry() -> Iterator[Registry]:
    """Load the installed plugins (entry points included), make them the process-wide registry, restore after."""
    registry = load_registry(entrypoints=True)
    previous = set_registry(registry)
    try:
        yield registry
    finally:
        set_registry(previous)

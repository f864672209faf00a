"""A registry made the process-wide one for the length of a test (checkpoints name their configs through it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from recap.plugins import Registry, load_registry, set_registry


@contextmanager
def process_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the process-wide registry; the previous one is restored on exit."""
    previous = set_registry(registry)
    try:
        yield registry
    finally:
        set_registry(previous)


@contextmanager
def installed_registry() -> Iterator[Registry]:
    """The installed plugins (entry points included) as the process-wide registry."""
    with process_registry(load_registry(entrypoints=True)) as registry:
        yield registry

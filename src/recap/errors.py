"""Exception types shared by every layer. Messages say what was expected, what was found and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RecapError(Exception):
    """Base class of every error recap raises on purpose."""


class SchemaError(RecapError, ValueError):
    """Data does not match the declared spec (wrong key, shape or dtype)."""


class LabelError(RecapError, ValueError):
    """Labels are missing or inconsistent (e.g. an episode without a success label)."""


class StaleLabelError(LabelError):
    """A label write based on a label that has changed since it was read (compare-and-set refused)."""


class ConfigError(RecapError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


class PluginError(RecapError, RuntimeError):
    """A plugin failed to load or registered something invalid."""


class StoreError(RecapError, OSError):
    """The episode store is unreadable, corrupt or was used wrongly."""


class PolicyUnavailableError(RecapError, ConnectionError):
    """A policy that lives elsewhere (a policy server) cannot be reached right now; retrying may succeed."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' Did you mean ...?' suffix listing close matches, or '' when there are none."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""

"""Hook specifications: the only way plugins (built-in or third-party) add things to recap.

Each hook receives a ``register`` callback; the core owns the registries, refuses duplicate names and remembers
which distribution supplied each entry. A plugin is a module listed in a distribution's
``[project.entry-points.recap]`` table that implements some of these hooks with :data:`hookimpl`::

    from recap.plugins import hookimpl

    @hookimpl
    def register_extractors(register):
        register("filtered-bc", FilteredBC, config=FilteredBCConfig)

``register(name, factory, *, config)`` takes a unique name, a factory and the factory's frozen attrs config
class (a subclass of the matching base in ``recap.config``). Factories are called as documented per hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "recap"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: ``register(name, factory, *, config)`` — see the module docstring.
Register = Callable[..., None]


@hookspec
def register_policies(register: Register) -> None:
    """Called once when plugins load. Register policies: ``factory(config, spec, stats) -> Policy`` with
    ``config`` a ``PolicyConfig``, ``spec`` the ``RobotSpec`` and ``stats`` the dataset's ``NormStats``
    (or None before any data exists)."""


@hookspec
def register_value_networks(register: Register) -> None:
    """Called once when plugins load. Register networks that map an observation batch to value-bin logits:
    ``factory(config, spec, num_bins, stats) -> torch.nn.Module`` whose ``forward(obs) -> Tensor[B, num_bins]``."""


@hookspec
def register_value_estimators(register: Register) -> None:
    """Called once when plugins load. Register critics: ``factory(config, spec, stats) -> ValueEstimator``."""


@hookspec
def register_labelers(register: Register) -> None:
    """Called once when plugins load. Register advantage labelers: ``factory(config) -> AdvantageLabeler``."""


@hookspec
def register_extractors(register: Register) -> None:
    """Called once when plugins load. Register policy extractors: ``factory(config) -> PolicyExtractor``."""


@hookspec
def register_backends(register: Register) -> None:
    """Called once when plugins load. Register robot backends: ``factory(config) -> RobotBackend``."""


@hookspec
def register_teleoperators(register: Register) -> None:
    """Called once when plugins load. Register teleoperators (humans or scripted experts):
    ``factory(config, backend) -> Teleoperator``."""


@hookspec
def register_demonstrators(register: Register) -> None:
    """Called once when plugins load. Register scripted demonstrators, which act like a Policy for
    collection: ``factory(config, backend) -> object`` with ``reset(task, seed)`` and ``act(obs) -> Tensor``."""


@hookspec
def register_presets(register: Callable[[str, Any], None]) -> None:
    """Called once when plugins load. Register named configs: ``register(name, config_instance)``. Presets are
    frozen attrs instances (of any config class); ``recap config show NAME`` prints one."""

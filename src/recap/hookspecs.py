"""Hook specifications: the only way plugins (built-in or third-party) add things to recap.

Each hook is called once, when the registry loads, with a ``register`` callback; the core owns the registries,
refuses duplicate names and remembers which distribution supplied each entry. A plugin is a module listed in a
distribution's ``[project.entry-points.recap]`` table that implements some of these hooks with
:data:`hookimpl`::

    from recap.plugins import hookimpl

    @hookimpl
    def register_extractors(register):
        register("filtered-bc", FilteredBC, config=FilteredBCConfig)

``register(name, factory, *, config)`` takes a unique name, a factory and the factory's frozen attrs config
class, a subclass of the kind's base in ``recap.config`` (``ExtractorConfig`` here). The core builds an entry
with ``registry.build(config, *args)``: the entry whose config class is ``type(config)``, called as
``factory(config, *args)``. Each kind's factory signature is a ``Protocol`` below (``PolicyFactory``, ...);
parameters are positional-only, so a factory may name them as it likes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pluggy

if TYPE_CHECKING:
    from torch import nn

    from recap.config import (
        BackendConfig,
        DemonstratorConfig,
        ExtractorConfig,
        LabelerConfig,
        PluginConfig,
        PolicyConfig,
        Preset,
        TeleoperatorConfig,
        ValueEstimatorConfig,
        ValueNetworkConfig,
    )
    from recap.data.spec import RobotSpec
    from recap.data.stats import NormStats
    from recap.protocols import (
        AdvantageLabeler,
        Demonstrator,
        Policy,
        PolicyExtractor,
        RobotBackend,
        Teleoperator,
        ValueEstimator,
    )

PROJECT = "recap"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

FactoryT = TypeVar("FactoryT", contravariant=True)
ConfigT = TypeVar("ConfigT", bound="PluginConfig", contravariant=True)


class Register(Protocol[FactoryT, ConfigT]):
    """The ``register`` callback of a hook: ``register(name, factory, *, config)``.

    ``name`` is unique within the kind; ``config`` is the factory's config class (the entry that
    ``registry.build(config_instance, ...)`` picks when ``type(config_instance) is config``).
    """

    def __call__(self, name: str, factory: FactoryT, *, config: type[ConfigT]) -> None: ...


class Builder(Protocol):
    """The registry an entry is being built from; composite entries build their parts with it."""

    def build(self, config: PluginConfig, /, *args: Any, **kwargs: Any) -> Any: ...


class PolicyFactory(Protocol):
    def __call__(self, config: PolicyConfig, spec: RobotSpec, stats: NormStats | None, /) -> Policy: ...


class ValueNetworkFactory(Protocol):
    def __call__(
        self, config: ValueNetworkConfig, spec: RobotSpec, num_bins: int, stats: NormStats | None, /
    ) -> nn.Module: ...


class ValueEstimatorFactory(Protocol):
    def __call__(
        self, config: ValueEstimatorConfig, spec: RobotSpec, stats: NormStats | None, /, *, registry: Builder
    ) -> ValueEstimator: ...


class LabelerFactory(Protocol):
    def __call__(self, config: LabelerConfig, /) -> AdvantageLabeler: ...


class ExtractorFactory(Protocol):
    def __call__(self, config: ExtractorConfig, /) -> PolicyExtractor: ...


class BackendFactory(Protocol):
    def __call__(self, config: BackendConfig, /) -> RobotBackend: ...


class TeleoperatorFactory(Protocol):
    def __call__(self, config: TeleoperatorConfig, backend: RobotBackend, /) -> Teleoperator: ...


class DemonstratorFactory(Protocol):
    def __call__(self, config: DemonstratorConfig, backend: RobotBackend, /) -> Demonstrator: ...


class RegisterPreset(Protocol):
    """``register(name, preset)``: a frozen attrs config instance, or a :class:`recap.config.Preset` (a config
    kept as data, resolved through the registry on use, for presets that name other plugins)."""

    def __call__(self, name: str, preset: Preset | Any, /) -> None: ...


@hookspec
def register_policies(register: Register[PolicyFactory, PolicyConfig]) -> None:
    """Called once when the registry loads. Register policies: ``factory(config, spec, stats) -> Policy`` with
    ``spec`` the ``RobotSpec`` and ``stats`` the dataset's ``NormStats`` (None before any data exists)."""


@hookspec
def register_value_networks(register: Register[ValueNetworkFactory, ValueNetworkConfig]) -> None:
    """Called once when the registry loads. Register networks that map an observation batch to value-bin
    logits: ``factory(config, spec, num_bins, stats) -> nn.Module`` whose ``forward(obs)`` returns
    ``Tensor[B, num_bins]``."""


@hookspec
def register_value_estimators(register: Register[ValueEstimatorFactory, ValueEstimatorConfig]) -> None:
    """Called once when the registry loads. Register critics: ``factory(config, spec, stats, *, registry) ->
    ValueEstimator``; ``registry`` is the registry building it (build a value network with
    ``registry.build(network_config, spec, num_bins, stats)``)."""


@hookspec
def register_labelers(register: Register[LabelerFactory, LabelerConfig]) -> None:
    """Called once when the registry loads. Register advantage labelers: ``factory(config) ->
    AdvantageLabeler``."""


@hookspec
def register_extractors(register: Register[ExtractorFactory, ExtractorConfig]) -> None:
    """Called once when the registry loads. Register policy extractors: ``factory(config) ->
    PolicyExtractor``."""


@hookspec
def register_backends(register: Register[BackendFactory, BackendConfig]) -> None:
    """Called once when the registry loads. Register robot backends: ``factory(config) -> RobotBackend``."""


@hookspec
def register_teleoperators(register: Register[TeleoperatorFactory, TeleoperatorConfig]) -> None:
    """Called once when the registry loads. Register teleoperators (humans or scripted experts):
    ``factory(config, backend) -> Teleoperator``."""


@hookspec
def register_demonstrators(register: Register[DemonstratorFactory, DemonstratorConfig]) -> None:
    """Called once when the registry loads. Register scripted demonstrators, which drive the robot like a
    policy during collection: ``factory(config, backend) -> Demonstrator``."""


@hookspec
def register_presets(register: RegisterPreset) -> None:
    """Called once when the registry loads. Register named configs: ``register(name, preset)``; ``recap config
    show NAME`` prints one and ``recap loop NAME`` runs a loop preset."""

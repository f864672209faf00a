"""Hook specifications: the only way plugins (built-in or third-party) add things to recap.

Each hook is called once, when the registry loads, with a ``register`` callback; the core owns the registries,
refuses duplicate names and remembers which distribution supplied each entry. A plugin is a module listed in a
distribution's ``[project.entry-points.recap]`` table that implements some of these hooks with
:data:`hookimpl`::

    from recap.hookspecs import RegisterExtractor
    from recap.plugins import hookimpl

    @hookimpl
    def register_extractors(register: RegisterExtractor) -> None:
        register("filtered-bc", FilteredBC, config=FilteredBCConfig)

``register(name, factory, *, config)`` takes a unique name, a factory and the factory's frozen attrs config
class, a subclass of the kind's base in ``recap.config`` (``ExtractorConfig`` here). The core builds an entry
with ``registry.build(config, *args)``: the entry whose config class is ``type(config)``, called as
``factory(config, *args)``. Each kind has a ``Protocol`` for its factory (``ExtractorFactory``, ...; parameters
are positional-only, so a factory may name them as it likes) and one for its callback (``RegisterExtractor``,
...), which a hook implementation may use to annotate ``register``.
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
        WeightImporterConfig,
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
        WeightImporter,
    )

PROJECT = "recap"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# Each factory protocol is generic in the config class it takes (a plugin's factory takes its own config
# subclass); each kind's ``register`` ties the factory to the ``config`` class registered with it.
PolicyC = TypeVar("PolicyC", bound="PolicyConfig", contravariant=True)
ValueNetworkC = TypeVar("ValueNetworkC", bound="ValueNetworkConfig", contravariant=True)
ValueEstimatorC = TypeVar("ValueEstimatorC", bound="ValueEstimatorConfig", contravariant=True)
LabelerC = TypeVar("LabelerC", bound="LabelerConfig", contravariant=True)
ExtractorC = TypeVar("ExtractorC", bound="ExtractorConfig", contravariant=True)
BackendC = TypeVar("BackendC", bound="BackendConfig", contravariant=True)
TeleoperatorC = TypeVar("TeleoperatorC", bound="TeleoperatorConfig", contravariant=True)
DemonstratorC = TypeVar("DemonstratorC", bound="DemonstratorConfig", contravariant=True)
WeightImporterC = TypeVar("WeightImporterC", bound="WeightImporterConfig", contravariant=True)


class Builder(Protocol):
    """The registry an entry is being built from; composite entries build their parts with it."""

    def build(self, config: PluginConfig, /, *args: Any, **kwargs: Any) -> Any: ...


class PolicyFactory(Protocol[PolicyC]):
    def __call__(self, config: PolicyC, spec: RobotSpec, stats: NormStats | None, /) -> Policy: ...


class RegisterPolicy(Protocol):
    def __call__(self, name: str, factory: PolicyFactory[PolicyC], *, config: type[PolicyC]) -> None: ...


class ValueNetworkFactory(Protocol[ValueNetworkC]):
    def __call__(
        self, config: ValueNetworkC, spec: RobotSpec, num_bins: int, stats: NormStats | None, /
    ) -> nn.Module: ...


class RegisterValueNetwork(Protocol):
    def __call__(
        self, name: str, factory: ValueNetworkFactory[ValueNetworkC], *, config: type[ValueNetworkC]
    ) -> None: ...


class ValueEstimatorFactory(Protocol[ValueEstimatorC]):
    def __call__(
        self, config: ValueEstimatorC, spec: RobotSpec, stats: NormStats | None, /, *, registry: Builder
    ) -> ValueEstimator: ...


class RegisterValueEstimator(Protocol):
    def __call__(
        self, name: str, factory: ValueEstimatorFactory[ValueEstimatorC], *, config: type[ValueEstimatorC]
    ) -> None: ...


class LabelerFactory(Protocol[LabelerC]):
    def __call__(self, config: LabelerC, /) -> AdvantageLabeler: ...


class RegisterLabeler(Protocol):
    def __call__(self, name: str, factory: LabelerFactory[LabelerC], *, config: type[LabelerC]) -> None: ...


class ExtractorFactory(Protocol[ExtractorC]):
    def __call__(self, config: ExtractorC, /) -> PolicyExtractor: ...


class RegisterExtractor(Protocol):
    def __call__(
        self, name: str, factory: ExtractorFactory[ExtractorC], *, config: type[ExtractorC]
    ) -> None: ...


class BackendFactory(Protocol[BackendC]):
    def __call__(self, config: BackendC, /) -> RobotBackend: ...


class RegisterBackend(Protocol):
    def __call__(self, name: str, factory: BackendFactory[BackendC], *, config: type[BackendC]) -> None: ...


class TeleoperatorFactory(Protocol[TeleoperatorC]):
    def __call__(self, config: TeleoperatorC, backend: RobotBackend, /) -> Teleoperator: ...


class RegisterTeleoperator(Protocol):
    def __call__(
        self, name: str, factory: TeleoperatorFactory[TeleoperatorC], *, config: type[TeleoperatorC]
    ) -> None: ...


class DemonstratorFactory(Protocol[DemonstratorC]):
    def __call__(self, config: DemonstratorC, backend: RobotBackend, /) -> Demonstrator: ...


class RegisterDemonstrator(Protocol):
    def __call__(
        self, name: str, factory: DemonstratorFactory[DemonstratorC], *, config: type[DemonstratorC]
    ) -> None: ...


class WeightImporterFactory(Protocol[WeightImporterC]):
    def __call__(self, config: WeightImporterC, /) -> WeightImporter: ...


class RegisterWeightImporter(Protocol):
    def __call__(
        self, name: str, factory: WeightImporterFactory[WeightImporterC], *, config: type[WeightImporterC]
    ) -> None: ...


class RegisterPreset(Protocol):
    """``register(name, preset)``: a frozen attrs config instance, or a :class:`recap.config.Preset` (a config
    kept as data, resolved through the registry on use, for presets that name other plugins)."""

    def __call__(self, name: str, preset: Preset | Any, /) -> None: ...


@hookspec
def register_policies(register: RegisterPolicy) -> None:
    """Called once when the registry loads. Register policies: ``factory(config, spec, stats) -> Policy`` with
    ``spec`` the ``RobotSpec`` and ``stats`` the dataset's ``NormStats`` (None before any data exists)."""


@hookspec
def register_value_networks(register: RegisterValueNetwork) -> None:
    """Called once when the registry loads. Register networks that map an observation batch to value-bin
    logits: ``factory(config, spec, num_bins, stats) -> nn.Module`` whose ``forward(obs)`` returns
    ``Tensor[B, num_bins]``."""


@hookspec
def register_value_estimators(register: RegisterValueEstimator) -> None:
    """Called once when the registry loads. Register critics: ``factory(config, spec, stats, *, registry) ->
    ValueEstimator``; ``registry`` is the registry building it (build a value network with
    ``registry.build(network_config, spec, num_bins, stats)``)."""


@hookspec
def register_labelers(register: RegisterLabeler) -> None:
    """Called once when the registry loads. Register advantage labelers: ``factory(config) ->
    AdvantageLabeler``."""


@hookspec
def register_extractors(register: RegisterExtractor) -> None:
    """Called once when the registry loads. Register policy extractors: ``factory(config) ->
    PolicyExtractor``."""


@hookspec
def register_backends(register: RegisterBackend) -> None:
    """Called once when the registry loads. Register robot backends: ``factory(config) -> RobotBackend``."""


@hookspec
def register_teleoperators(register: RegisterTeleoperator) -> None:
    """Called once when the registry loads. Register teleoperators (humans or scripted experts):
    ``factory(config, backend) -> Teleoperator``."""


@hookspec
def register_demonstrators(register: RegisterDemonstrator) -> None:
    """Called once when the registry loads. Register scripted demonstrators, which drive the robot like a
    policy during collection: ``factory(config, backend) -> Demonstrator``."""


@hookspec
def register_presets(register: RegisterPreset) -> None:
    """Called once when the registry loads. Register named configs: ``register(name, preset)``; ``recap config
    show NAME`` prints one and ``recap loop NAME`` runs a loop preset."""


@hookspec
def register_weight_importers(register: RegisterWeightImporter) -> None:
    """Called once when the registry loads. Register importers of public pretrained checkpoints for
    ``recap weights import``: ``factory(config) -> WeightImporter``."""

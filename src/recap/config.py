"""Configs: frozen attrs classes, (de)serialised with cattrs to dicts, TOML and JSON.

"Which plugin" fields are typed with one of the base classes below (``ExtractorConfig``, ``PolicyConfig``, ...).
Plugins subclass them and register the subclass with their factory; on disk such a field is a tagged table
``{name = "awr", beta = 1.0, ...}`` whose ``name`` is the registered name. Unknown keys and wrong types are
refused with the dotted path of the field and the allowed values.
"""

from __future__ import annotations

import importlib
import json
import tomllib
import typing
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import cattrs
import tomli_w
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

from recap.errors import ConfigError, did_you_mean

T = TypeVar("T")
TAG = "name"


@attrs.frozen
class PluginConfig:
    """Base of every plugin config class. Subclasses are frozen attrs classes; ``kind`` names the registry."""

    kind: typing.ClassVar[str] = ""


@attrs.frozen
class PolicyConfig(PluginConfig):
    kind: typing.ClassVar[str] = "policy"


@attrs.frozen
class ValueNetworkConfig(PluginConfig):
    kind: typing.ClassVar[str] = "value_network"


@attrs.frozen
class ValueEstimatorConfig(PluginConfig):
    kind: typing.ClassVar[str] = "value_estimator"


@attrs.frozen
class LabelerConfig(PluginConfig):
    kind: typing.ClassVar[str] = "labeler"


@attrs.frozen
class ExtractorConfig(PluginConfig):
    kind: typing.ClassVar[str] = "extractor"


@attrs.frozen
class BackendConfig(PluginConfig):
    kind: typing.ClassVar[str] = "backend"


@attrs.frozen
class TeleoperatorConfig(PluginConfig):
    kind: typing.ClassVar[str] = "teleoperator"


@attrs.frozen
class DemonstratorConfig(PluginConfig):
    kind: typing.ClassVar[str] = "demonstrator"


@attrs.frozen
class WeightImporterConfig(PluginConfig):
    """Base of weight-importer configs (``recap weights import``). ``preset``: the importer's architecture
    preset the import starts from (what the checkpoint's tensors do not fix); "" for the importer's default."""

    kind: typing.ClassVar[str] = "weights_importer"
    preset: str = ""


class ConfigRegistry(Protocol):
    """What (de)serialising plugin configs needs from the plugin registry (``recap.plugins.Registry`` is one).

    Passed in explicitly: this module sits below the plugin manager and never reaches for a global registry.
    """

    def entry_for(self, config: Any) -> Any:
        """The entry whose config class is exactly ``type(config)`` (its ``name`` is written to disk)."""
        ...

    def get(self, kind: str, name: str) -> Any:
        """The entry ``name`` of ``kind`` (its ``config`` is the config class, its ``factory`` the preset)."""
        ...


def make_converter(registry: ConfigRegistry) -> cattrs.Converter:
    """A converter that knows the registered plugin configs (tagged by their registered name)."""
    conv = cattrs.Converter(forbid_extra_keys=True)

    def is_plugin_base(t: Any) -> bool:
        return isinstance(t, type) and issubclass(t, PluginConfig)

    def unstructure_plugin(obj: PluginConfig) -> dict[str, Any]:
        name = registry.entry_for(obj).name
        data = {TAG: name}
        for a in attrs.fields(type(obj)):
            data[a.name] = conv.unstructure(getattr(obj, a.name))
        return data

    def structure_plugin(data: Any, cls: type) -> PluginConfig:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict) or TAG not in data:
            raise ConfigError(
                f"expected a table with a {TAG!r} key naming a registered {cls.kind}, got {data!r}"
            )
        entry = registry.get(cls.kind, data[TAG])
        if entry.config is None or not issubclass(entry.config, cls):
            raise ConfigError(f"{cls.kind} {data[TAG]!r} has config {entry.config}, not a {cls.__name__}")
        rest = {k: v for k, v in data.items() if k != TAG}
        return conv.structure(rest, entry.config)

    conv.register_unstructure_hook_func(
        lambda t: is_plugin_base(t) and t is not PluginConfig, unstructure_plugin
    )
    conv.register_structure_hook_func(lambda t: is_plugin_base(t) and _is_base(t), structure_plugin)
    conv.register_unstructure_hook(Path, str)
    conv.register_structure_hook(Path, lambda v, _: Path(v))
    # TOML has no null and no tuples: keep tuples as lists on the way out.
    return conv


def _is_base(t: type) -> bool:
    """True for the per-kind base classes (fields typed with them are tagged unions)."""
    return PluginConfig in t.__bases__


def to_dict(config: Any, registry: ConfigRegistry) -> dict[str, Any]:
    """The config as plain data (tagged for plugin fields)."""
    conv = make_converter(registry)
    if isinstance(config, PluginConfig):
        return conv.unstructure(config, unstructure_as=_base_of(type(config)))
    return conv.unstructure(config)


def from_dict(cls: type[T], data: dict[str, Any], registry: ConfigRegistry) -> T:
    """Build ``cls`` from plain data; errors name the dotted field path, the expected type and the fix."""
    conv = make_converter(registry)
    try:
        return conv.structure(data, cls)
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        raise ConfigError(_describe(exc, cls)) from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"invalid {cls.__name__} config: {exc}") from None


def _base_of(cls: type) -> type:
    for base in cls.__mro__:
        if isinstance(base, type) and issubclass(base, PluginConfig) and _is_base(base):
            return base
    return cls


def _describe(exc: BaseException, cls: type, path: str = "") -> str:
    """Flatten cattrs' nested exception groups into readable lines."""
    lines: list[str] = []

    def walk(e: BaseException, prefix: str, owner: type | None) -> None:
        if isinstance(e, ForbiddenExtraKeysError):
            allowed = [a.name for a in attrs.fields(e.cl)] if attrs.has(e.cl) else []
            for key in sorted(e.extra_fields):
                where = f"{prefix}.{key}" if prefix else key
                lines.append(
                    f"unknown field {where!r} for {e.cl.__name__}; allowed fields: {allowed}."
                    f"{did_you_mean(key, allowed)}"
                )
            return
        if isinstance(e, ExceptionGroup):
            for sub in e.exceptions:
                note = next((n for n in getattr(sub, "__notes__", []) if "@ attribute" in n), "")
                field = note.split("@ attribute")[-1].strip() if note else ""
                sub_owner = owner
                if field and owner is not None and attrs.has(owner):
                    fld = {a.name: a for a in attrs.fields(owner)}.get(field)
                    sub_owner = fld.type if fld is not None and isinstance(fld.type, type) else None
                walk(sub, f"{prefix}.{field}" if (prefix and field) else (field or prefix), sub_owner)
            return
        expected = ""
        if owner is not None:
            expected = f" (expected {getattr(owner, '__name__', owner)})"
        lines.append(f"field {prefix or '<root>'!r}{expected}: {type(e).__name__}: {e}")

    walk(exc, path, cls)
    return f"invalid {cls.__name__} config:\n  " + "\n  ".join(lines)


def loads(text: str, cls: type[T], fmt: str, registry: ConfigRegistry) -> T:
    data = tomllib.loads(text) if fmt == "toml" else json.loads(text)
    return from_dict(cls, data, registry)


def dumps(config: Any, fmt: str, registry: ConfigRegistry) -> str:
    data = to_dict(config, registry)
    if fmt == "toml":
        return tomli_w.dumps(_drop_none(data))
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    raise ConfigError(f"unknown config format {fmt!r}; use 'toml' or 'json'")


def load(path: str | Path, cls: type[T], registry: ConfigRegistry) -> T:
    """Read a config from a ``.toml`` or ``.json`` file."""
    path = Path(path)
    fmt = _format_of(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    return loads(text, cls, fmt, registry)


def dump(config: Any, path: str | Path, registry: ConfigRegistry) -> Path:
    """Write a config to a ``.toml`` or ``.json`` file (the resolved config every run keeps)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(config, _format_of(path), registry))
    return path


def _format_of(path: Path) -> str:
    if path.suffix in (".toml", ".json"):
        return path.suffix[1:]
    raise ConfigError(f"config file {path} must end in .toml or .json")


def _drop_none(data: Any) -> Any:
    """TOML has no null: a None field is written as absent (the default applies on load)."""
    if isinstance(data, dict):
        return {k: _drop_none(v) for k, v in data.items() if v is not None}
    if isinstance(data, (list, tuple)):
        return [_drop_none(v) for v in data]
    return data


@attrs.frozen
class Preset:
    """A named config kept as plain data and built on use through the registry.

    Presets that combine plugins (a loop naming a backend, a policy and an extractor) are written this way so
    the core never imports a plugin: the ``name`` tags resolve when the preset is used, and a missing plugin
    gives the registry's "no <kind> named ..." error.

    Attributes:
        cls: the config class, or its ``"module:Class"`` path, imported only when the preset is used (so
            registering the loop's presets does not import the loop and its trainers).
        data: the config as plain data (tagged tables for plugin fields).
        description: one line for ``recap config list``.
    """

    cls: type | str
    data: dict[str, Any]
    description: str = ""

    def config_class(self) -> type:
        if isinstance(self.cls, type):
            return self.cls
        module, sep, name = self.cls.partition(":")
        try:
            found = getattr(importlib.import_module(module), name) if sep else None
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"preset config class {self.cls!r} cannot be imported: {exc}") from None
        if not isinstance(found, type):
            raise ConfigError(f"preset config class {self.cls!r} must be written 'package.module:ClassName'")
        return found

    def resolve(self, registry: ConfigRegistry) -> Any:
        return from_dict(self.config_class(), self.data, registry)


def resolve_preset(name: str, registry: ConfigRegistry) -> Any:
    """The config instance of a registered preset (built from data when it is a :class:`Preset`)."""
    value = registry.get("preset", name).factory
    return value.resolve(registry) if isinstance(value, Preset) else value

"""The plugin manager: loads built-in and entry-point plugins and owns the typed registries.

Environment switches:
  ``RECAP_PLUGINS=a,b``          load only these entry-point plugins (built-ins always load).
  ``RECAP_DISABLE_PLUGINS=a,b``  skip these entry-point plugins.
  ``RECAP_NO_ENTRYPOINTS=1``     load no entry-point plugins at all (the test suite sets this).
  ``RECAP_TRACE_PLUGINS=1``      print each load step to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any

import attrs
import pluggy

from recap import __version__, hookspecs
from recap.config import PluginConfig, Preset
from recap.errors import PluginError, did_you_mean
from recap.hookspecs import PROJECT, hookimpl

__all__ = ["Entry", "PluginFailure", "Registry", "get_registry", "hookimpl", "load_registry", "set_registry"]

ENTRYPOINT_GROUP = "recap"

#: Built-in implementations register through the same manager as third-party plugins.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "recap.builtins.labeler",
    "recap.builtins.mlp_flow",
    "recap.loop.presets",
)

#: registry kind -> hook that fills it
KIND_HOOKS: dict[str, str] = {
    "policy": "register_policies",
    "value_network": "register_value_networks",
    "value_estimator": "register_value_estimators",
    "labeler": "register_labelers",
    "extractor": "register_extractors",
    "backend": "register_backends",
    "teleoperator": "register_teleoperators",
    "demonstrator": "register_demonstrators",
    "preset": "register_presets",
    "weights_importer": "register_weight_importers",
}


@attrs.frozen
class Entry:
    """One registered thing and where it came from.

    Attributes:
        factory: what ``build`` calls (for presets: the config instance or ``Preset``).
        config: the factory's config class; for a preset its config class, or None when the preset names
            its class by path (``Registry.preset_class`` imports it).
        plugin / distribution / version: who registered it.
    """

    kind: str
    name: str
    factory: Any
    config: type | None
    plugin: str
    distribution: str
    version: str

    def build(self, *args: Any, **kwargs: Any) -> Any:
        return self.factory(*args, **kwargs)


@attrs.frozen
class PluginFailure:
    """A plugin that was skipped, and why."""

    plugin: str
    distribution: str
    error: str


@attrs.define
class Registry:
    """Registered entries per kind, plus loaded plugins and failures."""

    entries: dict[str, dict[str, Entry]] = attrs.field(factory=lambda: {k: {} for k in KIND_HOOKS})
    plugins: dict[str, tuple[str, str]] = attrs.field(factory=dict)  # plugin -> (distribution, version)
    failures: list[PluginFailure] = attrs.field(factory=list)

    def get(self, kind: str, name: str) -> Entry:
        """The entry ``name`` of ``kind``; a clear error with close matches when missing."""
        table = self._table(kind)
        if name not in table:
            known = sorted(table)
            raise PluginError(
                f"no {kind} named {name!r} is registered (known: {known}).{did_you_mean(name, known)} "
                "Install the plugin that provides it, or check `recap plugins`."
            )
        return table[name]

    def names(self, kind: str) -> list[str]:
        return sorted(self._table(kind))

    def all_entries(self) -> Iterator[Entry]:
        for table in self.entries.values():
            yield from table.values()

    def build(self, config: PluginConfig, /, *args: Any, **kwargs: Any) -> Any:
        """Build what ``config`` configures: ``factory(config, *args, **kwargs)`` of :meth:`entry_for`.

        The extra arguments follow the kind's factory signature (``recap.hookspecs``), e.g.
        ``registry.build(policy_config, spec, stats)``.
        """
        return self.entry_for(config).build(config, *args, **kwargs)

    def entry_for(self, config: PluginConfig) -> Entry:
        """The entry of registry kind ``config.kind`` whose config class is exactly ``type(config)``."""
        cls = type(config)
        kind = getattr(cls, "kind", None)
        if kind not in self.entries:
            raise PluginError(
                f"{_qualname(cls)} names no registry kind (kind={kind!r}); a plugin config subclasses the "
                f"base of its kind in recap.config (kinds: {sorted(self.entries)})"
            )
        for entry in self.entries[kind].values():
            if entry.config is cls:
                return entry
        raise PluginError(
            f"no {kind} is registered with config class {_qualname(cls)} (registered {kind}s: "
            f"{self.names(kind)}). Install the plugin that provides it, or register it with "
            f"register(name, factory, config={cls.__name__}) in a {KIND_HOOKS[kind]} hook."
        )

    def preset_class(self, name: str) -> type:
        """The config class of preset ``name`` (imported now for presets that name it by path)."""
        value = self.get("preset", name).factory
        return value.config_class() if isinstance(value, Preset) else type(value)

    def _table(self, kind: str) -> dict[str, Entry]:
        if kind not in self.entries:
            raise PluginError(f"unknown registry kind {kind!r}; kinds are {sorted(self.entries)}")
        return self.entries[kind]

    def add(self, entry: Entry) -> None:
        table = self._table(entry.kind)
        if entry.name in table:
            old = table[entry.name]
            raise PluginError(
                f"duplicate {entry.kind} name {entry.name!r}: already registered by plugin {old.plugin!r} "
                f"(distribution {old.distribution} {old.version}); plugin {entry.plugin!r} (distribution "
                f"{entry.distribution} {entry.version}) tried to register it again. Rename one of them or "
                "disable a plugin with RECAP_DISABLE_PLUGINS."
            )
        shared = [e for e in table.values() if entry.kind != "preset" and e.config is entry.config]
        if shared:
            raise PluginError(
                f"{entry.kind} {entry.name!r} from plugin {entry.plugin!r}: its config class "
                f"{entry.config.__name__} is already registered as {entry.kind} {shared[0].name!r} by plugin "
                f"{shared[0].plugin!r}; each name needs its own config class (a config is built and saved by it)"
            )
        table[entry.name] = entry

    def remove_plugin(self, plugin: str) -> None:
        for table in self.entries.values():
            for name in [n for n, e in table.items() if e.plugin == plugin]:
                del table[name]


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _trace(msg: str) -> None:
    if os.environ.get("RECAP_TRACE_PLUGINS"):
        print(f"[recap.plugins] {msg}", file=sys.stderr)


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _unknown_hooks(module: object) -> list[str]:
    known = set(KIND_HOOKS.values())
    found = []
    for attr in dir(module):
        fn = getattr(module, attr, None)
        if callable(fn) and hasattr(fn, f"{PROJECT}_impl") and attr not in known:
            found.append(attr)
    return found


def _register_callback(
    registry: Registry, kind: str, plugin: str, dist: str, ver: str
) -> Callable[..., None]:
    """The ``register`` callback handed to ``kind``'s hook (its signature: ``recap.hookspecs.Register<Kind>``)."""

    def register(name: str, factory: Any, *, config: type[PluginConfig]) -> None:
        _check_name(name)
        if not (isinstance(config, type) and attrs.has(config)):
            raise PluginError(
                f"{kind} {name!r} from plugin {plugin!r}: config must be an attrs class, got {config!r}"
            )
        if getattr(config, "kind", None) != kind:
            raise PluginError(
                f"{kind} {name!r} from plugin {plugin!r}: config class {config.__name__} is a config of kind "
                f"{getattr(config, 'kind', None)!r}; subclass the {kind} base class of recap.config"
            )
        registry.add(Entry(kind, name, factory, config, plugin, dist, ver))

    def register_preset(name: str, preset: Any, /) -> None:
        _check_name(name)
        if isinstance(preset, Preset):
            # a class named by path stays unimported until the preset is used
            cls = preset.cls if isinstance(preset.cls, type) else None
        elif attrs.has(type(preset)):
            cls = type(preset)
        else:
            raise PluginError(f"preset {name!r} from plugin {plugin!r} must be an attrs instance or a Preset")
        registry.add(Entry(kind, name, preset, cls, plugin, dist, ver))

    def _check_name(name: object) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {kind} with an invalid name {name!r}")

    return register_preset if kind == "preset" else register


def load_registry(
    extra_plugins: Iterable[tuple[str, object] | str] = (),
    *,
    entrypoints: bool | None = None,
) -> Registry:
    """Build a registry from the built-ins, entry-point plugins and ``extra_plugins``.

    ``extra_plugins`` are modules (or dotted module names) registered as if they were installed; tests use
    this instead of entry points. A plugin that fails to import, declares an unknown hook or fails while
    registering is rolled back, recorded in ``registry.failures`` and reported with a warning.
    """
    if entrypoints is None:
        entrypoints = not os.environ.get("RECAP_NO_ENTRYPOINTS")
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    candidates: list[tuple[str, str, str, Callable[[], object]]] = []
    for mod in BUILTIN_PLUGINS:
        candidates.append((mod, "recap", __version__, lambda mod=mod: importlib.import_module(mod)))
    if entrypoints:
        allow, deny = _env_list("RECAP_PLUGINS"), _env_list("RECAP_DISABLE_PLUGINS") or set()
        for ep in entry_points(group=ENTRYPOINT_GROUP):
            if (allow is not None and ep.name not in allow) or ep.name in deny:
                _trace(f"skipping {ep.name} (RECAP_PLUGINS / RECAP_DISABLE_PLUGINS)")
                continue
            dist = ep.dist.name if ep.dist else "?"
            ver = ep.dist.version if ep.dist else "?"
            candidates.append((ep.name, dist, ver, ep.load))
    for item in extra_plugins:
        if isinstance(item, str):
            candidates.append((item, "(local)", "", lambda item=item: importlib.import_module(item)))
        else:
            name, module = item
            candidates.append((name, "(local)", "", lambda module=module: module))

    for plugin, dist, ver, load in candidates:
        if plugin in registry.plugins:
            continue
        _trace(f"loading {plugin} from {dist} {ver}")
        try:
            module = load()
            unknown = _unknown_hooks(module)
            if unknown:
                raise PluginError(
                    f"implements unknown hook(s) {unknown}; known hooks: {sorted(KIND_HOOKS.values())}"
                )
            pm.register(module, name=plugin)
        except Exception as exc:  # a broken plugin is named, not fatal
            _fail(registry, plugin, dist, exc)
            continue
        registry.plugins[plugin] = (dist, ver)

    for kind, hook in KIND_HOOKS.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            plugin = impl.plugin_name
            if plugin not in registry.plugins:
                continue
            dist, ver = registry.plugins[plugin]
            try:
                impl.function(register=_register_callback(registry, kind, plugin, dist, ver))
            except Exception as exc:
                registry.remove_plugin(plugin)
                del registry.plugins[plugin]
                _fail(registry, plugin, dist, exc)
    return registry


def _fail(registry: Registry, plugin: str, dist: str, exc: BaseException) -> None:
    msg = f"{type(exc).__name__}: {exc}"
    registry.failures.append(PluginFailure(plugin, dist, msg))
    warnings.warn(f"recap plugin {plugin!r} (from {dist}) was skipped: {msg}", RuntimeWarning, stacklevel=3)
    _trace(f"FAILED {plugin}: {msg}")


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry()
    return _REGISTRY


def set_registry(registry: Registry | None) -> Registry | None:
    """Replace the process-wide registry (tests use this); returns the previous one."""
    global _REGISTRY
    previous, _REGISTRY = _REGISTRY, registry
    return previous


def module_plugin(name: str, **hooks: Callable[..., None]) -> tuple[str, types.ModuleType]:
    """Make an in-memory plugin module from hook functions (handy in tests and notebooks)."""
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(module, hook, hookimpl(fn))
    return name, module

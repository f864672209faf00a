"""Field-by-field command-line overrides of a config, with tyro.

Top-level fields typed with a plugin base class (``extractor: ExtractorConfig``) become switches, one per
registered implementation (``extractor:awr --extractor.beta 2``); every other field is ``--a.b value``.

tyro applies an option to the switch right before it. ``arrange`` first moves every option next to the
switch of its own field (inserting the field's current choice when only its options were given), so options
and switches may come in any order, and turns ``--flag True`` / ``--flag False`` into tyro's flags.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import attrs
import tyro

from recap.config import PluginConfig, _is_base
from recap.errors import ConfigError


def _plugin_base(tp: Any) -> tuple[type | None, bool]:
    """(base class, optional) when ``tp`` is a plugin base or ``base | None``."""
    if isinstance(tp, type) and issubclass(tp, PluginConfig) and _is_base(tp):
        return tp, False
    if get_origin(tp) in (Union, UnionType):
        args = [a for a in get_args(tp) if a is not NoneType]
        if len(args) == 1 and NoneType in get_args(tp):
            base, _ = _plugin_base(args[0])
            return base, True
    return None, False


def _choices(base: type, optional: bool, default: Any, registry: Any) -> Any:
    options = []
    for name in registry.names(base.kind):
        cfg_cls = registry.get(base.kind, name).config
        if cfg_cls is None:
            continue
        dflt = default if type(default) is cfg_cls else cfg_cls()
        options.append(Annotated[cfg_cls, tyro.conf.subcommand(name, default=dflt)])
    if optional:
        options.append(Annotated[NoneType, tyro.conf.subcommand("none", default=None)])
    return Union[tuple(options)]  # noqa: UP007 - built at run time


def concretize(cls: type, default: Any, registry: Any) -> type:
    """An attrs class like ``cls`` whose plugin fields are unions of the registered implementations."""
    attrs.resolve_types(cls)  # modules with `from __future__ import annotations` leave field types as strings
    fields = {}
    for f in attrs.fields(cls):
        base, optional = _plugin_base(f.type)
        typ = _choices(base, optional, getattr(default, f.name), registry) if base else f.type
        fields[f.name] = attrs.field(type=typ)
    return attrs.make_class(cls.__name__, fields, frozen=True)


def _dashed(name: str) -> str:
    return name.replace("_", "-")


def _switch_fields(cls: type, registry: Any) -> dict[str, tuple[type, bool]]:
    """Dashed field name -> (plugin base, optional) of the fields tyro shows as switches (two or more
    choices; a single choice is plain ``--field.x`` options)."""
    out = {}
    for f in attrs.fields(cls):
        base, optional = _plugin_base(f.type)
        if base is None:
            continue
        choices = [n for n in registry.names(base.kind) if registry.get(base.kind, n).config is not None]
        if len(choices) + optional >= 2:
            out[_dashed(f.name)] = (base, optional)
    return out


def _bool_options(cls: type, registry: Any, prefix: str = "", depth: int = 0) -> set[str]:
    """Dashed option names (``backend.privileged-state``) of every bool field under ``cls``."""
    if depth > 6:
        return set()
    attrs.resolve_types(cls)
    out: set[str] = set()
    for f in attrs.fields(cls):
        name = prefix + _dashed(f.name)
        base, _ = _plugin_base(f.type)
        if f.type is bool:
            out.add(name)
        elif base is not None:
            for n in registry.names(base.kind):
                config_cls = registry.get(base.kind, n).config
                if config_cls is not None:
                    out |= _bool_options(config_cls, registry, name + ".", depth + 1)
        elif attrs.has(f.type):
            out |= _bool_options(f.type, registry, name + ".", depth + 1)
    return out


_BOOL_WORDS = {"true": True, "false": False}


def _as_flag(option: str, values: list[str], bools: set[str]) -> list[str] | None:
    """``--a.flag True`` -> ``--a.flag``; ``--a.flag False`` -> ``--a.no-flag``; None if not such a pair."""
    name, _, inline = option[2:].partition("=")
    words = [inline] if inline else values
    if _dashed(name) not in bools or len(words) != 1 or words[0].lower() not in _BOOL_WORDS:
        return None
    if _BOOL_WORDS[words[0].lower()]:
        return [f"--{name}"]
    head, _, last = name.rpartition(".")
    return [f"--{head + '.' if head else ''}no-{last}"]


def arrange(cls: type, default: Any, args: Sequence[str], registry: Any) -> list[str]:
    """``args`` reordered for tyro: top-level options, then each switch followed by its own options."""
    switches = _switch_fields(cls, registry)
    bools = _bool_options(cls, registry)
    switch_token = re.compile(rf"^({'|'.join(map(re.escape, switches))}):[^\s=]+$") if switches else None
    top: list[str] = []
    groups: dict[str, list[str]] = {}  # field -> its options, in the order given
    chosen: dict[str, str] = {}  # field -> its switch token
    i = 0
    while i < len(args):
        token = args[i]
        if switch_token is not None and switch_token.match(token):
            field = token.split(":", 1)[0]
            chosen[field] = token
            groups.setdefault(field, [])
            i += 1
            continue
        if not token.startswith("--"):
            top.append(token)  # a positional argument (or a stray value: tyro reports it)
            i += 1
            continue
        j = i + 1
        while (
            j < len(args)
            and not args[j].startswith("--")
            and not (switch_token and switch_token.match(args[j]))
        ):
            j += 1
        option, values = token, list(args[i + 1 : j])
        unit = _as_flag(option, values, bools) or [option, *values]
        field = _dashed(option[2:].partition("=")[0]).split(".", 1)[0]
        if field in switches and "." in option:
            groups.setdefault(field, []).extend(unit)
        else:
            top.extend(unit)
        i = j
    out = list(top)
    for field, options in groups.items():
        out.append(chosen.get(field) or _current_switch(field, default, registry, switches, options))
        out.extend(options)
    return out


def _current_switch(field: str, default: Any, registry: Any, switches: dict, options: list[str]) -> str:
    """The switch of ``field``'s current choice, for options given without naming one."""
    base, optional = switches[field]
    current = getattr(default, field.replace("-", "_"))
    if current is None:
        names = registry.names(base.kind)
        raise ConfigError(
            f"{options[0]} sets a field of {field}, which is none here: name one first, e.g. "
            f"`{field}:{names[0] if names else 'NAME'} {options[0]} ...` (choices: {', '.join(names)})"
        )
    return f"{field}:{registry.entry_for(current).name}"


def parse(cls: type, default: Any, args: Sequence[str], prog: str, description: str, registry: Any) -> Any:
    """Parse ``args`` as overrides of ``default`` and return an instance of ``cls``."""
    flat = concretize(cls, default, registry)
    parsed = tyro.cli(
        flat,
        default=flat(**{f.name: getattr(default, f.name) for f in attrs.fields(cls)}),
        args=arrange(cls, default, args, registry),
        prog=prog,
        description=description,
    )
    try:
        return cls(**{f.name: getattr(parsed, f.name) for f in attrs.fields(cls)})
    except ValueError as exc:  # a field's validator
        raise ConfigError(str(exc)) from None


def parse_command(
    cls: type, defaults: dict[str, Any], args: Sequence[str], prog: str, description: str
) -> Any:
    """A command's settings: ``--config FILE`` (saved settings) or ``defaults``, then the overrides in
    ``args``. Fields without a default and not in ``defaults`` are required options."""
    from recap import config as config_io
    from recap.plugins import get_registry

    registry = get_registry()
    args = list(args)
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            raise ConfigError(f"--config needs a path to a .toml or .json file of {prog} settings")
        base = config_io.load(args[i + 1], cls, registry)
        del args[i : i + 2]
    else:
        required = {
            f.name: tyro.MISSING
            for f in attrs.fields(cls)
            if f.default is attrs.NOTHING and f.name not in defaults
        }
        base = cls(**defaults, **required)
    return parse(cls, base, args, prog, description, registry)

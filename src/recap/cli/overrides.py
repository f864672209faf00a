"""Field-by-field command-line overrides of a config, with tyro.

Top-level fields typed with a plugin base class (``extractor: ExtractorConfig``) become subcommands, one per
registered implementation (``extractor:awr --extractor.beta 2``); every other field is ``--a.b value``.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import attrs
import tyro

from recap.config import PluginConfig, _is_base


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


def parse(cls: type, default: Any, args: Sequence[str], prog: str, description: str, registry: Any) -> Any:
    """Parse ``args`` as overrides of ``default`` and return an instance of ``cls``."""
    flat = concretize(cls, default, registry)
    parsed = tyro.cli(
        flat,
        default=flat(**{f.name: getattr(default, f.name) for f in attrs.fields(cls)}),
        args=list(args),
        prog=prog,
        description=description,
    )
    return cls(**{f.name: getattr(parsed, f.name) for f in attrs.fields(cls)})

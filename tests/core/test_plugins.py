import importlib.metadata as md
import sys
import types

import attrs
import pytest

from recap import plugins
from recap.config import ExtractorConfig
from recap.errors import PluginError
from recap.plugins import load_registry, module_plugin


@attrs.frozen
class DummyConfig(ExtractorConfig):
    scale: float = 1.0


def _extractors(name):
    def register_extractors(register):
        register(name, lambda cfg: ("extractor", cfg), config=DummyConfig)

    return register_extractors


def test_builtin_labeler_registered():
    reg = load_registry(entrypoints=False)
    entry = reg.get("labeler", "recap")
    assert entry.distribution == "recap" and entry.plugin == "recap.builtins.labeler"


def test_extra_plugin_registers_and_builds():
    reg = load_registry([module_plugin("mine", register_extractors=_extractors("dummy"))], entrypoints=False)
    entry = reg.get("extractor", "dummy")
    assert entry.build(DummyConfig(2.0)) == ("extractor", DummyConfig(2.0))
    assert reg.name_of_config("extractor", DummyConfig()) == "dummy"


def test_duplicate_refused_naming_both(recwarn):
    reg = load_registry(
        [
            module_plugin("first", register_extractors=_extractors("dup")),
            module_plugin("second", register_extractors=_extractors("dup")),
        ],
        entrypoints=False,
    )
    assert reg.get("extractor", "dup").plugin == "first"
    (failure,) = reg.failures
    assert failure.plugin == "second"
    assert "duplicate extractor name 'dup'" in failure.error and "'first'" in failure.error
    assert "second" not in reg.plugins


def test_broken_plugin_named_and_skipped():
    with pytest.warns(RuntimeWarning, match="no_such_module_xyz"):
        reg = load_registry(
            ["no_such_module_xyz", module_plugin("ok", register_extractors=_extractors("a"))],
            entrypoints=False,
        )
    assert reg.get("extractor", "a")
    assert [f.plugin for f in reg.failures] == ["no_such_module_xyz"]
    assert "ModuleNotFoundError" in reg.failures[0].error


def test_unknown_hook_reported():
    mod = types.ModuleType("typo")
    mod.register_extractorz = plugins.hookimpl(lambda register: None)
    with pytest.warns(RuntimeWarning, match="unknown hook"):
        reg = load_registry([("typo", mod)], entrypoints=False)
    assert "register_extractorz" in reg.failures[0].error


def test_error_inside_hook_rolls_back_plugin():
    def register_extractors(register):
        register("half", lambda c: None, config=DummyConfig)
        raise RuntimeError("boom")

    with pytest.warns(RuntimeWarning, match="boom"):
        reg = load_registry(
            [module_plugin("bad", register_extractors=register_extractors)], entrypoints=False
        )
    assert "half" not in reg.names("extractor")


def test_unknown_name_suggests_close_match():
    reg = load_registry(entrypoints=False)
    with pytest.raises(PluginError, match="Did you mean 'recap'"):
        reg.get("labeler", "recapp")


def _fake_entry_points(monkeypatch, names):
    mods = {}
    for n in names:
        name, mod = module_plugin(f"ep_{n}", register_extractors=_extractors(n))
        sys.modules[name] = mod
        mods[n] = md.EntryPoint(n, name, "recap")
    monkeypatch.setattr(plugins, "entry_points", lambda group: list(mods.values()))


def test_allow_and_deny_lists(monkeypatch):
    _fake_entry_points(monkeypatch, ["x", "y", "z"])
    monkeypatch.setenv("RECAP_PLUGINS", "x,y")
    monkeypatch.setenv("RECAP_DISABLE_PLUGINS", "y")
    reg = load_registry(entrypoints=True)
    assert reg.names("extractor") == ["x"]


def test_no_entrypoints_env(monkeypatch):
    _fake_entry_points(monkeypatch, ["x"])
    monkeypatch.setenv("RECAP_NO_ENTRYPOINTS", "1")
    assert load_registry().names("extractor") == []

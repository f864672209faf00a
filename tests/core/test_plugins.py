import collections
import importlib.metadata as md
import subprocess
import sys
import types

import attrs
import pytest

from recap import plugins
from recap.config import ExtractorConfig, PluginConfig, Preset
from recap.errors import ConfigError, PluginError
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
    assert reg.entry_for(DummyConfig()) is entry


@attrs.frozen
class OtherConfig(ExtractorConfig):
    scale: float = 1.0


@attrs.frozen
class SubDummyConfig(DummyConfig):
    pass


def test_build_picks_the_entry_of_the_configs_exact_class_and_passes_arguments():
    def register_extractors(register):
        register("dummy", lambda cfg, *args, **kw: ("dummy", cfg, args, kw), config=DummyConfig)
        register("other", lambda cfg: ("other", cfg), config=OtherConfig)

    reg = load_registry([module_plugin("mine", register_extractors=register_extractors)], entrypoints=False)
    assert reg.build(DummyConfig(2.0), 1, k="v") == ("dummy", DummyConfig(2.0), (1,), {"k": "v"})
    assert reg.build(OtherConfig()) == ("other", OtherConfig())


def test_build_refuses_an_unregistered_config_class_naming_kind_class_and_names():
    reg = load_registry([module_plugin("mine", register_extractors=_extractors("dummy"))], entrypoints=False)
    # a subclass of a registered config is a different config: it must be registered itself
    with pytest.raises(PluginError) as err:
        reg.build(SubDummyConfig())
    msg = str(err.value)
    assert "no extractor is registered" in msg and "SubDummyConfig" in msg and "['dummy']" in msg


@attrs.frozen
class KindlessConfig:
    x: int = 0


def test_build_refuses_a_config_of_no_registry_kind():
    reg = load_registry(entrypoints=False)
    with pytest.raises(PluginError, match="KindlessConfig names no registry kind"):
        reg.build(KindlessConfig())
    with pytest.raises(PluginError, match="names no registry kind"):
        reg.build(PluginConfig())  # the base of the kind bases has no kind


def test_a_config_class_of_another_kind_is_refused_at_registration():
    def register_policies(register):
        register("p", lambda *a: None, config=DummyConfig)

    with pytest.warns(RuntimeWarning, match="is a config of kind 'extractor'"):
        reg = load_registry([module_plugin("wrong", register_policies=register_policies)], entrypoints=False)
    assert "p" not in reg.names("policy") and [f.plugin for f in reg.failures] == ["wrong"]


def test_a_preset_naming_its_class_by_path_imports_it_only_when_used():
    def register_presets(register):
        register("lazy", Preset("collections:OrderedDict", {}))
        register("broken", Preset("no_such_module_xyz:Config", {}))

    reg = load_registry([module_plugin("p", register_presets=register_presets)], entrypoints=False)
    assert reg.get("preset", "lazy").config is None
    assert reg.preset_class("lazy") is collections.OrderedDict
    with pytest.raises(ConfigError, match="no_such_module_xyz:Config"):
        reg.preset_class("broken")


def test_loading_the_registry_imports_neither_the_loop_nor_the_trainers():
    code = (
        "import sys\n"
        "from recap.plugins import load_registry\n"
        "reg = load_registry(entrypoints=False)\n"
        "assert 'demo' in reg.names('preset')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('recap.train', 'recap.loop', 'recap.cli'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # the loop's presets are data that name their config class by path
    assert out.strip() == "['recap.loop', 'recap.loop.presets']"


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


def test_a_config_class_serves_one_name_only():
    def register_extractors(register):
        register("one", lambda cfg: cfg, config=DummyConfig)
        register("alias", lambda cfg: cfg, config=DummyConfig)

    with pytest.warns(RuntimeWarning, match="already registered as extractor 'one'"):
        reg = load_registry(
            [module_plugin("twice", register_extractors=register_extractors)], entrypoints=False
        )
    assert "one" not in reg.names("extractor") and "alias" not in reg.names("extractor")


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

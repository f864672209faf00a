import json
import subprocess
import sys

import attrs
import pytest

from recap.cli import overrides
from recap.cli.main import main
from recap.config import ExtractorConfig, TeleoperatorConfig
from recap.errors import ConfigError
from recap.plugins import load_registry, module_plugin, set_registry


@attrs.frozen
class A(ExtractorConfig):
    beta: float = 1.0


@attrs.frozen
class B(ExtractorConfig):
    w: int = 3
    clip: bool = False


@attrs.frozen
class W(TeleoperatorConfig):
    x: int = 0


@attrs.frozen
class Run:
    steps: int = 10
    extractor: ExtractorConfig = attrs.field(factory=A)
    expert: TeleoperatorConfig | None = None


@pytest.fixture
def reg():
    def register_extractors(register):
        register("a", A, config=A)
        register("b", B, config=B)

    def register_teleoperators(register):
        register("watch", lambda c, backend: None, config=W)

    plugin = module_plugin(
        "t", register_extractors=register_extractors, register_teleoperators=register_teleoperators
    )
    return load_registry([plugin], entrypoints=False)


def test_overrides_field_and_switch_plugin(reg):
    base = Run(extractor=A(2.0))
    assert overrides.parse(Run, base, ["--steps", "3"], "x", "", reg) == Run(3, A(2.0))
    assert overrides.parse(Run, base, ["extractor:a", "--extractor.beta", "5"], "x", "", reg) == Run(
        10, A(5.0)
    )
    assert overrides.parse(Run, base, ["extractor:b", "--extractor.w", "7"], "x", "", reg) == Run(10, B(7))


@pytest.mark.parametrize(
    "args",
    [
        ["extractor:b", "--extractor.w", "7", "--steps", "3"],  # a top-level option after a switch
        ["--extractor.w", "7", "extractor:b", "--steps", "3"],  # a switch's option before it
        ["--steps", "3", "--extractor.w", "7", "extractor:b"],
    ],
)
def test_options_go_to_their_own_switch_in_any_order(reg, args):
    assert overrides.parse(Run, Run(), args, "x", "", reg) == Run(3, B(7))


def test_options_without_a_switch_go_to_the_current_choice(reg):
    assert overrides.parse(Run, Run(extractor=B()), ["--extractor.w", "4"], "x", "", reg) == Run(10, B(4))
    parsed = overrides.parse(Run, Run(), ["--expert.x", "2", "expert:watch", "extractor:a"], "x", "", reg)
    assert parsed == Run(10, A(), W(2))


def test_options_of_a_field_set_to_none_say_where_the_switch_goes(reg):
    with pytest.raises(ConfigError, match="name one first, e.g. `expert:watch --expert.x"):
        overrides.parse(Run, Run(), ["--expert.x", "2"], "x", "", reg)


@pytest.mark.parametrize(
    ("words", "clip"), [(["True"], True), (["False"], False), (["true"], True), ([], True)]
)
def test_booleans_take_true_and_false(reg, words, clip):
    base = Run(extractor=B(clip=not clip))
    assert overrides.parse(Run, base, ["--extractor.clip", *words], "x", "", reg).extractor.clip is clip
    inline = overrides.parse(Run, base, [f"--extractor.clip={clip}"], "x", "", reg)
    assert inline.extractor.clip is clip


def test_loop_help_shows_a_worked_example(capsys):
    pytest.importorskip("recap_pi06")
    previous = set_registry(load_registry(entrypoints=True))  # the installed plugins, as a user has them
    try:
        with pytest.raises(SystemExit):
            main(["loop", "smoke", "--help"])
    finally:
        set_registry(previous)
    out = capsys.readouterr().out
    assert "policy:pi06 --policy.chunk-size 10" in out and "expert:scripted-expert" in out


def test_unknown_command_suggests(capsys):
    assert main(["plugin"]) == 2
    assert "Did you mean 'plugins'" in capsys.readouterr().err


def test_plugins_json_lists_builtin_labeler():
    out = subprocess.run(
        [sys.executable, "-m", "recap.cli.main", "plugins", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={"RECAP_NO_ENTRYPOINTS": "1", "PATH": ""},
    ).stdout
    entries = json.loads(out)["entries"]
    assert any(
        e["name"] == "recap" and e["kind"] == "labeler" and e["distribution"] == "recap" for e in entries
    )

import json
import subprocess
import sys

import attrs
import pytest

from recap.cli import overrides
from recap.cli.main import main
from recap.config import ExtractorConfig, TeleoperatorConfig
from recap.plugins import load_registry, module_plugin


@attrs.frozen
class A(ExtractorConfig):
    beta: float = 1.0


@attrs.frozen
class B(ExtractorConfig):
    w: int = 3


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

    return load_registry([module_plugin("t", register_extractors=register_extractors)], entrypoints=False)


def test_overrides_field_and_switch_plugin(reg):
    base = Run(extractor=A(2.0))
    assert overrides.parse(Run, base, ["--steps", "3"], "x", "", reg) == Run(3, A(2.0))
    assert overrides.parse(Run, base, ["extractor:a", "--extractor.beta", "5"], "x", "", reg) == Run(
        10, A(5.0)
    )
    assert overrides.parse(Run, base, ["extractor:b", "--extractor.w", "7"], "x", "", reg) == Run(10, B(7))


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

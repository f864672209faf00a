import json

import attrs
import pytest

from recap.cli.collect_cmd import collect, parse_overrides
from recap.cli.evaluate_cmd import evaluate
from recap.cli.main import main
from recap.config import BackendConfig, DemonstratorConfig
from recap.data import EpisodeStore
from recap.errors import ConfigError
from recap.plugins import load_registry, module_plugin, set_registry

from .toy import ReachBackend, ReachDemonstrator


@attrs.frozen
class ToyBackendConfig(BackendConfig):
    time_limit: int = 30
    task: str = "reach"


@attrs.frozen
class ToyDemoConfig(DemonstratorConfig):
    target: float = 1.0


@pytest.fixture
def toy_registry():
    plugin = module_plugin(
        "toy",
        register_backends=lambda register: register(
            "toy", lambda c: ReachBackend(time_limit=c.time_limit), config=ToyBackendConfig
        ),
        register_demonstrators=lambda register: register(
            "reach", lambda c, backend: ReachDemonstrator((c or ToyDemoConfig()).target), config=ToyDemoConfig
        ),
    )
    previous = set_registry(load_registry([plugin], entrypoints=False))
    yield
    set_registry(previous)


def test_parse_overrides():
    assert parse_overrides(["a=1", "b=word", 'c=["x", "y"]', "d=true"]) == {
        "a": 1,
        "b": "word",
        "c": ["x", "y"],
        "d": True,
    }
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["novalue"])


def test_collect_then_evaluate(toy_registry, tmp_path, capsys):
    store = tmp_path / "store"
    args = dict(store=store, task="reach", backend="toy", demonstrator="reach", progress=False)
    assert collect(episodes=3, **args) == 0
    assert collect(episodes=2, seed=3, demonstrator_set=("target=0.5",), **args) == 0
    metas = EpisodeStore.open(store).episodes()
    assert len(metas) == 5 and sum(m.success is True for m in metas) == 3
    assert {m.policy_version for m in metas} == {"demonstrator:reach"}
    out = tmp_path / "eval.json"
    assert (
        evaluate(demonstrator="reach", task="reach", backend="toy", episodes=4, output=out, progress=False)
        == 0
    )
    report = json.loads(out.read_text())
    assert (
        report["success_rate"] == 1.0 and len(report["episodes"]) == 4 and report["seeds"] == [100000, 100003]
    )
    assert "throughput" in capsys.readouterr().out


def test_cli_errors_are_reported(toy_registry, tmp_path, capsys):
    code = main(
        [
            "collect",
            "--store",
            str(tmp_path / "s"),
            "--backend",
            "toy",
            "--demonstrator",
            "reach",
            "--task",
            "reach",
            "--demonstrator-set",
            "targt=0.5",
        ]
    )
    assert code == 2 and "did you mean 'target'" in capsys.readouterr().err.lower()
    with pytest.raises(ConfigError, match="nothing to evaluate"):
        evaluate(task="reach", backend="toy")

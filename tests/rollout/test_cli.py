import json

import attrs
import pytest

from recap.cli.main import main
from recap.config import BackendConfig, DemonstratorConfig
from recap.data import EpisodeStore
from recap.plugins import load_registry, module_plugin
from recap.rollout.seeds import EVAL_SEED_BASE
from recap.testing.registry import process_registry

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
    with process_registry(load_registry([plugin], entrypoints=False)):
        yield


def test_collect_then_evaluate(toy_registry, tmp_path, capsys):
    store = str(tmp_path / "store")
    assert main(["collect", "--store", store, "--task", "reach", "--episodes", "3", "--no-progress"]) == 0
    # options after the switch and a boolean given as a word, as a new user writes them
    args = ["collect", "demonstrator:reach", "--demonstrator.target", "0.5", "--store", store]
    assert main([*args, "--task", "reach", "--episodes", "2", "--seed", "3", "--progress", "False"]) == 0
    metas = EpisodeStore.open(store).episodes()
    assert len(metas) == 5 and sum(m.success is True for m in metas) == 3
    assert {m.policy_version for m in metas} == {"demonstrator:reach"}
    assert [m.seed for m in metas] == [0, 1, 2, 3, 4]
    out = tmp_path / "eval.json"
    args = ["evaluate", "--task", "reach", "--episodes", "4", "--output", str(out), "--no-progress"]
    assert main([*args, "demonstrator:reach"]) == 0
    report = json.loads(out.read_text())
    assert (
        report["success_rate"] == 1.0
        and len(report["episodes"]) == 4
        and report["seeds"] == [EVAL_SEED_BASE, EVAL_SEED_BASE + 3]
    )
    assert "throughput" in capsys.readouterr().out


def test_cli_errors_are_reported(toy_registry, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["collect", "--store", str(tmp_path / "s"), "--demonstrator.targt", "0.5"])
    assert "--demonstrator.target" in capsys.readouterr().err
    assert main(["evaluate", "--task", "reach"]) == 2  # no policy and no demonstrator
    assert "nothing to run" in capsys.readouterr().err
    assert main(["collect", "--store", str(tmp_path / "s"), "--episodes", "0"]) == 2
    assert "--episodes must be >= 1" in capsys.readouterr().err
    # recorded episodes never take evaluation seeds; indicator and guidance need a policy
    assert (
        main(
            ["collect", "--store", str(tmp_path / "s"), "--seed", str(EVAL_SEED_BASE - 1), "--episodes", "2"]
        )
        == 2
    )
    assert "reach the evaluation seeds" in capsys.readouterr().err
    assert main(["evaluate", "demonstrator:reach", "--task", "reach", "--indicator", "negative"]) == 2
    assert "give --policy" in capsys.readouterr().err

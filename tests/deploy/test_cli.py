"""`recap collect` / `recap evaluate` with a policy server URL as the policy setting."""

from __future__ import annotations

import json

import attrs
import pytest

from recap.cli.main import main
from recap.config import BackendConfig
from recap.data import EpisodeStore
from recap.deploy import PolicyServer, PolicyService
from recap.plugins import load_registry, module_plugin
from recap.testing.registry import process_registry

from .clock import SPEC, ClockBackend, ClockPolicy


@attrs.frozen
class ClockBackendConfig(BackendConfig):
    time_limit: int = 12
    task: str = "clock"


@pytest.fixture
def clock_registry():
    plugin = module_plugin(
        "clock",
        register_backends=lambda register: register(
            "clock", lambda c: ClockBackend(time_limit=c.time_limit), config=ClockBackendConfig
        ),
    )
    with process_registry(load_registry([plugin], entrypoints=False)):
        yield


def test_collect_and_evaluate_through_a_policy_server(clock_registry, tmp_path):
    policy = ClockPolicy(8)
    with PolicyServer(PolicyService(policy, SPEC, policy_id="clock-abc"), port=0) as server:
        common = ["--task", "clock", "--policy", server.url, "--chunk-execute", "4", "--no-progress"]
        assert main(["collect", "--store", str(tmp_path / "store"), "--episodes", "2", *common]) == 0
        out = tmp_path / "eval.json"
        assert main(["evaluate", "--episodes", "1", "--output", str(out), *common]) == 0
        assert policy.requests == [0, 4, 8] * 3  # 12 ticks, a chunk every 4, three episodes
        policy.requests.clear()
        asynchronous = ["--execution", "naive", "--delay-ticks", "2"]
        assert main(["evaluate", "--episodes", "1", "--output", str(out), *common, *asynchronous]) == 0
        # the first chunk arrives at tick 2 and runs from its start; the next is asked for at tick 6, arrives
        # at 8 and joins at index 2, so the one after that is asked for at tick 10
        assert policy.requests == [0, 6, 10]
        episode = json.loads(out.read_text())["episodes"][0]
        assert episode["held_ticks"] == 2 and episode["inference_delays"] == [2, 2]  # the third was still out
    metas = EpisodeStore.open(tmp_path / "store").episodes()
    assert len(metas) == 2 and {m.policy_version for m in metas} == {"clock-abc"}
    assert {m.source for m in metas} == {"autonomous"}
    report = json.loads(out.read_text())
    assert report["policy"] == server.url and report["version"] == "clock-abc"


def test_a_server_that_is_not_there_is_reported(clock_registry, capsys):
    assert main(["evaluate", "--task", "clock", "--policy", "ws://127.0.0.1:9", "--no-progress"]) == 2
    assert "cannot reach the policy server at ws://127.0.0.1:9" in capsys.readouterr().err
    assert main(["evaluate", "--task", "clock", "--policy", "http://127.0.0.1:9", "--no-progress"]) == 2
    assert "starts with ws://" in capsys.readouterr().err


def test_serve_refuses_other_addresses_without_a_key(checkpoint, capsys, monkeypatch):
    monkeypatch.delenv("RECAP_API_KEY", raising=False)
    assert main(["serve", str(checkpoint), "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "set an API key" in capsys.readouterr().err


def test_serving_a_checkpoint_on_loopback(checkpoint):
    from recap.deploy import connect_policy, serving

    with serving(checkpoint) as url:
        assert url.startswith("ws://127.0.0.1:")
        remote = connect_policy(url)
        assert remote.policy_id.startswith("policy-") and remote.chunk_size == 10
        remote.close()

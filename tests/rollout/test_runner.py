import math

import pytest
import torch

from recap.data import EpisodeStore, keys
from recap.errors import ConfigError, SchemaError
from recap.protocols import DeploymentSettings
from recap.rollout import PolicyActor, collect, evaluate, run_episode
from recap.testing.backend_suite import BackendConformance, check_backend

from .toy import SPEC, CountingPolicy, ReachBackend, ReachDemonstrator


def test_demonstrator_episode_is_recorded():
    backend, demo = ReachBackend(), ReachDemonstrator()
    record = run_episode(backend, demo, task="reach", seed=1)
    assert record.success is True and record.source == "demonstration"
    start = float(backend.reset("reach", 1).get(keys.STATE)[0])
    assert record.length == math.ceil((1.0 - 0.02 - start) / 0.1)  # 0.1 per tick until within 0.02 of 1.0
    assert record.duration_s == pytest.approx(record.length / 50)
    steps, n = record.steps, record.length
    assert steps.get(keys.ACTION).shape == (n, 14) and steps.get(keys.STATE).shape == (n, 14)
    assert steps.get(keys.image_key("cam_high")).shape == (n, 4, 6, 3)
    assert not steps.get(keys.IS_INTERVENTION).any()
    # o_t is the observation the action was computed from: the first recorded state is the reset state
    assert torch.equal(steps.get(keys.STATE)[0], backend.reset("reach", 1).get(keys.STATE))
    assert record.subtasks[0] == "s0" and record.subtasks[-1] == "s1"


def test_policy_executes_k_of_h_then_reinfers():
    policy = CountingPolicy(chunk_size=8)
    deployment = DeploymentSettings(indicator=True, guidance=1.5)
    record = run_episode(ReachBackend(), policy, task="reach", seed=0, chunk_execute=3, deployment=deployment)
    assert record.success is True and record.source == "autonomous"
    assert len(policy.calls) == math.ceil(record.length / 3)
    assert policy.calls[0] == (True, 1.5)


def test_chunk_execute_is_checked():
    with pytest.raises(ConfigError, match="between 1 and the policy's chunk size 8"):
        PolicyActor(CountingPolicy(8), chunk_execute=9)


class TakeOver:
    """Takes over at ticks [start, stop), commanding joint 0 backwards."""

    def __init__(self, start, stop):
        self.start, self.stop, self.tick = start, stop, 0

    def reset(self, task, seed):
        self.tick = 0

    def poll(self, obs):
        self.tick += 1
        if self.start <= self.tick - 1 < self.stop:
            action = obs.get(keys.STATE).clone()
            action[0] = 0.0
            return action
        return None


def test_teleoperator_steps_are_flagged_and_the_actor_resyncs():
    policy = CountingPolicy(chunk_size=8)
    record = run_episode(
        ReachBackend(), policy, task="reach", seed=0, chunk_execute=8, teleoperator=TakeOver(2, 5)
    )
    flags = record.steps.get(keys.IS_INTERVENTION)
    assert flags.tolist()[:7] == [False, False, True, True, True, False, False]
    assert record.source == "correction" and record.intervention_steps == 3 and record.success is True
    # the chunk sampled at tick 0 is dropped at the hand-back (tick 5) and chunks restart from there
    assert len(policy.calls) == 1 + math.ceil((record.length - 5) / 8)
    demo = ReachDemonstrator()
    run_episode(ReachBackend(), demo, task="reach", seed=0, teleoperator=TakeOver(2, 5))
    assert demo.replans == 1


def test_time_limits_and_unknown_outcomes():
    stuck = ReachDemonstrator(target=0.5)
    assert run_episode(ReachBackend(time_limit=6), stuck, task="reach").success is False
    cut = run_episode(ReachBackend(time_limit=100), stuck, task="reach", time_limit=7)
    assert cut.length == 7 and cut.success is False  # the backend judges success, so a cut episode failed
    unknown = run_episode(ReachBackend(judges_success=False), stuck, task="reach", time_limit=7)
    assert unknown.success is None  # a real robot: the operator labels it later
    with pytest.raises(ConfigError):
        run_episode(ReachBackend(), stuck, task="reach", time_limit=0)


def test_collect_into_store_and_report(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", SPEC)
    backend = ReachBackend(time_limit=12)
    metas, report = collect(
        backend, ReachDemonstrator(), store, task="reach", seeds=[0, 1], policy_version="v3", robot_id="toy-1"
    )
    assert [m.episode_id for m in store.episodes()] == sorted(m.episode_id for m in metas)
    episode = store.load(metas[0].episode_id)
    assert episode.meta.source == "demonstration" and episode.meta.success is True
    assert episode.meta.policy_version == "v3" and episode.meta.robot_id == "toy-1"
    assert episode.subtasks[-1] == "s1" and episode.steps.get(keys.ACTION).shape[0] == metas[0].length
    assert report.success_rate == 1.0 and [e.episode_id for e in report.episodes] == [
        m.episode_id for m in metas
    ]
    forced, _ = collect(backend, ReachDemonstrator(), store, task="reach", seeds=[2], source="correction")
    assert store.meta(forced[0].episode_id).source == "correction"


def test_evaluate_reports_rates_and_throughput():
    backend = ReachBackend(time_limit=20)
    good = evaluate(backend, ReachDemonstrator(), task="reach", seeds=range(4))
    lengths = [e.length for e in good.episodes]
    assert good.success_rate == 1.0 and good.success_rate_ci[0] < 1.0
    assert good.throughput_per_hour == pytest.approx(4 / (sum(lengths) / 50) * 3600)
    assert good.mean_time_to_success_s == pytest.approx(sum(lengths) / 4 / 50)
    bad = evaluate(backend, ReachDemonstrator(target=0.5), task="reach", seeds=range(3))
    assert (
        bad.success_rate == 0.0 and bad.throughput_per_hour == 0.0 and math.isnan(bad.mean_time_to_success_s)
    )
    assert bad.mean_duration_s == pytest.approx(20 / 50)
    data = bad.to_dict()
    assert data["mean_time_to_success_s"] is None and len(data["episodes"]) == 3
    assert any("throughput" in line for line in good.lines())
    with pytest.raises(ConfigError):
        evaluate(backend, ReachDemonstrator(), task="reach", seeds=[])


class TestToyBackendConformance(BackendConformance):
    task = "reach"

    @pytest.fixture
    def make_backend(self):
        return ReachBackend


def test_conformance_check_catches_a_wrong_observation():
    class Broken(ReachBackend):
        def _obs(self):
            obs = super()._obs()
            obs.set(keys.STATE, obs.get(keys.STATE).double())
            return obs

    with pytest.raises(SchemaError, match="observation.state"):
        check_backend(Broken(), "reach")


def test_runs_the_builtin_flow_policy():
    from recap.builtins.mlp_flow import FlowMLPConfig, FlowMLPPolicy

    policy = FlowMLPPolicy(FlowMLPConfig(hidden=16, depth=1, chunk_size=4), SPEC, None)
    record = run_episode(ReachBackend(), policy, task="reach", seed=0, chunk_execute=2, time_limit=6)
    assert record.length == 6 and record.success is False and record.source == "autonomous"
    assert torch.isfinite(record.steps.get(keys.ACTION)).all()

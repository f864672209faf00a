import numpy as np
import pytest
import torch
from recap_bimanual.sim.backend import AlohaSimBackend, AlohaSimConfig
from recap_bimanual.sim.demonstrator import ScriptedDemonstrator, ScriptedDemonstratorConfig
from recap_bimanual.sim.expert import ScriptedExpert, ScriptedExpertConfig

from recap.data import keys
from recap.errors import ConfigError
from recap.rollout import run_episode
from recap.testing.backend_suite import TeleoperatorConformance


class TestExpertConformance(TeleoperatorConformance):
    task = "transfer_cube"

    @pytest.fixture
    def make_backend(self):
        return lambda: AlohaSimBackend(AlohaSimConfig(cameras=()))

    @pytest.fixture
    def make_teleoperator(self):
        return lambda backend: ScriptedExpert(None, backend)


@pytest.fixture(scope="module")
def cube():
    with AlohaSimBackend(AlohaSimConfig(cameras=(), time_limit=500)) as backend:
        yield backend


def test_expert_rescues_a_bad_grasp_before_it_fails(cube):
    demo = ScriptedDemonstrator(ScriptedDemonstratorConfig(bad_grasp_prob=1.0), cube)
    expert = ScriptedExpert(None, cube)
    record = run_episode(cube, demo, task="transfer_cube", seed=2, teleoperator=expert)
    flags = record.steps.get(keys.IS_INTERVENTION)
    assert expert.reasons == ["bad_grasp"]
    assert record.success is True and record.source == "correction"
    # one contiguous takeover that starts after the flawed grasp and ends before the episode does
    starts = torch.nonzero(flags[1:] & ~flags[:-1]).flatten()
    assert len(starts) == 1 and starts[0] > 50 and not flags[-1]


def test_expert_stays_out_of_a_good_episode(cube):
    record = run_episode(
        cube,
        ScriptedDemonstrator(None, cube),
        task="transfer_cube",
        seed=4,
        teleoperator=ScriptedExpert(None, cube),
    )
    assert record.success is True and record.intervention_steps == 0 and record.source == "demonstration"


def test_expert_takes_over_when_nothing_happens(cube):
    class Idle:
        def reset(self, task, seed):
            pass

        def act(self, obs):
            return obs.get(keys.STATE)

    expert = ScriptedExpert(ScriptedExpertConfig(no_progress_steps=20), cube)
    record = run_episode(cube, Idle(), task="transfer_cube", seed=0, teleoperator=expert, time_limit=60)
    assert expert.reasons[0] == "no_progress"
    assert (
        not record.steps.get(keys.IS_INTERVENTION)[:20].any()
        and record.steps.get(keys.IS_INTERVENTION)[25:].all()
    )


def test_expert_finishes_a_hand_over_that_stalls(cube):
    class StallsAfterLift:
        """The flawless demonstrator until the cube is carried, then it holds its pose forever."""

        def __init__(self):
            self.demo = ScriptedDemonstrator(None, cube)
            self.frozen = None

        def reset(self, task, seed):
            self.demo.reset(task, seed)
            self.frozen = None

        def act(self, obs):
            if self.frozen is None:
                action = self.demo.act(obs)
                if cube.object_poses()[2] > 0.15:
                    self.frozen = action  # keep commanding the grip that holds the cube
                return action
            return self.frozen

    expert = ScriptedExpert(ScriptedExpertConfig(no_progress_steps=40), cube)
    record = run_episode(
        cube, StallsAfterLift(), task="transfer_cube", seed=1, teleoperator=expert, time_limit=400
    )
    assert expert.reasons == ["no_progress"]
    # the takeover hands the cube over instead of re-grasping it: the episode ends in a strict success
    assert (
        record.success is True
        and record.source == "correction"
        and record.steps.get(keys.IS_INTERVENTION)[-1]
    )


def test_bad_expert_config_is_refused():
    with pytest.raises(ConfigError):
        ScriptedExpertConfig(no_progress_steps=0)


@pytest.fixture(scope="module")
def insertion():
    config = AlohaSimConfig(task="insertion", cameras=(), time_limit=600, privileged_state=True)
    with AlohaSimBackend(config) as backend:
        yield backend


def test_expert_regrasps_a_pivoted_peg_without_moving_the_socket(insertion):
    """A 30 deg yawed grasp lifts the peg pivoted in the fingers; alone it is lost during the insertion."""
    config = ScriptedDemonstratorConfig(bad_grasp_prob=1.0, bad_grasp_yaw=30.0)
    alone = run_episode(insertion, ScriptedDemonstrator(config, insertion), task="insertion", seed=0)
    assert alone.success is False and alone.max_stage >= 3  # it failed late: the peg reached the socket
    expert = ScriptedExpert(None, insertion)
    record = run_episode(
        insertion, ScriptedDemonstrator(config, insertion), task="insertion", seed=0, teleoperator=expert
    )
    assert expert.reasons == ["bad_grasp"]
    assert record.success is True and record.source == "correction"
    flags = record.steps.get(keys.IS_INTERVENTION)
    socket = record.steps.get(keys.ENV_STATE)[:, 7:14]
    during = socket[flags]
    # the left gripper kept the socket up and level while the right arm put the peg down and re-grasped it
    assert during[:, 2].min() > 0.06 and during[:, 2].max() - during[:, 2].min() < 0.01
    assert (during[:, 3].abs() > np.cos(np.radians(15))).all()  # qw: tilt and turn below 30 deg
    assert not flags[-1]  # handed back: the demonstrator finished the insertion


def test_expert_stays_out_of_a_good_insertion(insertion):
    expert = ScriptedExpert(None, insertion)
    record = run_episode(
        insertion, ScriptedDemonstrator(None, insertion), task="insertion", seed=3, teleoperator=expert
    )
    assert record.success is True and record.intervention_steps == 0 and expert.reasons == []


def test_expert_picks_up_a_dropped_peg(insertion):
    class DropsThePeg:
        """The flawless demonstrator that opens the right gripper once the peg is carried high."""

        def __init__(self):
            self.demo = ScriptedDemonstrator(None, insertion)
            self.dropped = False

        def reset(self, task, seed):
            self.demo.reset(task, seed)
            self.dropped = False

        def act(self, obs):
            action = self.demo.act(obs)
            self.dropped = self.dropped or insertion.object_poses()[2] > 0.12
            if self.dropped:
                action[13] = 1.0
            return action

    expert = ScriptedExpert(ScriptedExpertConfig(max_interventions=1), insertion)
    record = run_episode(insertion, DropsThePeg(), task="insertion", seed=1, teleoperator=expert)
    assert expert.reasons == ["dropped"]
    flags = record.steps.get(keys.IS_INTERVENTION)
    socket = record.steps.get(keys.ENV_STATE)[:, 7:14]
    assert socket[flags][:, 2].min() > 0.06  # the socket stayed in the left gripper during the re-pick
    assert record.max_stage >= 2  # both objects carried again once the peg was picked up

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


def test_insertion_is_refused_with_a_reason():
    with (
        AlohaSimBackend(AlohaSimConfig(task="insertion", cameras=())) as backend,
        pytest.raises(ConfigError, match="transfer_cube"),
    ):
        ScriptedExpert(None, backend)

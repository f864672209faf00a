import pytest
import torch
from recap_bimanual.sim.backend import AlohaSimBackend, AlohaSimConfig
from recap_bimanual.sim.demonstrator import ScriptedDemonstrator, ScriptedDemonstratorConfig

from recap.errors import ConfigError


def run(backend, demo, seed, limit=400):
    backend.reset(backend.task, seed)
    demo.reset(backend.task, seed)
    max_stage, actions = 0, []
    for _ in range(limit):
        actions.append(demo.act())
        result = backend.step(actions[-1])
        max_stage = max(max_stage, result.info["stage"])
        if result.done:
            break
    return result.info["success"], len(actions), max_stage, torch.stack(actions)


@pytest.fixture(scope="module")
def cube():
    with AlohaSimBackend(AlohaSimConfig(cameras=())) as backend:
        yield backend


def test_flawless_transfer_succeeds(cube):
    demo = ScriptedDemonstrator(None, cube)
    for seed in (0, 7):
        success, length, _, _ = run(cube, demo, seed)
        assert success is True and length < 260


def test_flawless_insertion_succeeds():
    with AlohaSimBackend(AlohaSimConfig(task="insertion", cameras=())) as backend:
        success, length, _, _ = run(backend, ScriptedDemonstrator(None, backend), 2)
        assert success is True and length < 400


def test_flaws_are_seeded(cube):
    config = ScriptedDemonstratorConfig(action_noise=0.01, hesitation_prob=0.5, seed=4)
    a = run(cube, ScriptedDemonstrator(config, cube), 5, limit=60)[3]
    b = run(cube, ScriptedDemonstrator(config, cube), 5, limit=60)[3]
    c = run(cube, ScriptedDemonstrator(attrs_evolve(config, seed=5), cube), 5, limit=60)[3]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def attrs_evolve(config, **changes):
    import attrs

    return attrs.evolve(config, **changes)


def test_bad_grasp_fails(cube):
    """The default yawed grasp touches and lifts the cube briefly, then loses it."""
    demo = ScriptedDemonstrator(ScriptedDemonstratorConfig(bad_grasp_prob=1.0), cube)
    success, _, max_stage, _ = run(cube, demo, 1)
    assert demo.flaws.bad_grasp and success is False and max_stage >= 2


def test_rolled_grasp_fails_after_the_hand_over(cube):
    """Roll 50 + yaw 20: the cube reaches the left gripper (stage >= 3), then the episode still fails."""
    config = ScriptedDemonstratorConfig(bad_grasp_prob=1.0, bad_grasp_roll=50.0, bad_grasp_yaw=20.0)
    success, _, max_stage, _ = run(cube, ScriptedDemonstrator(config, cube), 1)
    assert success is False and max_stage >= 3


def test_loose_grip_drops_the_cube(cube):
    demo = ScriptedDemonstrator(ScriptedDemonstratorConfig(loose_grip_prob=1.0), cube)
    success, _, max_stage, _ = run(cube, demo, 1)
    assert demo.flaws.loose_grip and success is False and max_stage >= 1


def test_slowness_and_hesitation_slow_it_down(cube):
    _, nominal, _, _ = run(cube, ScriptedDemonstrator(None, cube), 2)
    ok, slow, _, _ = run(cube, ScriptedDemonstrator(ScriptedDemonstratorConfig(slowness=1.4), cube), 2)
    assert ok and slow > nominal * 1.25
    hesitant = ScriptedDemonstrator(ScriptedDemonstratorConfig(hesitation_prob=1.0, hesitation_steps=5), cube)
    ok, paused, _, _ = run(cube, hesitant, 2)
    assert ok and hesitant.flaws.hesitations >= 8 and paused >= nominal + 40


@pytest.mark.parametrize("kwargs", [dict(hesitation_prob=1.5), dict(slowness=0.0), dict(action_noise=-1.0)])
def test_bad_flaw_config_is_refused(kwargs):
    with pytest.raises(ConfigError):
        ScriptedDemonstratorConfig(**kwargs)


def test_needs_the_sim_backend():
    with pytest.raises(ConfigError, match="aloha-sim"):
        ScriptedDemonstrator(None, object())

"""End to end: the flawed demonstrator with the intervening expert, recorded into an EpisodeStore."""

import torch
from recap_bimanual.sim.backend import AlohaSimBackend, AlohaSimConfig
from recap_bimanual.sim.demonstrator import ScriptedDemonstrator, ScriptedDemonstratorConfig
from recap_bimanual.sim.expert import ScriptedExpert

from recap.data import EpisodeStore, keys
from recap.rollout import collect


def test_three_episodes_with_the_expert_land_in_the_store(tmp_path):
    config = AlohaSimConfig(cameras=("cam_high",), image_height=12, image_width=16, time_limit=450)
    with AlohaSimBackend(config) as backend:
        store = EpisodeStore.create(tmp_path / "store", backend.spec)
        demo = ScriptedDemonstrator(ScriptedDemonstratorConfig(bad_grasp_prob=0.5, seed=1), backend)
        expert = ScriptedExpert(None, backend)
        metas, report = collect(
            backend,
            demo,
            store,
            task="transfer_cube",
            seeds=[0, 1, 2],
            teleoperator=expert,
            policy_version="demo-v0",
        )
    flawed = [
        ScriptedDemonstrator(ScriptedDemonstratorConfig(bad_grasp_prob=0.5, seed=1), backend)
        for _ in range(1)
    ]
    drawn = []
    for seed in (0, 1, 2):  # which episodes had the bad grasp drawn (same seeded draw as during collection)
        flawed[0].reset("transfer_cube", seed)
        drawn.append(flawed[0].flaws.bad_grasp)
    assert any(drawn) and not all(drawn), "pick seeds with and without the flaw"

    reopened = EpisodeStore.open(tmp_path / "store")
    stored = {m.episode_id: m for m in reopened.episodes()}
    assert [m.episode_id for m in metas] == [
        m.episode_id for m in sorted(stored.values(), key=lambda m: m.created)
    ]
    assert len(stored) == 3
    for meta, bad, summary in zip(metas, drawn, report.episodes, strict=True):
        episode = reopened.load(meta.episode_id)
        flags = episode.steps.get(keys.IS_INTERVENTION)
        assert episode.meta.success is True and summary.success is True
        assert episode.meta.policy_version == "demo-v0" and episode.meta.task == "transfer_cube"
        assert bool(flags.any()) == bad
        assert episode.meta.source == ("correction" if bad else "demonstration")
        assert episode.steps.batch_size[0] == meta.length == summary.length
        assert episode.steps.get(keys.image_key("cam_high")).shape[1:] == (12, 16, 3)
        assert (
            len(episode.subtasks) == meta.length
            and episode.subtasks[-1] == "hold the cube with the left gripper"
        )
        assert torch.isfinite(episode.steps.get(keys.ACTION)).all()
    assert report.success_rate == 1.0 and report.interventions == sum(drawn)

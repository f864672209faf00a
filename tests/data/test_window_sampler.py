import numpy as np
import pytest
import torch
from data_episodes import SPEC, make_steps

from recap.data import keys, text
from recap.data.sampler import WindowSampler
from recap.data.store import EpisodeStore
from recap.errors import ConfigError, LabelError


def test_batches_are_a_function_of_seed_and_step(filled):
    a = WindowSampler(filled, chunk_size=4, batch_size=16, seed=3)
    b = WindowSampler(EpisodeStore.open(filled.root), chunk_size=4, batch_size=16, seed=3)
    assert (a.batch(5) == b.batch(5)).all()
    assert text(a.batch(5), keys.TASK) == text(b.batch(5), keys.TASK)
    assert not torch.equal(a.batch(5)[keys.ACTION], a.batch(6)[keys.ACTION])
    c = WindowSampler(filled, chunk_size=4, batch_size=16, seed=4)
    assert not torch.equal(a.batch(5)[keys.ACTION], c.batch(5)[keys.ACTION])


def test_ranks_get_interleaved_rows_of_the_global_batch(filled):
    s = WindowSampler(filled, chunk_size=3, batch_size=10)
    full = s.batch(2)
    for rank in range(3):
        part = s.batch(2, rank=rank, world_size=3)
        assert torch.equal(part[keys.ACTION], full[keys.ACTION][rank::3])
        assert text(part, keys.SUBTASK) == text(full, keys.SUBTASK)[rank::3]
    with pytest.raises(ConfigError, match="rank"):
        s.batch(0, rank=3, world_size=3)


@pytest.mark.parametrize("codec", [None, "zlib"])
def test_windows_match_the_episode_with_padding_past_the_end(tmp_path, codec):
    store = EpisodeStore.create(tmp_path / "s", SPEC, image_codec=codec)
    for i, length in enumerate((3, 8, 5)):
        store.add(
            make_steps(length, i),
            task=f"t{i}",
            source="autonomous",
            success=True,
            subtasks=[f"sub{t // 2}" for t in range(length)],
        )
    s = WindowSampler(store, chunk_size=4, batch_size=64, seed=1)
    batch = s.batch(0)
    eps = s.episodes
    assert batch[keys.ACTION].shape == (64, 4, SPEC.action_dim)
    tasks, subtasks = text(batch, keys.TASK), text(batch, keys.SUBTASK)
    for row in range(64):
        e, t = int(batch[keys.EPISODE_INDEX][row]), int(batch[keys.FRAME_INDEX][row])
        ep = store.load(eps[e].episode_id)
        n = ep.meta.length
        idx = [min(t + k, n - 1) for k in range(4)]
        assert torch.equal(batch[keys.ACTION][row], ep.steps[keys.ACTION][idx])
        assert batch[keys.ACTION_IS_PAD][row].tolist() == [t + k >= n for k in range(4)]
        assert torch.equal(batch[keys.STATE][row], ep.steps[keys.STATE][t])
        assert bool(batch[keys.IS_INTERVENTION][row]) == bool(ep.steps[keys.IS_INTERVENTION][t])
        for cam in SPEC.camera_names:
            assert torch.equal(batch[keys.image_key(cam)][row], ep.steps[keys.image_key(cam)][t])
        assert tasks[row] == ep.meta.task and subtasks[row] == ep.subtasks[t]
    assert batch[keys.ACTION_IS_PAD].any()


def test_sampling_is_uniform_over_steps_not_episodes(store):
    store.add(make_steps(10, 0), task="t", source="autonomous")
    store.add(make_steps(90, 1), task="t", source="autonomous")
    s = WindowSampler(store, chunk_size=2, batch_size=4000, cameras=())
    share = float((s.batch(0)[keys.EPISODE_INDEX] == 1).float().mean())
    assert 0.87 < share < 0.93


def test_label_columns_are_joined_at_t_and_must_cover_the_view(filled):
    eps = filled.episodes()
    columns = {
        m.episode_id: {keys.MC_RETURN: -torch.arange(m.length, dtype=torch.float32) - 100 * i}
        for i, m in enumerate(eps)
    }
    assert keys.MC_RETURN not in WindowSampler(filled, chunk_size=2, batch_size=8).batch(0)
    batch = WindowSampler(filled, chunk_size=2, batch_size=32, seed=2, label_columns=columns).batch(0)
    e, t = batch[keys.EPISODE_INDEX], batch[keys.FRAME_INDEX]
    assert torch.equal(batch[keys.MC_RETURN], -(t + 100 * e).float())
    without_first = {k: v for k, v in columns.items() if k != eps[0].episode_id}
    with pytest.raises(LabelError, match="no labels for 1 episode"):
        WindowSampler(filled, chunk_size=2, batch_size=4, label_columns=without_first)
    short = {**columns, eps[0].episode_id: {keys.MC_RETURN: torch.zeros(eps[0].length - 1)}}
    with pytest.raises(LabelError, match="one value per step"):
        WindowSampler(filled, chunk_size=2, batch_size=4, label_columns=short)


def test_label_set_values_at_t_and_missing_labels_name_recap_label(filled):
    eps = filled.episodes()
    labels = {
        m.episode_id: {
            "advantage": torch.arange(m.length, dtype=torch.float32) + 100 * i,
            "indicator": torch.arange(m.length) % 2 == 0,
        }
        for i, m in enumerate(eps)
    }
    filled.write_labels("v1", labels, {})
    s = WindowSampler(filled, chunk_size=2, batch_size=32, label_set="v1")
    batch = s.batch(1)
    e, t = batch[keys.EPISODE_INDEX], batch[keys.FRAME_INDEX]
    assert torch.equal(batch[keys.ADVANTAGE], (t + 100 * e).float())
    assert torch.equal(batch[keys.INDICATOR], t % 2 == 0)
    filled.write_labels("partial", {eps[0].episode_id: labels[eps[0].episode_id]}, {})
    with pytest.raises(LabelError, match="recap label"):
        WindowSampler(filled, chunk_size=2, batch_size=4, label_set="partial")
    only = WindowSampler(filled, chunk_size=2, batch_size=4, label_set="partial", episodes=eps[:1])
    assert set(only.batch(0)[keys.EPISODE_INDEX].tolist()) == {0}


def test_views_and_camera_subsets(filled):
    s = WindowSampler(
        filled, chunk_size=2, batch_size=8, episodes=filled.episodes(task="place"), cameras=("cam_high",)
    )
    batch = s.batch(0)
    assert set(text(batch, keys.TASK)) == {"place"}
    assert keys.image_key("cam_left_wrist") not in batch
    with pytest.raises(KeyError, match="cam_nope"):
        WindowSampler(filled, chunk_size=2, batch_size=8, cameras=("cam_nope",))
    with pytest.raises(ConfigError, match="no episodes"):
        WindowSampler(filled, chunk_size=2, batch_size=8, episodes=[])


def test_env_state_is_sampled_when_the_spec_has_it(tmp_path):
    import attrs

    spec = attrs.evolve(SPEC, env_state_dim=3)
    store = EpisodeStore.create(tmp_path / "s", spec)
    steps = make_steps(6, 0, spec)
    store.add(steps, task="t", source="demonstration")
    batch = WindowSampler(store, chunk_size=2, batch_size=5).batch(0)
    assert np.array_equal(
        batch[keys.ENV_STATE].numpy(), steps[keys.ENV_STATE][batch[keys.FRAME_INDEX].numpy()]
    )

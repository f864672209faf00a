"""``BackgroundWriter``: episodes commit in order off the recording thread; a full queue is an immediate error."""

import threading

import pytest
from data_episodes import SPEC, make_steps

from recap.data.store import EpisodeStore
from recap.data.writer import BackgroundWriter
from recap.errors import ConfigError, SchemaError, StoreError


def test_commits_every_episode_in_order(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", SPEC, image_codec="lossless")
    with BackgroundWriter(store, max_pending=8) as writer:
        futures = [writer.submit(make_steps(4 + i, i), task=f"t{i}", source="autonomous") for i in range(5)]
    metas = [f.result() for f in futures]
    assert [m.task for m in store.episodes()] == [f"t{i}" for i in range(5)] == [m.task for m in metas]
    assert store.verify() == {}


def test_a_full_queue_raises_at_once_and_nothing_queued_is_lost(tmp_path, monkeypatch):
    store = EpisodeStore.create(tmp_path / "s", SPEC)
    started, release = threading.Event(), threading.Event()
    add = store.add

    def slow_add(*args, **kwargs):  # a disk that cannot keep up, until released
        started.set()
        assert release.wait(30)
        return add(*args, **kwargs)

    monkeypatch.setattr(store, "add", slow_add)
    writer = BackgroundWriter(store, max_pending=1)
    writer.submit(make_steps(3, 0), task="a", source="autonomous")
    assert started.wait(30)  # the first episode is being written
    writer.submit(make_steps(3, 1), task="b", source="autonomous")  # waits in the queue
    with pytest.raises(StoreError, match="cannot keep up"):
        writer.submit(make_steps(3, 2), task="c", source="autonomous")
    release.set()
    assert [m.task for m in writer.close()] == ["a", "b"]
    with pytest.raises(StoreError, match="closed"):
        writer.submit(make_steps(3, 3), task="d", source="autonomous")


def test_an_episode_that_fails_is_reported_and_the_rest_commit(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", SPEC)
    writer = BackgroundWriter(store)
    bad = writer.submit({"action": make_steps(3, 0)["action"]}, task="bad", source="autonomous")
    good = writer.submit(make_steps(3, 1), task="good", source="autonomous")
    with pytest.raises(SchemaError, match="missing keys"):
        writer.close()
    assert isinstance(bad.exception(), SchemaError) and good.result().task == "good"
    assert [m.task for m in store.episodes()] == ["good"]
    with pytest.raises(ConfigError, match="max_pending"):
        BackgroundWriter(store, max_pending=0)

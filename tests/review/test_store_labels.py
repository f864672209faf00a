"""The store's labelling API: reviewer, note, failure moment, compare-and-set writes and the label history."""

from __future__ import annotations

import threading

import pytest

from recap.cli.main import main
from recap.data.store import EpisodeStore
from recap.errors import LabelError, StaleLabelError


def test_compare_and_set_refuses_a_write_based_on_a_stale_version(store: EpisodeStore) -> None:
    eid = store.episodes()[0].episode_id
    assert store.label_version(eid) == 0
    store.set_success(eid, True, by="ana", expected_version=0)
    assert store.label_version(eid) == 1
    with pytest.raises(StaleLabelError, match=r"changed since you loaded it.*now success by ana"):
        store.set_success(eid, False, by="bo", expected_version=0)
    assert store.meta(eid).success is True and store.label_version(eid) == 1
    store.set_success(eid, False, by="bo", note="dropped", failure_time=1.5, expected_version=1)
    latest = store.success_history(eid)[-1]
    assert (latest["success"], latest["by"], latest["note"], latest["failure_time"]) == (
        False,
        "bo",
        "dropped",
        1.5,
    )


def test_writes_without_a_version_still_append(store: EpisodeStore) -> None:
    eid = store.episodes()[0].episode_id
    store.set_success(eid, True)
    store.set_success(eid, None)
    assert store.meta(eid).success is None and store.label_version(eid) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"success": True, "failure_time": 1.0}, "only with success=False"),
        ({"success": False, "failure_time": -0.1}, r"expected 0\.\.4\.000 s"),
        ({"success": False, "failure_time": 99.0}, r"expected 0\.\.4\.000 s"),
        ({"success": False, "failure_time": float("nan")}, "expected 0"),
        ({"success": False, "failure_time": "1"}, "seconds from the episode's start"),
        ({"success": True, "note": "x" * 2001}, "note: expected text of at most 2000"),
        ({"success": True, "by": 7}, "by: expected text"),
        ({"success": True, "expected_version": -1}, "expected_version: expected an integer"),
        ({"success": True, "expected_version": True}, "expected_version: expected an integer"),
        ({"success": "yes"}, "expected True, False or None"),
    ],
)
def test_bad_label_arguments_are_refused_and_nothing_is_written(
    store: EpisodeStore, kwargs: dict, message: str
) -> None:
    eid = store.episodes()[0].episode_id  # 40 steps at 10 Hz: 4 s
    with pytest.raises(LabelError, match=message):
        store.set_success(eid, **kwargs)
    assert store.label_version(eid) == 0


def test_concurrent_compare_and_set_writers_lose_nothing(store: EpisodeStore) -> None:
    """Threads each retry read-version-then-write until their write lands: every write lands exactly once."""
    eid = store.episodes()[0].episode_id
    writers, writes_each = 6, 5
    based_on: list[int] = []

    def reviewer(name: str) -> None:
        own = EpisodeStore.open(store.root)  # each reviewer its own handle, as separate servers would have
        for i in range(writes_each):
            while True:
                version = own.label_version(eid)
                try:
                    own.set_success(eid, i % 2 == 0, by=name, note=str(i), expected_version=version)
                    based_on.append(version)
                    break
                except StaleLabelError:
                    continue

    threads = [threading.Thread(target=reviewer, args=(f"r{k}",)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = store.success_history(eid)[1:]
    assert len(events) == writers * writes_each
    # each accepted write saw every write before it: no two were based on the same version
    assert sorted(based_on) == list(range(writers * writes_each))
    for k in range(writers):
        assert [e["note"] for e in events if e["by"] == f"r{k}"] == [str(i) for i in range(writes_each)]


def test_a_torn_last_line_is_cut_before_the_next_write(store: EpisodeStore) -> None:
    eid = store.episodes()[0].episode_id
    store.set_success(eid, True, by="ana")
    log = store.root / "success" / f"{eid}.jsonl"
    with open(log, "ab") as f:
        f.write(b'{"success": fal')  # a writer killed mid-append
    assert store.label_version(eid) == 1
    store.set_success(eid, False, by="bo", expected_version=1)
    assert [e["by"] for e in store.success_history(eid)[1:]] == ["ana", "bo"]


def test_a_complete_last_line_without_newline_is_kept(store: EpisodeStore) -> None:
    eid = store.episodes()[0].episode_id
    log = store.root / "success" / f"{eid}.jsonl"
    log.write_bytes(b'{"success": true, "by": "ana", "note": "", "time": "2026-01-01T00:00:00+00:00"}')
    store.set_success(eid, False, by="bo", expected_version=1)
    assert [e["by"] for e in store.success_history(eid)[1:]] == ["ana", "bo"]


def test_label_history_spans_the_store_in_time_order(store: EpisodeStore, capsys) -> None:
    a, b = (m.episode_id for m in store.episodes()[:2])
    store.set_success(b, True, by="ana")
    store.set_success(a, False, by="bo", note="slipped", failure_time=2.0)
    store.set_success(b, None, by="ana")
    history = store.label_history()
    assert [(e["episode_id"], e["success"], e["by"]) for e in history] == [
        (b, True, "ana"),
        (a, False, "bo"),
        (b, None, "ana"),
    ]
    assert main(["data", "info", str(store.root), "--history"]) == 0
    out = capsys.readouterr().out
    assert "relabels    3 by reviewer {'ana': 2, 'bo': 1}" in out
    assert f"{a}  failure at 2.00s  bo  slipped" in out


def test_episode_labels_reads_one_episode_of_a_set(store: EpisodeStore) -> None:
    eid = store.episodes()[0].episode_id
    whole = store.read_labels("synthetic-values")[eid]
    one = store.episode_labels("synthetic-values", eid)
    assert set(one) == {"value", "advantage", "indicator"}
    assert all((one[k] == whole[k]).all() for k in one)
    with pytest.raises(LabelError, match="no label set 'missing'"):
        store.episode_labels("missing", eid)

import json

import numpy as np
import pytest
import torch
from data_episodes import SPEC, make_steps

from recap.data import episode_files as ef
from recap.data import keys
from recap.data.spec import aloha_spec
from recap.data.store import EpisodeStore
from recap.errors import LabelError, SchemaError, StoreError


@pytest.mark.parametrize("codec", [None, "zlib"])
def test_add_then_load_gives_the_same_steps(tmp_path, codec):
    store = EpisodeStore.create(tmp_path / "s", SPEC, image_codec=codec)
    steps = make_steps(7, 3)
    meta = store.add(steps, task="pick", source="demonstration", success=True, subtasks=list("aabbbcc"))
    ep = EpisodeStore.open(tmp_path / "s").load(meta.episode_id)
    assert ep.meta == meta and ep.meta.length == 7 and ep.meta.fps == SPEC.fps
    for key, value in steps.items():
        assert np.array_equal(ep.steps[key].numpy(), value), key
    assert ep.steps[keys.FRAME_INDEX].tolist() == list(range(7))
    assert torch.allclose(ep.steps[keys.TIMESTAMP], torch.arange(7) / SPEC.fps)
    assert ep.subtasks == list("aabbbcc")


def test_zlib_is_smaller_on_smooth_images(tmp_path):
    sizes = {}
    for codec in (None, "zlib"):
        store = EpisodeStore.create(tmp_path / str(codec), aloha_spec(48, 64), image_codec=codec)
        store.add(make_steps(20, 0, aloha_spec(48, 64)), task="t", source="autonomous")
        sizes[codec] = store.disk_usage()
    assert sizes["zlib"] < 0.8 * sizes[None]


def test_queries_filter_by_every_field(filled):
    assert len(filled.episodes()) == 4
    assert [m.length for m in filled.episodes(task="pick")] == [6, 9]
    assert [m.source for m in filled.episodes(source="correction")] == ["correction"]
    assert [m.length for m in filled.episodes(success=True)] == [6, 4]
    assert [m.length for m in filled.episodes(success=None)] == [7]
    assert [m.length for m in filled.episodes(success=False)] == [9]
    assert len(filled.episodes(policy_version="v2")) == 2
    assert filled.episodes(robot_id="nobody") == []
    assert filled.max_length_per_task() == {"pick": 9, "place": 7}


def test_provenance_is_recorded_read_back_and_filtered(store):
    store.add(make_steps(3, 0), task="pick", source="demonstration", iteration=0, stage="demos", seed=5)
    store.add(make_steps(4, 1), task="pick", source="autonomous", iteration=1, stage="collect-1", seed=9)
    store.add(make_steps(5, 2), task="pick", source="autonomous")
    reopened = EpisodeStore.open(store.root)
    assert [(m.iteration, m.stage, m.seed) for m in reopened.episodes()] == [
        (0, "demos", 5),
        (1, "collect-1", 9),
        (None, None, None),
    ]
    assert [m.length for m in reopened.episodes(iteration=1)] == [4]
    assert [m.seed for m in reopened.episodes(stage="demos")] == [5]
    assert reopened.verify() == {}  # the provenance is part of the hashed fields


@pytest.mark.parametrize(
    "bad", [{"iteration": -1}, {"iteration": "1"}, {"seed": True}, {"seed": 1.5}, {"stage": ""}]
)
def test_bad_provenance_is_refused(store, bad):
    with pytest.raises(SchemaError, match=next(iter(bad))):
        store.add(make_steps(3, 0), task="pick", source="autonomous", **bad)


def test_store_written_before_provenance_still_opens(store):
    """An episode committed by the writer before provenance existed: its meta.json has no such fields."""
    meta = store.add(make_steps(3, 0), task="pick", source="demonstration", policy_version="v0")
    path = store.root / "episodes" / meta.episode_id / "meta.json"
    raw = json.loads(path.read_text())
    old_fields = [f for f in raw["hashed_fields"] if f not in ("iteration", "stage", "seed")]
    for field in ("iteration", "stage", "seed"):
        del raw[field]
    raw["hashed_fields"] = old_fields
    raw["content_hash"] = ef.content_hash(raw["arrays"], {f: raw[f] for f in old_fields})
    path.write_text(json.dumps(raw))
    reopened = EpisodeStore.open(store.root)
    old = reopened.meta(meta.episode_id)
    assert (old.iteration, old.stage, old.seed, old.policy_version) == (None, None, None, "v0")
    assert reopened.verify() == {} and reopened.episodes(iteration=0) == []


def test_success_labels_are_corrected_with_history(filled):
    eid = filled.episodes(success=None)[0].episode_id
    filled.set_success(eid, True, by="ana", note="cube held")
    filled.set_success(eid, False, by="bo", note="dropped after")
    assert EpisodeStore.open(filled.root).meta(eid).success is False
    history = filled.success_history(eid)
    assert [e["success"] for e in history] == [None, True, False]
    assert [e["by"] for e in history] == ["recording", "ana", "bo"]
    filled.set_success(eid, None)
    assert filled.meta(eid).success is None
    # raw files were not rewritten: the recorded label is still in meta.json
    assert json.loads((filled.root / "episodes" / eid / "meta.json").read_text())["success"] is None


def test_torn_last_line_of_success_log_is_ignored(filled):
    eid = filled.episodes()[0].episode_id
    filled.set_success(eid, False)
    with open(filled.root / "success" / f"{eid}.jsonl", "ab") as f:
        f.write(b'{"success": tr')  # a writer killed mid-append
    assert EpisodeStore.open(filled.root).meta(eid).success is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("action"), "missing keys ['action']"),
        (lambda s: s.update(action=s["action"][:, :5]), "expected shape [6, 14], found [6, 5]"),
        (lambda s: s.update(is_intervention=s["is_intervention"].astype(np.int64)), "expected dtype bool"),
        (
            lambda s: s.update(
                {"observation.images.cam_high": s["observation.images.cam_high"].astype(np.float32)}
            ),
            "expected dtype uint8",
        ),
        (lambda s: s.update(extra=np.zeros(6)), "unknown keys ['extra']"),
    ],
)
def test_wrong_steps_name_key_expected_and_found(store, change, message):
    steps = make_steps(6, 0)
    change(steps)
    with pytest.raises(SchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        store.add(steps, task="t", source="autonomous")
    assert store.episodes() == []


def test_bad_metadata_is_refused(store):
    with pytest.raises(SchemaError, match="source"):
        store.add(make_steps(3, 0), task="t", source="autonomus")
    with pytest.raises(SchemaError, match="subtasks"):
        store.add(make_steps(3, 0), task="t", source="autonomous", subtasks=["a"])


def test_create_refuses_an_existing_store_and_open_refuses_a_plain_dir(store, tmp_path):
    with pytest.raises(StoreError, match="already a store"):
        EpisodeStore.create(store.root, SPEC)
    with pytest.raises(StoreError, match="not an episode store"):
        EpisodeStore.open(tmp_path)


def test_truncated_file_is_reported_and_others_stay_readable(filled):
    bad, *good = filled.episodes()
    path = filled.root / "episodes" / bad.episode_id / "data.bin"
    path.write_bytes(path.read_bytes()[:-10])
    store = EpisodeStore.open(filled.root)
    assert [m.episode_id for m in store.episodes()] == [m.episode_id for m in good]
    problem = store.problems()[bad.episode_id]
    assert bad.episode_id in problem and "data.bin" in problem and "truncated" in problem
    with pytest.raises(StoreError, match="data.bin"):
        store.load(bad.episode_id)
    for m in good:
        store.load(m.episode_id)


def test_corrupt_meta_and_flipped_bytes_are_reported(filled):
    eps = filled.episodes()
    (filled.root / "episodes" / eps[0].episode_id / "meta.json").write_text('{"format": 1, "episo')
    data_file = filled.root / "episodes" / eps[1].episode_id / "data.bin"
    arrays = filled._raw_meta(eps[1].episode_id)["arrays"]
    data = bytearray(data_file.read_bytes())
    data[arrays["observation.images.cam_high"]["offset"] + 5] ^= 0xFF
    data_file.write_bytes(bytes(data))
    store = EpisodeStore.open(filled.root)
    assert eps[0].episode_id in store.problems() and "meta.json" in store.problems()[eps[0].episode_id]
    problems = store.verify()
    assert "data.bin" in problems[eps[1].episode_id]
    assert "'observation.images.cam_high'" in problems[eps[1].episode_id]
    assert {m.episode_id for m in store.episodes()} == {eps[2].episode_id, eps[3].episode_id}


def test_episode_of_another_schema_is_reported(filled, tmp_path):
    other = EpisodeStore.create(tmp_path / "other", aloha_spec(4, 4))
    meta = other.add(make_steps(3, 0, aloha_spec(4, 4)), task="t", source="autonomous")
    (other.root / "episodes" / meta.episode_id).rename(filled.root / "episodes" / meta.episode_id)
    store = EpisodeStore.open(filled.root)
    problem = store.problems()[meta.episode_id]
    assert "observation.images.cam_high" in problem and "[3, 8, 12, 3]" in problem
    assert len(store.episodes()) == 4


def test_label_sets_round_trip_and_validate(filled):
    eps = filled.episodes()
    labels = {
        m.episode_id: {"advantage": torch.randn(m.length), "indicator": torch.rand(m.length) > 0.5}
        for m in eps
    }
    filled.write_labels("value-v1", labels, {"model": "v1"})
    assert filled.label_sets() == ["value-v1"]
    back = filled.read_labels("value-v1")
    for eid, per in labels.items():
        assert torch.equal(back[eid]["advantage"], per["advantage"])
        assert torch.equal(back[eid]["indicator"], per["indicator"])
    assert filled.label_set_metadata("value-v1")["metadata"] == {"model": "v1"}
    filled.write_labels("value-v1", {eps[0].episode_id: {"advantage": torch.zeros(eps[0].length)}}, {})
    assert list(filled.read_labels("value-v1")) == [eps[0].episode_id]  # replaced as a whole
    with pytest.raises(LabelError, match=r"expected shape \[6\]"):
        filled.write_labels("bad", {eps[0].episode_id: {"advantage": torch.zeros(3)}}, {})
    with pytest.raises(LabelError, match="recap label"):
        filled.read_labels("missing")
    assert "bad" not in filled.label_sets()


def test_corrupt_label_file_names_set_episode_and_file(filled):
    m = filled.episodes()[0]
    filled.write_labels("v", {m.episode_id: {"advantage": torch.zeros(m.length)}}, {})
    (filled.root / "labels" / "v" / f"{m.episode_id}.npz").write_bytes(b"not a zip")
    with pytest.raises(StoreError, match=f"label set 'v': episode {m.episode_id}: file"):
        filled.read_labels("v")


def test_norm_stats_are_cached_and_recomputed_when_episodes_are_added(filled):
    stats = filled.norm_stats()
    actions = torch.cat([filled.load(m.episode_id).steps["action"] for m in filled.episodes()])
    assert torch.allclose(stats["action"].mean, actions.mean(0), atol=1e-5)
    assert torch.allclose(stats["action"].std, actions.std(0, unbiased=False), atol=1e-5)
    assert torch.allclose(
        stats["action"].q99, torch.quantile(actions.double(), 0.99, dim=0).float(), atol=1e-5
    )
    cache = json.loads((filled.root / "cache" / "norm_stats.json").read_text())
    assert cache["episodes"] == 4
    filled.add(make_steps(5, 99), task="pick", source="autonomous")
    assert not torch.allclose(filled.norm_stats()["action"].mean, stats["action"].mean)
    assert json.loads((filled.root / "cache" / "norm_stats.json").read_text())["episodes"] == 5


def test_explicit_episode_ids_are_unique(store):
    store.add(make_steps(3, 0), task="t", source="autonomous", episode_id="abc-1")
    with pytest.raises(StoreError, match="already"):
        store.add(make_steps(3, 0), task="t", source="autonomous", episode_id="abc-1")
    with pytest.raises(SchemaError, match="episode_id"):
        store.add(make_steps(3, 0), task="t", source="autonomous", episode_id="../escape")


def test_add_accepts_a_tensordict_of_torch_tensors(store):
    from tensordict import TensorDict

    steps = make_steps(4, 1)
    td = TensorDict({k: torch.from_numpy(v) for k, v in steps.items()}, batch_size=[4])
    meta = store.add(td, task="t", source="demonstration")
    assert torch.equal(store.load(meta.episode_id).steps["action"], td["action"])

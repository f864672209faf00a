"""``transcode`` / ``recap data transcode``: every episode, field, success history and label set copied; frames
checked against the source."""

import importlib.util

import pytest
import torch
from data_episodes import SPEC, make_steps, sim_steps

from recap.cli.main import main
from recap.data import keys
from recap.data.spec import aloha_spec
from recap.data.store import EpisodeStore
from recap.data.transcode import transcode, verify_copy
from recap.errors import StoreError


def _labelled(store):
    ids = [m.episode_id for m in store.episodes()]
    store.set_success(ids[-1], True, by="ana", note="relabelled")
    labels = {eid: {"advantage": torch.arange(store.meta(eid).length, dtype=torch.float32)} for eid in ids}
    for per in labels.values():
        per["indicator"] = per["advantage"] > 2
    store.write_labels("value-v1", labels, {"model": "v1"})
    return store


def _same_records(a, b):
    assert (
        b.episodes() == a.episodes()
    )  # ids, task, success (latest label), source, versions, fps, length, created
    for m in a.episodes():
        assert b.success_history(m.episode_id) == a.success_history(m.episode_id)
        assert b.subtask_vocab(m.episode_id) == a.subtask_vocab(m.episode_id)
    assert b.label_sets() == a.label_sets() == ["value-v1"]
    assert b.label_set_metadata("value-v1")["metadata"] == a.label_set_metadata("value-v1")["metadata"]
    for eid, per in a.read_labels("value-v1").items():
        for key, value in per.items():
            assert torch.equal(b.read_labels("value-v1")[eid][key], value)


def test_raw_to_lossless_video_and_back_is_exact_with_everything_kept(filled, tmp_path):
    source = _labelled(filled)
    video = transcode(source, tmp_path / "video", image_codec="lossless")
    assert video.episodes == 4 and video.steps == 26 and video.worst_psnr == float("inf")
    back = transcode(EpisodeStore.open(tmp_path / "video"), tmp_path / "back", image_codec=None)
    assert back.output_bytes > 0
    out = EpisodeStore.open(tmp_path / "back")
    assert out.image_codec is None
    _same_records(source, EpisodeStore.open(tmp_path / "video"))
    _same_records(source, out)
    for m in source.episodes():
        a, b = source.load(m.episode_id), out.load(m.episode_id)
        assert a.subtasks == b.subtasks
        for key, value in a.steps.items():
            assert torch.equal(b.steps[key], value), key
    assert out.content_hash(m.episode_id) == source.content_hash(
        m.episode_id
    )  # raw again: the very same bytes


@pytest.mark.skipif(
    importlib.util.find_spec("recap_bimanual") is None, reason="needs the simulated robot plugin"
)
@pytest.mark.parametrize("codec", ["av1", "h264"])
def test_cli_transcodes_sim_frames_to_lossy_video_within_tolerance(tmp_path, capsys, codec):
    spec = aloha_spec(48, 64)
    source = EpisodeStore.create(tmp_path / "raw", spec)
    steps = sim_steps(10, 48, 64)
    for seed in range(2):
        source.add(steps, task="t", source="demonstration", success=bool(seed))
    args = ["data", "transcode", str(tmp_path / "raw"), str(tmp_path / codec), "--image-codec", codec]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "copied 2 episodes (20 steps)" in out and "verified frame by frame" in out
    copy = EpisodeStore.open(tmp_path / codec)
    assert copy.image_codec == codec and copy.episodes() == source.episodes()
    assert copy.disk_usage() < source.disk_usage() / 5


def test_verify_copy_catches_frames_that_differ(tmp_path):
    source = EpisodeStore.create(tmp_path / "a", SPEC)
    source.add(
        make_steps(6, 0), task="t", source="autonomous", episode_id="ep", created="2026-01-01T00:00:00Z"
    )
    for codec, damage in (("lossless", 1), ("av1", 90)):
        other = EpisodeStore.create(tmp_path / codec, SPEC, image_codec=codec)
        steps = make_steps(6, 0)
        cam = steps[keys.image_key("cam_left_wrist")]
        cam[4] = (
            cam[4].astype(int) + damage
        ) % 256  # one frame off (by 1 level, or by a lot for the lossy codec)
        other.add(steps, task="t", source="autonomous", episode_id="ep", created="2026-01-01T00:00:00Z")
        with pytest.raises(StoreError, match="cam_left_wrist"):
            verify_copy(source, other, "ep")
    twin = EpisodeStore.create(tmp_path / "twin", SPEC)
    twin.add(
        make_steps(6, 0), task="other", source="autonomous", episode_id="ep", created="2026-01-01T00:00:00Z"
    )
    with pytest.raises(StoreError, match="metadata"):
        verify_copy(source, twin, "ep")


def test_refuses_a_store_with_unreadable_episodes_and_a_used_output(filled, tmp_path):
    with pytest.raises(StoreError, match="not empty"):
        transcode(filled, filled.root, image_codec="lossless")
    eid = filled.episodes()[0].episode_id
    (filled.root / "episodes" / eid / "meta.json").write_text("{")
    with pytest.raises(StoreError, match=f"unreadable.*{eid}"):
        transcode(EpisodeStore.open(filled.root), tmp_path / "out", image_codec="lossless")
    assert not (tmp_path / "out").exists()

"""Video image codecs in the store: round trips, random access by frame index, DataLoader workers, refusals."""

import importlib.util
import pickle

import numpy as np
import pytest
import torch
from data_episodes import SPEC, make_steps, sim_steps

from recap.data import keys, text
from recap.data.sampler import WindowSampler, batch_loader
from recap.data.spec import aloha_spec
from recap.data.store import EpisodeStore
from recap.data.video import VIDEO_CODECS, VideoFrames, encode_video, psnr
from recap.errors import SchemaError, StoreError

LOSSY = ["av1", "h264"]
needs_sim = pytest.mark.skipif(
    importlib.util.find_spec("recap_bimanual") is None, reason="needs the simulated robot plugin"
)


@pytest.mark.parametrize("codec", [None, "zlib", "lossless"])
@pytest.mark.parametrize("keyframe_interval", [1, 2, 5])
def test_lossless_codecs_round_trip_exactly_with_random_access(tmp_path, codec, keyframe_interval):
    store = EpisodeStore.create(tmp_path / "s", SPEC, image_codec=codec, keyframe_interval=keyframe_interval)
    steps = make_steps(23, 4)
    meta = store.add(steps, task="t", source="autonomous")
    reopened = EpisodeStore.open(tmp_path / "s")
    assert (reopened.image_codec, reopened.keyframe_interval) == (codec, keyframe_interval)
    episode = reopened.load(meta.episode_id)
    for key, value in steps.items():
        assert np.array_equal(episode.steps[key].numpy(), value), key
    frames = reopened.arrays(meta.episode_id)[SPEC.cameras[0].key]
    order = np.array([22, 0, 7, 7, 3, 12, 11, 21, 1])  # backwards, repeats, inside and across keyframe groups
    assert np.array_equal(frames[order], steps[SPEC.cameras[0].key][order])
    assert np.array_equal(frames[9], steps[SPEC.cameras[0].key][9])
    assert reopened.verify() == {}


@pytest.mark.parametrize("codec", LOSSY)
def test_lossy_codecs_read_the_frame_asked_for(tmp_path, codec):
    """Each randomly accessed frame is the decoded source frame at that index, not a neighbour."""
    source = make_steps(30, 2, aloha_spec(16, 24))[keys.image_key("cam_high")]
    frames = VideoFrames(encode_video(source, 50, codec, 2), source.shape, 50, 2, "test")
    rng = np.random.default_rng(0)
    order = rng.integers(0, 30, 40)
    got = frames[order]
    assert got.shape == (40, 16, 24, 3) and got.dtype == np.uint8
    for frame, index in zip(got, order, strict=True):
        nearest = max(range(30), key=lambda j: psnr(source[j], frame))
        assert nearest == index
    assert np.array_equal(got, np.asarray(frames)[order])  # random access == one front-to-back decode


@needs_sim
@pytest.mark.parametrize("codec", LOSSY)
def test_lossy_codecs_keep_rendered_sim_frames_within_their_psnr(tmp_path, codec):
    steps = sim_steps(12, 48, 64)
    spec = aloha_spec(48, 64)
    store = EpisodeStore.create(tmp_path / "s", spec, image_codec=codec)
    meta = store.add(steps, task="t", source="autonomous")
    episode = store.load(meta.episode_id)
    settings = VIDEO_CODECS[codec]
    raw = 0
    for cam in spec.cameras:
        source, decoded = steps[cam.key], episode.steps[cam.key].numpy()
        raw += source.nbytes
        assert decoded.shape == source.shape and decoded.dtype == np.uint8
        assert psnr(source, decoded) >= settings["min_psnr"], cam.name
        assert min(psnr(a, b) for a, b in zip(source, decoded, strict=True)) >= settings["min_frame_psnr"]
    for key in (keys.STATE, keys.ACTION, keys.IS_INTERVENTION):
        assert np.array_equal(episode.steps[key].numpy(), steps[key])
    assert store.disk_usage() < raw / 5  # even 12 tiny frames per camera shrink


def _twin_stores(tmp_path, codec):
    raw = EpisodeStore.create(tmp_path / "raw", SPEC)
    video = EpisodeStore.create(tmp_path / str(codec), SPEC, image_codec=codec)
    for i, length in enumerate((9, 30, 14)):
        for store in (raw, video):
            store.add(
                make_steps(length, i),
                task=f"t{i % 2}",
                source="autonomous",
                success=bool(i % 2),
                subtasks=[f"s{t // 5}" for t in range(length)],
                episode_id=f"ep{i}",
            )
    return raw, video


def _same_windows(a, b, codec):
    for key in (
        keys.STATE,
        keys.ACTION,
        keys.ACTION_IS_PAD,
        keys.EPISODE_INDEX,
        keys.FRAME_INDEX,
    ):
        assert torch.equal(a[key], b[key]), key
    assert text(a, keys.TASK) == text(b, keys.TASK) and text(a, keys.SUBTASK) == text(b, keys.SUBTASK)
    for cam in SPEC.cameras:
        x, y = a[cam.key].numpy(), b[cam.key].numpy()
        assert x.shape == y.shape and y.dtype == np.uint8
        if codec == "lossless":
            assert np.array_equal(x, y)
        else:
            assert psnr(x, y) >= 25.0  # tiny synthetic frames; the sim-frame bounds are tested above


@pytest.mark.parametrize("codec", ["lossless", "av1"])
def test_sampler_gives_the_raw_stores_batches_through_dataloader_workers(tmp_path, codec):
    raw, video = _twin_stores(tmp_path, codec)
    reference = WindowSampler(raw, chunk_size=4, batch_size=32, seed=7)
    sampler = WindowSampler(video, chunk_size=4, batch_size=32, seed=7)
    for step in range(3):
        _same_windows(reference.batch(step), sampler.batch(step), codec)
    loaded = list(batch_loader(sampler, range(3, 7), num_workers=2))
    assert len(loaded) == 4
    for step, batch in zip(range(3, 7), loaded, strict=True):
        _same_windows(reference.batch(step), batch, codec)
        assert torch.equal(batch[keys.image_key("cam_high")], sampler.batch(step)[keys.image_key("cam_high")])


def test_a_pickled_sampler_carries_no_decoders_and_reads_the_same(tmp_path):
    _, video = _twin_stores(tmp_path, "av1")
    sampler = WindowSampler(video, chunk_size=2, batch_size=16, seed=1)
    first = sampler.batch(0)
    clone = pickle.loads(pickle.dumps(sampler))
    assert len(clone._frames) == 0
    assert torch.equal(clone.batch(0)[keys.image_key("cam_high")], first[keys.image_key("cam_high")])
    frames = video.arrays("ep1")[keys.image_key("cam_high")]
    frames[3]
    copy = pickle.loads(pickle.dumps(frames))
    assert copy._decoder is None and np.array_equal(copy[[3, 2]], frames[[3, 2]])


def test_sampler_keeps_a_bounded_number_of_episodes_open(tmp_path, monkeypatch):
    import recap.data.sampler as sampler_module

    monkeypatch.setattr(sampler_module, "OPEN_EPISODES", 2)
    _, video = _twin_stores(tmp_path, "lossless")
    opened = []
    arrays = video.arrays
    monkeypatch.setattr(video, "arrays", lambda eid: opened.append(arrays(eid)) or opened[-1])
    sampler = WindowSampler(video, chunk_size=2, batch_size=64, seed=0)
    opened.clear()
    sampler.batch(0)
    assert len(opened) == 3 and len(sampler._frames) == 2  # each episode opened once per batch
    first = opened[0][keys.image_key("cam_high")]
    assert first._decoder is None  # evicted and closed
    assert all(
        frames[cam]._decoder is not None for frames in sampler._frames.values() for cam in SPEC.camera_names
    )


def test_refuses_bad_video_settings(tmp_path):
    with pytest.raises(StoreError, match="even frame sizes"):
        EpisodeStore.create(tmp_path / "a", aloha_spec(15, 24), image_codec="av1")
    EpisodeStore.create(tmp_path / "b", aloha_spec(15, 24), image_codec="lossless")  # RGB: any size
    with pytest.raises(SchemaError, match="keyframe_interval"):
        EpisodeStore.create(tmp_path / "c", SPEC, image_codec="av1", keyframe_interval=0)
    with pytest.raises(StoreError, match="image_codec must be one of"):
        EpisodeStore.create(tmp_path / "d", SPEC, image_codec="vp9")


def test_a_corrupt_video_is_reported_by_episode_and_array(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", SPEC, image_codec="av1")
    meta = store.add(make_steps(12, 0), task="t", source="autonomous")
    info = store._raw_meta(meta.episode_id)["arrays"][keys.image_key("cam_high")]
    path = tmp_path / "s" / "episodes" / meta.episode_id / "data.bin"
    data = bytearray(path.read_bytes())
    data[info["offset"] : info["offset"] + info["bytes"]] = bytes(info["bytes"])  # zero the whole MP4
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=f"{meta.episode_id}.*cam_high"):
        store.arrays(meta.episode_id)[keys.image_key("cam_high")][3]
    assert meta.episode_id in EpisodeStore.open(tmp_path / "s").verify()

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from data_episodes import make_steps, smooth_frames

from recap.data.lerobot_export import export_lerobot
from recap.data.lerobot_import import import_lerobot
from recap.data.spec import aloha_spec
from recap.data.store import EpisodeStore
from recap.data.video import VideoFrames, VideoReader, VideoWriter, copy_episode_packets
from recap.errors import SchemaError, StoreError

SPEC = aloha_spec(height=16, width=24)
AV1_MAX_MEAN_ABS_ERROR = 6.0  # of 255, on the smooth test frames
AV1_MIN_PSNR_DB = 30.0


@pytest.fixture
def source(tmp_path):
    store = EpisodeStore.create(tmp_path / "src", SPEC)
    rows = [
        (6, "pick", "demonstration", True, ["reach"] * 3 + ["grasp"] * 3),
        (9, "pick", "autonomous", False, None),
        (4, "place", "correction", None, ["fix"] * 4),
    ]
    provenance = [
        {"iteration": 0, "stage": "demos", "seed": 3},
        {"iteration": 2, "stage": "collect-2", "seed": 41},
        {},  # recorded outside the loop
    ]
    for i, (n, task, src, success, subtasks) in enumerate(rows):
        store.add(
            make_steps(n, i, SPEC),
            task=task,
            source=src,
            success=success,
            subtasks=subtasks,
            policy_version=f"v{i}",
            robot_id="arm-2",
            **provenance[i],
        )
    return store


def _round_trip(source, tmp_path, codec):
    export_lerobot(source, tmp_path / "lr", codec=codec, frames_per_file=10, progress=False)
    added = import_lerobot(tmp_path / "lr", tmp_path / "back", progress=False)
    return EpisodeStore.open(tmp_path / "back"), added


@pytest.mark.parametrize("codec", ["lossless", "av1"])
def test_round_trip_keeps_episodes_and_metadata(source, tmp_path, codec):
    back, added = _round_trip(source, tmp_path, codec)
    assert len(added) == 3 and back.spec == source.spec
    assert back.image_codec == codec  # video stays video, in the dataset's codec
    # ids, task, success, source, versions, robot, fps, length and the loop provenance
    assert back.episodes() == source.episodes()
    assert [(m.iteration, m.stage, m.seed) for m in back.episodes()] == [
        (0, "demos", 3),
        (2, "collect-2", 41),
        (None, None, None),
    ]
    for m in source.episodes():
        a, b = source.load(m.episode_id), back.load(m.episode_id)
        assert a.subtasks == b.subtasks
        for key, x in a.steps.items():
            y = b.steps[key]
            if not key.startswith("observation.images.") or codec == "lossless":
                assert torch.equal(x, y), key
            else:
                err = (x.float() - y.float()).abs()
                psnr = 10 * np.log10(255**2 / float((err**2).mean()))
                assert float(err.mean()) <= AV1_MAX_MEAN_ABS_ERROR and psnr >= AV1_MIN_PSNR_DB, (key, psnr)
    assert import_lerobot(tmp_path / "lr", tmp_path / "back", progress=False) == []  # re-import skips


def test_exported_tree_follows_v3_layout_read_with_pyarrow_alone(source, tmp_path):
    export_lerobot(source, tmp_path / "lr", codec="lossless", frames_per_file=10, progress=False)
    root = tmp_path / "lr"
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 50
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 19, 2)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    feats = info["features"]
    assert feats["observation.images.cam_high"]["dtype"] == "video"
    assert feats["observation.images.cam_high"]["shape"] == [16, 24, 3]
    assert feats["observation.state"] == {"dtype": "float32", "shape": [14], "names": list(SPEC.joint_names)}
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index", "next.success"):
        assert feats[name]["shape"] == [1]
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pylist()
    assert tasks == [{"task_index": 0, "task": "pick"}, {"task_index": 1, "task": "place"}]
    eps = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in eps] == [0, 1, 2] and [e["length"] for e in eps] == [6, 9, 4]
    assert [e["success"] for e in eps] == [True, False, None]
    assert [e["source"] for e in eps] == ["demonstration", "autonomous", "correction"]
    # 6 frames fit file 0; 6 + 9 > 10 starts file 1; 9 + 4 > 10 starts file 2: many files, indices consistent
    assert [e["data/file_index"] for e in eps] == [0, 1, 2]
    for e in eps:
        data = pq.read_table(
            root
            / info["data_path"].format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
        )
        rows = data.filter(np.array(data["episode_index"].to_pylist()) == e["episode_index"])
        assert rows["index"].to_pylist() == list(range(e["dataset_from_index"], e["dataset_to_index"]))
        assert rows["frame_index"].to_pylist() == list(range(e["length"]))
        assert rows["next.success"].to_pylist()[-1] is bool(e["success"])
        key = "observation.images.cam_high"
        assert e[f"videos/{key}/to_timestamp"] - e[f"videos/{key}/from_timestamp"] == pytest.approx(
            e["length"] / 50
        )
        assert (
            root
            / info["video_path"].format(
                video_key=key, chunk_index=0, file_index=e[f"videos/{key}/file_index"]
            )
        ).is_file()
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert set(stats["action"]) >= {"min", "max", "mean", "std", "count"}
    assert stats["action"]["count"] == [19]


def test_several_episodes_share_one_file(source, tmp_path):
    export_lerobot(source, tmp_path / "lr", codec="lossless", progress=False)
    eps = pq.read_table(tmp_path / "lr" / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert {e["data/file_index"] for e in eps} == {0}
    assert [e["videos/observation.images.cam_high/from_timestamp"] for e in eps] == pytest.approx(
        [0, 0.12, 0.3]
    )
    back = import_lerobot(tmp_path / "lr", tmp_path / "back", progress=False)
    assert [m.length for m in back] == [6, 9, 4]


def test_import_refuses_other_versions_and_missing_datasets(source, tmp_path):
    export_lerobot(source, tmp_path / "lr", codec="lossless", progress=False)
    info_path = tmp_path / "lr" / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(SchemaError, match="v2.1"):
        import_lerobot(tmp_path / "lr", tmp_path / "back", progress=False)
    with pytest.raises(StoreError, match="meta/info.json"):
        import_lerobot(tmp_path / "nothing", tmp_path / "back", progress=False)
    with pytest.raises(StoreError, match="not empty"):
        export_lerobot(source, tmp_path / "lr", progress=False)


def test_truncated_video_names_the_file(source, tmp_path):
    export_lerobot(source, tmp_path / "lr", codec="lossless", progress=False)
    video = tmp_path / "lr" / "videos" / "observation.images.cam_left_wrist" / "chunk-000" / "file-000.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    with pytest.raises(StoreError, match="file-000.mp4"):
        import_lerobot(tmp_path / "lr", tmp_path / "back", progress=False)


def test_import_decodes_to_raw_frames_only_when_asked(source, tmp_path):
    export_lerobot(source, tmp_path / "lr", codec="lossless", progress=False)
    import_lerobot(tmp_path / "lr", tmp_path / "raw", image_codec=None, progress=False)
    raw = EpisodeStore.open(tmp_path / "raw")
    assert raw.image_codec is None
    for m in source.episodes():
        for key, value in source.load(m.episode_id).steps.items():
            assert torch.equal(raw.load(m.episode_id).steps[key], value)
    with pytest.raises(SchemaError, match="image_codec 'png'"):
        import_lerobot(tmp_path / "lr", tmp_path / "png", image_codec="png", progress=False)


def test_import_copies_video_packets_without_decoding(source, tmp_path):
    """With the dataset's codec, the store holds the dataset's own packets: its frames decode to exactly what
    the dataset's video decodes to (a re-encode would change them)."""
    export_lerobot(source, tmp_path / "lr", codec="av1", frames_per_file=100, progress=False)
    import_lerobot(tmp_path / "lr", tmp_path / "back", progress=False)
    back = EpisodeStore.open(tmp_path / "back")
    reader = VideoReader(SPEC.fps)
    episodes = pq.read_table(tmp_path / "lr/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    for ep in episodes:  # all in file 000, back to back
        for cam in SPEC.cameras:
            video = tmp_path / "lr" / f"videos/{cam.key}/chunk-000/file-000.mp4"
            expected = reader.take(video, ep[f"videos/{cam.key}/from_timestamp"], ep["length"])
            assert np.array_equal(np.asarray(back.arrays(ep["recap_episode_id"])[cam.key]), expected)
            reader.close()


def test_episodes_that_do_not_start_on_a_keyframe_are_re_encoded(tmp_path):
    frames = smooth_frames(12, 16, 24, 0)
    writer = VideoWriter(tmp_path / "v.mp4", 16, 24, 50, "h264", keyframe_interval=4)
    writer.write(frames)
    writer.close()
    assert copy_episode_packets(tmp_path / "v.mp4", 5, 4, 50) is None  # frame 5 needs frame 4
    copied = copy_episode_packets(tmp_path / "v.mp4", 4, 8, 50)
    assert copied is not None and copied.shape == (8, 16, 24, 3) and copied.keyframe_interval == 4
    reader = VideoReader(50)
    decoded = VideoFrames(copied.data, copied.shape, 50, copied.keyframe_interval, "test")
    assert np.array_equal(decoded[[7, 0, 3]], reader.take(tmp_path / "v.mp4", 4 / 50, 8)[[7, 0, 3]])

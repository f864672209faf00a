import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from data_episodes import make_steps

from recap.data.lerobot_export import export_lerobot
from recap.data.lerobot_import import import_lerobot
from recap.data.spec import aloha_spec
from recap.data.store import EpisodeStore
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

import importlib.util
import json

import pytest
import torch

from recap.cli.main import main
from recap.data.store import EpisodeStore
from recap.plugins import load_registry, set_registry


def test_info_counts_by_task_source_success(filled, capsys):
    assert main(["data", "info", str(filled.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 4 and report["steps"] == 26
    assert report["hours"] == 26 / 50 / 3600
    assert report["by_source"] == {"demonstration": 1, "autonomous": 2, "correction": 1}
    assert report["by_success"] == {"success": 2, "failure": 1, "unlabelled": 1}
    assert report["by_task"]["pick"]["episodes"] == 2 and report["by_task"]["place"]["steps"] == 11
    assert report["disk_bytes"] > 0
    assert main(["data", "info", str(filled.root)]) == 0
    assert "episodes    4" in capsys.readouterr().out


def test_info_reports_problems_with_exit_code_1(filled, capsys):
    eid = filled.episodes()[0].episode_id
    (filled.root / "episodes" / eid / "meta.json").write_text("{")
    assert main(["data", "info", str(filled.root)]) == 1
    assert f"PROBLEM     {eid}" in capsys.readouterr().out


def test_label_success_sets_corrects_and_clears(filled, capsys):
    eid = filled.episodes(success=None)[0].episode_id
    assert main(["data", "label-success", str(filled.root), eid, "--success", "--by", "ana"]) == 0
    assert EpisodeStore.open(filled.root).meta(eid).success is True
    assert main(["data", "label-success", str(filled.root), eid, "--failure", "--note", "dropped"]) == 0
    assert EpisodeStore.open(filled.root).meta(eid).success is False
    assert main(["data", "label-success", str(filled.root), eid, "--clear"]) == 0
    assert EpisodeStore.open(filled.root).meta(eid).success is None
    out = capsys.readouterr().out
    assert "ana" in out and "dropped" in out
    assert main(["data", "label-success", str(filled.root), eid]) == 2
    assert "exactly one of --success" in capsys.readouterr().err
    assert main(["data", "label-success", str(filled.root), "no-such-episode", "--success"]) == 2


def test_export_then_import_through_the_cli(filled, tmp_path, capsys):
    lr, back = tmp_path / "lr", tmp_path / "back"
    assert (
        main(
            [
                "data",
                "export-lerobot",
                str(filled.root),
                str(lr),
                "--codec",
                "lossless",
                "--task",
                "pick",
                "--no-progress",
            ]
        )
        == 0
    )
    assert main(["data", "import-lerobot", str(lr), str(back), "--no-progress"]) == 0
    assert "imported 2 episodes" in capsys.readouterr().out
    assert EpisodeStore.open(back).episodes() == filled.episodes(task="pick")


def test_info_lists_episode_ids(filled, capsys):
    assert main(["data", "info", str(filled.root), "--list"]) == 0
    out = capsys.readouterr().out
    assert all(m.episode_id in out for m in filled.episodes())


@pytest.mark.skipif(
    importlib.util.find_spec("recap_bimanual") is None, reason="needs the simulated robot plugin"
)
def test_collect_records_into_a_video_store(tmp_path):
    previous = set_registry(load_registry(entrypoints=True))  # the shipped sim plugin, installed
    try:
        _collect_into_a_video_store(tmp_path / "video")
    finally:
        set_registry(previous)


def _collect_into_a_video_store(store):
    args = ["collect", "--store", str(store), "--episodes", "1", "--image-codec", "h264", "--time-limit", "6"]
    assert main([*args, "--backend.cameras", "cam_high", "cam_left_wrist", "--no-progress"]) == 0
    recorded = EpisodeStore.open(store)
    assert recorded.image_codec == "h264" and [m.length for m in recorded.episodes()] == [6]
    frames = recorded.load(recorded.episodes()[0].episode_id).steps["observation.images.cam_left_wrist"]
    assert frames.shape == (6, *recorded.spec.camera("cam_left_wrist").shape) and frames.dtype == torch.uint8

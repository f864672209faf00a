import json

import pytest

from recap.loop.stages import StageRunner


def test_completed_stage_is_skipped_and_incomplete_reruns(tmp_path):
    calls = []
    runner = StageRunner(tmp_path, log=lambda m: None)

    def ok(d):
        calls.append("ok")
        return {"x": 1}

    def crash(d):
        calls.append("crash")
        (d / "partial").write_text("half")
        raise KeyboardInterrupt

    assert runner.run("a", ok)["x"] == 1
    with pytest.raises(KeyboardInterrupt):
        runner.run("b", crash)
    runner2 = StageRunner(tmp_path, log=lambda m: None)
    runner2.run("a", ok)
    runner2.run("b", lambda d: {"resumed": (d / "partial").exists()})
    assert calls == ["ok", "crash"]
    assert json.loads((tmp_path / "stages" / "b" / "summary.json").read_text())["resumed"] is True
    assert runner2.completed() == ["a", "b"]

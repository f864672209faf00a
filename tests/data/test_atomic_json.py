"""recap.data.atomic_json: the one writer of files that readers must never see half-written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recap.data.atomic_json import write_json_atomic


def test_writes_paths_and_tensors_and_replaces_the_old_file(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text('{"old": true}')
    write_json_atomic(target, {"dir": Path("/a/b"), "t": torch.tensor([1, 2]), "n": np.arange(2)})
    assert json.loads(target.read_text()) == {"dir": "/a/b", "t": [1, 2], "n": [0, 1]}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "store.json"
    target.write_text('{"episodes": 3}')
    with pytest.raises(TypeError, match="object"):
        write_json_atomic(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"episodes": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["store.json"]

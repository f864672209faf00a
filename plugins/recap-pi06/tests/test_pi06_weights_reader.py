"""The checkpoint reader: headers only up front, tensors read straight into their targets (converted chunk by
chunk when the dtype differs), truncated or corrupt files named."""

from __future__ import annotations

import pytest
import torch
from recap_pi06.weights import reader
from recap_pi06.weights.reader import CheckpointFiles
from safetensors.torch import save_file

from recap.errors import ConfigError


def test_reads_into_targets_across_chunks_and_dtypes(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    state = {"a": torch.randn(7, 5, generator=g), "b": torch.randn(3, generator=g).to(torch.bfloat16)}
    save_file(state, str(tmp_path / "model.safetensors"))
    monkeypatch.setattr(reader, "CHUNK_BYTES", 12)  # three float32 values per read: many chunks
    files = CheckpointFiles(tmp_path)
    assert files.shapes == {"a": (7, 5), "b": (3,)} and files.dtypes["b"] == torch.bfloat16
    same, wider, narrower = torch.empty(7, 5), torch.empty(7, 5, dtype=torch.float64), torch.empty(3)
    ticks = []
    files.copy_into({"a": same}, lambda it, n: (ticks.append(n), it)[1])
    files.copy_into({"a": wider, "b": narrower})
    assert ticks == [1]
    assert torch.equal(same, state["a"])
    assert torch.equal(wider, state["a"].double())
    assert torch.equal(narrower, state["b"].float())


def test_truncated_and_corrupt_files_are_named(tmp_path):
    save_file({"w": torch.ones(1000)}, str(tmp_path / "model.safetensors"))
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[:-100])
    with pytest.raises(ConfigError, match="w's byte range"):
        CheckpointFiles(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(ConfigError, match="not a safetensors file"):
        CheckpointFiles(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="no model.safetensors"):
        CheckpointFiles(tmp_path)

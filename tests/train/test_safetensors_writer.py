"""The streaming safetensors writer of model checkpoints: what it writes, safetensors' own reader reads back
exactly (every dtype a model holds, scalars, empty, non-contiguous and aliased tensors)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from recap.errors import ConfigError
from recap.train.checkpoint import write_safetensors


def test_round_trip_through_safetensors_reader(tmp_path):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g)
    tensors = {
        "f32": base,
        "bf16": base.bfloat16(),
        "f16": base.half(),
        "f64": base.double(),
        "i64": torch.arange(5),
        "u8_blob": torch.tensor(list(b'{"tokenizer": 1}'), dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "transposed": base.T,  # not contiguous
        "alias": base[1:3],  # shares storage with f32
    }
    path = tmp_path / "model.safetensors"
    write_safetensors(tensors, path)
    back = load_file(str(path))
    assert set(back) == set(tensors)
    for key, tensor in tensors.items():
        assert back[key].dtype == tensor.dtype, key
        assert torch.equal(back[key], tensor), key


def test_unsupported_dtype_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="complex"):
        write_safetensors({"z": torch.zeros(2, dtype=torch.complex64)}, tmp_path / "x.safetensors")

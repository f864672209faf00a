"""Import refuses, naming the key, a checkpoint with a missing tensor, a wrong shape or an unknown layout; a
sharded checkpoint (``model.safetensors.index.json``) reads like one file."""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch
from hf_fixtures import one_camera_spec, paligemma
from recap_pi06.config import PI06_TINY
from recap_pi06.weights.importer import import_policy

from recap.errors import ConfigError

pytest.importorskip("transformers")


@pytest.fixture
def state(tmp_path):
    paligemma(tmp_path / "ref")
    return safetensors.torch.load_file(str(tmp_path / "ref" / "model.safetensors"))


def _write(tmp_path, name, state):
    (tmp_path / name).mkdir()
    safetensors.torch.save_file(state, str(tmp_path / name / "model.safetensors"))
    (tmp_path / name / "config.json").write_text((tmp_path / "ref" / "config.json").read_text())
    return str(tmp_path / name)


def _import(path):
    return import_policy(path, PI06_TINY, one_camera_spec(), None)


def test_missing_tensor_is_named(tmp_path, state):
    del state["language_model.model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(ConfigError, match=r"missing trunk\.decoder\.layers\.1\.mlp\.up\.weight"):
        _import(_write(tmp_path, "bad", state))


def test_wrong_shape_is_named(tmp_path, state):
    state["vision_tower.encoder.layers.0.mlp.fc2.bias"] = torch.zeros(5)
    with pytest.raises(
        ConfigError, match=r"shape of vision_tower\.encoder\.layers\.0\.mlp\.fc2\.bias is \[5\]"
    ):
        _import(_write(tmp_path, "bad", state))


def test_unknown_layout_is_named(tmp_path, state):
    state["transformer.h.0.attn.c_attn.weight"] = torch.zeros(2, 2)
    with pytest.raises(ConfigError, match=r"no layout recap knows.*transformer\.h\.0\.attn\.c_attn\.weight"):
        _import(_write(tmp_path, "bad", state))


def test_sharded_checkpoint_reads_like_one_file(tmp_path, state):
    (tmp_path / "sharded").mkdir()
    names = sorted(state)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for shard, keys in halves.items():
        safetensors.torch.save_file({k: state[k] for k in keys}, str(tmp_path / "sharded" / shard))
        weight_map.update(dict.fromkeys(keys, shard))
    (tmp_path / "sharded" / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (tmp_path / "sharded" / "config.json").write_text((tmp_path / "ref" / "config.json").read_text())
    whole, _, _ = _import(str(tmp_path / "ref"))
    split, _, _ = _import(str(tmp_path / "sharded"))
    for (name, a), (_, b) in zip(whole.state_dict().items(), split.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    bf16, _, _ = import_policy(
        str(tmp_path / "sharded"), PI06_TINY, one_camera_spec(), None, dtype=torch.bfloat16
    )
    assert bf16.trunk.decoder.embed.weight.dtype == torch.bfloat16
    assert torch.equal(bf16.trunk.vision.blocks[0].q.weight, whole.trunk.vision.blocks[0].q.weight.bfloat16())


def test_unexpected_tensor_is_named(tmp_path):
    """An expert layer the backbone does not have (the expert has one layer per backbone layer)."""
    from test_pi06_import_pi05 import TINY_PI05, openpi_pi05_state

    state = openpi_pi05_state()
    state["paligemma_with_expert.gemma_expert.model.layers.7.mlp.up_proj.weight"] = torch.zeros(32, 16)
    (tmp_path / "bad").mkdir()
    safetensors.torch.save_file(state, str(tmp_path / "bad" / "model.safetensors"))
    with pytest.raises(
        ConfigError, match=r"unexpected paligemma_with_expert\.gemma_expert\.model\.layers\.7\."
    ):
        import_policy(str(tmp_path / "bad"), TINY_PI05, one_camera_spec(), None)

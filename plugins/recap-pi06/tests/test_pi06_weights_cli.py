"""``recap weights import`` end to end on a tiny openpi-layout pi0.5 checkpoint: the checkpoint's SentencePiece
tokenizer and norm_stats.json come along, the report names what was skipped, and the written checkpoint loads."""

from __future__ import annotations

import json
import shutil

import pytest
import safetensors.torch
import torch
from hf_fixtures import IMAGE, one_camera_spec, tiny_sentencepiece
from test_pi06_import_pi05 import openpi_pi05_state

from recap.cli.main import main
from recap.data.store import EpisodeStore
from recap.plugins import load_registry, set_registry
from recap.testing.policy_suite import make_batch
from recap.train.checkpoint import load_policy

pytest.importorskip("sentencepiece")


@pytest.fixture
def registry():
    from recap_pi06 import plugin

    reg = load_registry([("recap-pi06", plugin)], entrypoints=False)
    set_registry(reg)
    yield reg
    set_registry(None)


def _checkpoint(tmp_path):
    src = tmp_path / "pi05_base"
    src.mkdir()
    safetensors.torch.save_file(openpi_pi05_state(), str(src / "model.safetensors"))
    # pi0.5 head sizes of the tiny fixture (a real pi0.5 has none: the preset's 256 / 16 apply)
    (src / "config.json").write_text(
        json.dumps(
            {"text_config": {"head_dim": 8}, "vision_config": {"num_attention_heads": 2}, "chunk_size": 5}
        )
    )
    tiny_sentencepiece(src / "tokenizer.model")
    stats = {"mean": [0.5] * 6, "std": [2.0] * 6, "q01": [-3.0] * 6, "q99": [5.0] * 6}
    assets = src / "assets" / "aloha"
    assets.mkdir(parents=True)
    (assets / "norm_stats.json").write_text(json.dumps({"norm_stats": {"state": stats, "actions": stats}}))
    store = EpisodeStore.create(tmp_path / "store", one_camera_spec(state_dim=4, action_dim=3))
    return src, store.root


def test_cli_imports_a_pi05_checkpoint(tmp_path, registry, capsys):
    src, store = _checkpoint(tmp_path)
    out = tmp_path / "imported"
    assert main(["weights", "import", str(src), str(out), "--store", str(store), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "skipped paligemma_with_expert.gemma_expert.lm_head.weight" in printed
    assert "statistics: " in printed and "norm_stats.json" in printed
    policy, _ = load_policy(out, registry)
    assert policy.config.text_tokenizer_path == ""  # the tokenizer travels in the weights, not as a path
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(src / "tokenizer.model"))
    want = [sp.encode("open the drawer")]
    shutil.rmtree(src)  # the download can go: the import does not need it any more
    policy, _ = load_policy(out, registry)
    assert policy.trunk.text.encode(["open the drawer"]) == want
    policy.fit_to_data(make_batch(one_camera_spec(state_dim=4, action_dim=3), batch_size=2, chunk_size=5))
    assert (
        policy.trunk.text.encode(["open the drawer"]) == want
    )  # fine-tuning keeps the checkpoint's tokenizer
    assert policy.trunk.text.bos_id == 2
    assert torch.equal(policy.trunk.norm.of("action").q01, torch.full((3,), -3.0))
    assert policy.config.normalization == "quantile"
    weights = safetensors.torch.load_file(str(out / "model.safetensors"))
    assert torch.equal(
        weights["expert.layers.1.mlp_norm.norm.dense.bias"],
        openpi_pi05_state()[
            "paligemma_with_expert.gemma_expert.model.layers.1.post_attention_layernorm.dense.bias"
        ],
    )
    frames = torch.zeros(1, IMAGE, IMAGE, 3, dtype=torch.uint8)
    from tensordict import NonTensorStack, TensorDict

    obs = TensorDict(
        {
            "observation.images.cam_high": frames,
            "observation.state": torch.zeros(1, 4),
            "task": NonTensorStack("fold"),
        },
        batch_size=[1],
    )
    assert policy.sample_actions(obs, True).shape == (1, 5, 3)


def test_cli_refuses_an_unknown_layout_and_writes_nothing(tmp_path, registry, capsys):
    src, store = _checkpoint(tmp_path)
    state = openpi_pi05_state()
    state["model.decoder.layers.0.fc1.weight"] = torch.zeros(2, 2)
    safetensors.torch.save_file(state, str(src / "model.safetensors"))
    out = tmp_path / "imported"
    assert main(["weights", "import", str(src), str(out), "--store", str(store), "--no-progress"]) != 0
    assert "model.decoder.layers.0.fc1.weight" in capsys.readouterr().err
    assert not out.exists()


def test_cli_picks_the_pi0_preset_for_a_pi0_checkpoint(tmp_path, registry, capsys):
    pytest.importorskip("transformers")
    from hf_fixtures import pi0

    pi0(tmp_path / "pi0", chunk=4, pad_dim=6)
    store = EpisodeStore.create(tmp_path / "store", one_camera_spec(state_dim=4, action_dim=3))
    out = tmp_path / "imported"
    assert (
        main(
            [
                "weights",
                "import",
                str(tmp_path / "pi0"),
                str(out),
                "--store",
                str(store.root),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "preset: pi0\n" in capsys.readouterr().out
    policy, _ = load_policy(out, registry)
    assert (policy.config.state_input, policy.config.normalization) == ("token", "mean_std")
    assert policy.config.expert.time_conditioning == "concat"

"""``recap weights import`` on tiny Gemma 3 checkpoints: a Gemma 3 VLM becomes a pi06 policy (its tower at the
preset's resolution), and a text-only Gemma 3 with a SigLIP tower (``--vision``) becomes a value estimator
checkpoint around a ``pi06-value`` network; both load back and run."""

from __future__ import annotations

import attrs
import pytest
import torch
from gemma3_fixtures import gemma3_text, gemma3_vlm, siglip_tower
from hf_fixtures import one_camera_spec

from recap.cli.main import main
from recap.data.store import EpisodeStore
from recap.plugins import load_registry
from recap.testing.policy_suite import make_batch
from recap.testing.registry import process_registry
from recap.train.checkpoint import load_policy, load_value

pytest.importorskip("transformers")

SIZE = 16  # the tiny presets' resolution; the fixtures' towers are at 32 px


@pytest.fixture
def registry():
    reg = load_registry(
        extra_plugins=["recap_pi06.plugin", "recap_distributional_value.plugin"], entrypoints=False
    )
    with process_registry(reg):
        yield reg


@pytest.fixture
def store(tmp_path):
    spec = one_camera_spec(state_dim=4, action_dim=3)
    spec = attrs.evolve(spec, cameras=(attrs.evolve(spec.cameras[0], height=SIZE, width=SIZE),))
    return EpisodeStore.create(tmp_path / "store", spec)


def test_cli_imports_a_gemma3_vlm_as_a_pi06_policy(tmp_path, registry, store, capsys):
    gemma3_vlm(tmp_path / "vlm")
    out = tmp_path / "policy"
    args = ["weights", "import", str(tmp_path / "vlm"), str(out), "--preset", "pi06-gemma3-tiny"]
    assert main([*args, "--store", str(store.root), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "initialised by recap (not in the checkpoint): expert.layers.0.attn.q.weight" in printed
    policy, _ = load_policy(out, registry)
    assert policy.config.backbone.flavour == "gemma3" and policy.config.backbone.sliding_window == 4
    assert policy.config.vision.image_size == SIZE and policy.trunk.vision.positions.shape[0] == 4
    batch = make_batch(store.spec, batch_size=2, chunk_size=policy.chunk_size)
    assert policy.sample_actions(batch, True, guidance=1.5).shape == (2, policy.chunk_size, 3)


def test_cli_imports_gemma3_text_and_siglip_as_a_value_estimator(tmp_path, registry, store, capsys):
    pytest.importorskip("recap_distributional_value")  # value import builds its estimator
    gemma3_text(tmp_path / "lm")
    siglip_tower(tmp_path / "siglip")
    out = tmp_path / "value"
    args = ["weights", "import", str(tmp_path / "lm"), str(out), "--importer", "pi06-value"]
    args += ["--preset", "pi06-value-gemma3-tiny", "--vision", str(tmp_path / "siglip")]
    assert main([*args, "--store", str(store.root), "--no-progress"]) == 0
    assert (
        "initialised by recap (not in the checkpoint): trunk.vision.project.weight" in capsys.readouterr().out
    )
    estimator = load_value(out, registry)
    assert estimator.network.config.backbone.depth == 7 and estimator.num_bins == 201
    values = estimator.predict(make_batch(store.spec, batch_size=2))["value"]
    assert values.shape == (2,) and torch.isfinite(values).all()


def test_cli_value_import_refuses_a_missing_tower_file(tmp_path, registry, store, capsys):
    pytest.importorskip("recap_distributional_value")  # value import builds its estimator
    gemma3_text(tmp_path / "lm")
    args = ["weights", "import", str(tmp_path / "lm"), str(tmp_path / "value"), "--importer", "pi06-value"]
    args += ["--vision", str(tmp_path / "nowhere"), "--store", str(store.root), "--no-progress"]
    assert main(args) != 0
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "value").exists()


def test_a_gemma3_checkpoint_picks_the_pi06_preset_by_default(tmp_path):
    from recap_pi06.weights.registered import _detect_preset

    gemma3_vlm(tmp_path / "vlm")
    gemma3_text(tmp_path / "lm")
    assert _detect_preset(tmp_path / "vlm") == _detect_preset(tmp_path / "lm") == "pi06"

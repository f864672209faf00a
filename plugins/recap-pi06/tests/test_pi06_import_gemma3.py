"""Imported Gemma 3 weights compute what transformers' Gemma 3 computes (fp32, max abs diff <= 1e-4): hidden
states and logits of the decoder under transformers' own masks (the explicit-mask path), the image tokens after
the Gemma 3 projector, and the SigLIP tower at another resolution (interpolated positions)."""

from __future__ import annotations

import attrs
import pytest
import torch
from gemma3_fixtures import (
    IMAGE,
    IMAGE_TOKEN,
    TEXT,
    as_bool,
    capture_masks,
    gemma3_text,
    gemma3_vlm,
    siglip_tower,
)
from hf_fixtures import one_camera_spec
from recap_pi06.config import PI06_TINY
from recap_pi06.gemma3 import interpolate_positions, layer_masks
from recap_pi06.weights.importer import import_policy

pytest.importorskip("transformers")

TOL = 1e-4
BASE = attrs.evolve(PI06_TINY, vision=attrs.evolve(PI06_TINY.vision, image_size=IMAGE))


def _spec(size: int = IMAGE):
    spec = one_camera_spec()
    return attrs.evolve(spec, cameras=(attrs.evolve(spec.cameras[0], height=size, width=size),))


def _pixels(batch: int, size: int = IMAGE, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_gemma3_vlm_hidden_states_logits_and_image_tokens_match_transformers(tmp_path):
    reference = gemma3_vlm(tmp_path)
    policy, config, report = import_policy(str(tmp_path), BASE, _spec(), None)
    shape = config.backbone
    assert shape.flavour == "gemma3" and shape.layer_kinds == ("local",) * 5 + ("global", "local")
    assert (shape.sliding_window, shape.rope_scaling, shape.rope_theta, shape.query_pre_attn_scalar) == (
        4,
        8.0,
        1e6,
        16.0,
    )
    assert config.vision.projector == "gemma3" and config.vision.pool_kernel == 2
    assert "trunk.vision.project.norm.weight" in report.loaded.values()
    pixels = _pixels(2)
    before, after = (
        torch.tensor([[2, 17, 40], [2, 250, 3]]),
        torch.tensor([[7, 8, 9, 1, 5, 6], [10, 11, 12, 3, 3, 4]]),
    )
    ids = torch.cat([before, torch.full((2, 4), IMAGE_TOKEN), after], dim=1)  # 13 tokens, window 4
    token_type = (ids == IMAGE_TOKEN).long()
    masks = capture_masks(reference)
    with torch.no_grad():
        want_image = reference.model.get_image_features(pixels).pooler_output
        out = reference(
            input_ids=ids, pixel_values=pixels, token_type_ids=token_type, output_hidden_states=True
        )
        decoder = policy.trunk.decoder
        image = policy.trunk.vision.encode_pixels(pixels)
        embeds = torch.cat([decoder.embed_tokens(before), image, decoder.embed_tokens(after)], dim=1)
        positions = torch.arange(ids.shape[1]).expand(2, -1)
        full, local = as_bool(masks["global"][0]), as_bool(masks["local"][0])
        hidden, _ = decoder(embeds, positions, full, local_mask=local)
        logits = decoder.logits(hidden, 0, TEXT["vocab_size"])
        # our own sliding window over transformers' global mask is transformers' local mask
        assert torch.equal(layer_masks(shape, full, positions, positions)["local"], local)
        assert not torch.equal(full, local)
    assert (image - want_image).abs().max() <= TOL
    assert (hidden - out.hidden_states[-1]).abs().max() <= TOL
    assert (logits - out.logits).abs().max() <= TOL
    # plausible port bugs are far outside the tolerance: no linear rope scaling, or Gemma 1's layer order
    for wrong_shape in (attrs.evolve(shape, rope_scaling=1.0), attrs.evolve(shape, sliding_window_pattern=3)):
        decoder.shape = wrong_shape
        with torch.no_grad():
            wrong, _ = decoder(embeds, positions, full, local_mask=local)
        assert (wrong - out.hidden_states[-1]).abs().max() > 100 * TOL


def test_gemma3_text_model_matches_transformers_under_its_mask_and_ours(tmp_path):
    reference = gemma3_text(tmp_path, seed=3)
    policy, config, report = import_policy(str(tmp_path), BASE, _spec(), None)
    assert config.backbone.flavour == "gemma3" and config.text_vocab_size == TEXT["vocab_size"]
    assert "trunk.vision.patchify.weight" in report.initialised  # text only: the tower starts fresh
    ids = torch.tensor(
        [[2, 5, 9, 13, 40, 41, 42, 7, 8, 99, 100, 3], [2, 6, 6, 6, 1, 1, 250, 251, 4, 4, 4, 4]]
    )
    masks = capture_masks(reference)
    with torch.no_grad():
        out = reference(input_ids=ids, output_hidden_states=True)
        decoder = policy.trunk.decoder
        embeds = decoder.embed_tokens(ids)
        positions = torch.arange(ids.shape[1]).expand(2, -1)
        causal = torch.ones(12, 12, dtype=torch.bool).tril().expand(2, -1, -1)
        explicit, _ = decoder(
            embeds, positions, as_bool(masks["global"][0]), local_mask=as_bool(masks["local"][0])
        )
        derived, _ = decoder(embeds, positions, causal)  # the window cut by our decoder
    for hidden in (explicit, derived):
        assert (hidden - out.hidden_states[-1]).abs().max() <= TOL
        assert (decoder.logits(hidden, 0, TEXT["vocab_size"]) - out.logits).abs().max() <= TOL


def test_siglip_positions_interpolated_to_a_smaller_grid_match_transformers(tmp_path):
    """A 32 px tower (4x4 positions) imported for 16 px frames (2x2) computes what transformers computes with
    interpolate_pos_encoding, and the table itself is transformers' bicubic resize."""
    reference = siglip_tower(tmp_path)
    base = attrs.evolve(
        BASE, vision=attrs.evolve(BASE.vision, image_size=16, projector="gemma3", tokens_per_image=4)
    )
    policy, config, _ = import_policy(str(tmp_path), base, _spec(16), None)
    assert config.vision.image_size == 16 and policy.trunk.vision.positions.shape[0] == 4
    table = reference.embeddings.position_embedding.weight
    pixels = _pixels(2, 16)
    with torch.no_grad():
        want = reference(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
        got = policy.trunk.vision.features(pixels)
        want_table = reference.embeddings.interpolate_pos_encoding(torch.zeros(1, 4, 16), 16, 16)
        assert (interpolate_positions(table, 2) - want_table[0]).abs().max() <= TOL
    assert (got - want).abs().max() <= TOL
    assert torch.equal(interpolate_positions(table, 4), table)  # the same grid is left alone


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop", "missing trunk.decoder.layers.5.attn.k_norm.weight"),
        ("reshape", "shape of language_model.model.layers.5.self_attn.k_norm.weight is [4]"),
    ],
)
def test_a_gemma3_checkpoint_missing_a_tensor_or_of_a_wrong_shape_is_refused_by_key(
    tmp_path, change, message
):
    import shutil

    import safetensors.torch

    from recap.errors import ConfigError

    gemma3_vlm(tmp_path / "good")
    state = safetensors.torch.load_file(str(tmp_path / "good" / "model.safetensors"))
    key = "language_model.model.layers.5.self_attn.k_norm.weight"
    if change == "drop":
        del state[key]
    else:
        state[key] = state[key][:4].clone()
    (tmp_path / "bad").mkdir()
    safetensors.torch.save_file(state, str(tmp_path / "bad" / "model.safetensors"))
    shutil.copyfile(tmp_path / "good" / "config.json", tmp_path / "bad" / "config.json")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        import_policy(str(tmp_path / "bad"), BASE, _spec(), None)


def test_sharded_gemma3_checkpoint_imports_the_same_as_one_file(tmp_path):
    reference = gemma3_vlm(tmp_path / "one")
    reference.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")
    assert len(list((tmp_path / "sharded").glob("*.safetensors"))) > 1
    a, _, _ = import_policy(str(tmp_path / "one"), BASE, _spec(), None)
    b, _, _ = import_policy(str(tmp_path / "sharded"), BASE, _spec(), None)
    for (name, x), (_, y) in zip(a.trunk.state_dict().items(), b.trunk.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_transformers_4_gemma3_text_config_reads_the_same_settings():
    """The hub's Gemma 3 4B config.json (transformers 4): rope_scaling, rope_local_base_freq and
    sliding_window_pattern instead of rope_parameters and layer_types."""
    from recap_pi06.config import PI06_FULL as PI06
    from recap_pi06.weights.gemma3 import gemma3_decoder

    text = {
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
        "rope_theta": 1_000_000.0,
        "rope_local_base_freq": 10_000.0,
        "sliding_window": 1024,
        "sliding_window_pattern": 6,
        "query_pre_attn_scalar": 256,
    }
    plain = attrs.evolve(PI06.backbone, flavour="gemma", rope_scaling=1.0, sliding_window=7)
    assert gemma3_decoder(text, plain) == PI06.backbone
    with pytest.raises(Exception, match="layer_types"):
        gemma3_decoder(
            {"layer_types": ["sliding_attention", "full_attention", "full_attention"]},
            attrs.evolve(plain, depth=3),
        )

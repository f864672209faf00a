"""Imported PaliGemma / SigLIP weights compute what transformers computes (fp32, max abs diff <= 1e-4)."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
from hf_fixtures import IMAGE, IMAGE_TOKEN, TEXT, one_camera_spec, paligemma, siglip
from recap_pi06.config import PI06_TINY
from recap_pi06.tokens import IMAGE as IMAGE_KIND
from recap_pi06.tokens import PROMPT, SUBTASK, Tokens, run_decoder
from recap_pi06.weights.importer import import_policy

pytest.importorskip("transformers")

TOL = 1e-4


def _pixels(batch: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_siglip_tower_matches_transformers(tmp_path):
    reference = siglip(tmp_path)
    policy, config, report = import_policy(str(tmp_path), PI06_TINY, one_camera_spec(), None)
    assert config.vision.flavour == "siglip" and config.vision.depth == 2
    assert any("attention-pooling head" in why for why in report.skipped.values())
    assert "trunk.vision.project.weight" in report.initialised  # SigLIP alone has no projector
    pixels = _pixels(2)
    with torch.no_grad():
        want = reference(pixel_values=pixels).last_hidden_state
        got = policy.trunk.vision.features(pixels)
    assert (got - want).abs().max() <= TOL


def test_older_siglip_key_layout_imports_the_same(tmp_path):
    """Before transformers 5.6 the tower's keys sat under ``vision_tower.vision_model.``."""
    siglip(tmp_path / "new")
    state = safetensors.torch.load_file(str(tmp_path / "new" / "model.safetensors"))
    (tmp_path / "old").mkdir()
    safetensors.torch.save_file(
        {f"vision_model.{k}": v for k, v in state.items()}, str(tmp_path / "old" / "model.safetensors")
    )
    a, _, _ = import_policy(str(tmp_path / "new"), PI06_TINY, one_camera_spec(), None)
    b, _, _ = import_policy(str(tmp_path / "old"), PI06_TINY, one_camera_spec(), None)
    pixels = _pixels(1)
    with torch.no_grad():
        assert torch.equal(a.trunk.vision.features(pixels), b.trunk.vision.features(pixels))


def test_paligemma_hidden_states_and_logits_match_transformers(tmp_path):
    reference = paligemma(tmp_path)
    policy, config, report = import_policy(str(tmp_path), PI06_TINY, one_camera_spec(), None)
    assert (config.backbone.width, config.backbone.num_heads, config.backbone.num_kv_heads) == (32, 4, 1)
    assert config.backbone.head_dim == 8 and config.text_vocab_size == TEXT["vocab_size"]
    assert not [k for k in report.loaded if "head." in k]
    pixels = _pixels(2)
    prompt = torch.tensor([[2, 17, 40, 99, 5], [2, 250, 3, 3, 120]])
    suffix = torch.tensor([[7, 8, 9], [10, 11, 12]])
    patches = (IMAGE // 8) ** 2
    ids = torch.cat([torch.full((2, patches), IMAGE_TOKEN), prompt, suffix], dim=1)
    token_type = torch.cat(
        [torch.zeros(2, patches + prompt.shape[1]), torch.ones(2, suffix.shape[1])], 1
    ).long()
    with torch.no_grad():
        want_features = reference.model.get_image_features(pixels).pooler_output
        out = reference.model(input_ids=ids, pixel_values=pixels, token_type_ids=token_type)
        want_logits = reference.lm_head(out.last_hidden_state)

        vision = policy.trunk.vision.encode_pixels(pixels)
        decoder = policy.trunk.decoder
        ones = lambda t: torch.ones(t.shape, dtype=torch.bool)  # noqa: E731
        tokens = Tokens.cat(
            [
                Tokens.make(vision, torch.ones(vision.shape[:2], dtype=torch.bool), False, IMAGE_KIND),
                Tokens.make(decoder.embed_tokens(prompt), ones(prompt), False, PROMPT, prompt),
                Tokens.make(decoder.embed_tokens(suffix), ones(suffix), True, SUBTASK, suffix),
            ]
        )
        hidden, _ = run_decoder(decoder, tokens)
        logits = decoder.logits(hidden, 0, TEXT["vocab_size"])
    assert (vision - want_features).abs().max() <= TOL
    assert (hidden - out.last_hidden_state).abs().max() <= TOL
    assert (logits - want_logits).abs().max() <= TOL
    # a plausible port bug (the Gemma norm scaling by w instead of 1 + w) is far outside the tolerance
    decoder.final_norm.weight.data -= 1.0
    with torch.no_grad():
        wrong, _ = run_decoder(decoder, tokens)
    assert (wrong - out.last_hidden_state).abs().max() > 100 * TOL

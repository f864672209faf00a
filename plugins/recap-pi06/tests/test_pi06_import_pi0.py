"""An imported pi0 computes what transformers' ``PI0ForConditionalGeneration`` computes (fp32, <= 1e-4): the flow
velocity at given (x_t, t) and ``sample_actions`` from the same noise, with and without the KV cache."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
from hf_fixtures import IMAGE, IMAGE_TOKEN, one_camera_spec, pi0, tiny_tokenizer
from recap_pi06.config import PI0
from recap_pi06.tokens import PROMPT, Context
from recap_pi06.weights.importer import import_policy
from tensordict import NonTensorStack, TensorDict

from recap.data import keys

pytest.importorskip("transformers")

TOL = 1e-4
CHUNK, PAD = 4, 6


@pytest.fixture
def imported(tmp_path):
    reference = pi0(tmp_path / "ckpt", chunk=CHUNK, pad_dim=PAD)
    tokenizer = tiny_tokenizer(tmp_path / "tokenizer.json")
    spec = one_camera_spec(state_dim=4, action_dim=3)
    policy, config, report = import_policy(str(tmp_path / "ckpt"), PI0, spec, None, tokenizer=str(tokenizer))
    return reference, policy.eval(), config, report


def _obs() -> TensorDict:
    g = torch.Generator().manual_seed(3)
    frames = torch.randint(0, 256, (2, IMAGE, IMAGE, 3), generator=g, dtype=torch.uint8)
    return TensorDict(
        {
            "observation.images.cam_high": frames,
            keys.STATE: torch.randn(2, 4, generator=g),
            keys.TASK: NonTensorStack("pick up the cube", "open the drawer please"),
        },
        batch_size=[2],
    )


def _reference_inputs(policy, obs):
    """transformers' inputs for the same observation: image placeholders then our prompt ids (right-padded)."""
    prefix = policy.trunk.prefix(obs)
    start, stop = prefix.span(PROMPT)
    ids, valid = prefix.ids[:, start:stop].clamp_min(0), prefix.valid[:, start:stop]
    patches = (IMAGE // 8) ** 2
    input_ids = torch.cat([torch.full((2, patches), IMAGE_TOKEN), ids], dim=1)
    mask = torch.cat([torch.ones(2, patches, dtype=torch.long), valid.long()], dim=1)
    pixels = (obs["observation.images.cam_high"].permute(0, 3, 1, 2).float() / 127.5 - 1.0)[:, None]
    state = torch.nn.functional.pad(obs[keys.STATE], (0, PAD - 4))
    return dict(
        input_ids=input_ids,
        attention_mask=mask,
        pixel_values=pixels,
        pixel_attention_mask=torch.ones(2, 1, dtype=torch.bool),
        state=state,
    )


def test_import_infers_pi0(imported):
    _, policy, config, report = imported
    assert config.expert.time_conditioning == "concat" and config.state_input == "token"
    assert (config.action_pad_dim, config.chunk_size, config.expert.width) == (PAD, CHUNK, 16)
    assert not [
        k for k in report.initialised if k.startswith(("trunk.vision.", "trunk.decoder.layers", "expert."))
    ]
    assert "paligemma_with_expert.gemma_expert.lm_head.weight" in report.skipped
    assert report.embedding_rows[0] == 300


@pytest.mark.parametrize("use_cache", [True, False])
def test_velocity_matches_transformers(imported, use_cache):
    reference, policy, _, _ = imported
    obs = _obs()
    inputs = _reference_inputs(policy, obs)
    g = torch.Generator().manual_seed(5)
    x_t, t = torch.randn(2, CHUNK, PAD, generator=g), torch.tensor([0.3, 0.85])
    with torch.no_grad():
        want = reference(noise=x_t, timestep=t, **inputs).logits
        ctx = Context(policy.trunk.decoder, use_cache)
        ctx.append(policy.trunk.prefix(obs))
        kv, valid, start = ctx.keys_values()
        got = policy.expert(x_t, t, kv, valid, start, policy.expert_state(obs))
    assert want.shape == got.shape
    assert (got - want).abs().max() <= TOL


@pytest.mark.parametrize("use_cache", [True, False])
def test_sample_actions_match_transformers(imported, use_cache):
    reference, policy, config, _ = imported
    obs = _obs()
    noise = torch.randn(2, CHUNK, PAD, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        want = reference.sample_actions(
            noise=noise.clone(), num_steps=config.num_steps, **_reference_inputs(policy, obs)
        )
    got = policy.sample_actions(obs, indicator=None, noise=noise, use_cache=use_cache)
    assert got.shape == (2, CHUNK, 3)
    assert (got - want[..., :3]).abs().max() <= TOL


def test_hub_layout_imports_the_same(imported, tmp_path):
    """openpi's / LeRobot's file: ``paligemma_with_expert.*`` (here with LeRobot's leading ``model.``), the
    language embedding stored only as the tied ``lm_head``."""
    _, policy, _, _ = imported
    state = safetensors.torch.load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    hub = {}
    for key, value in state.items():
        key = key.replace("paligemma.model.language_model.model.", "paligemma.model.language_model.")
        if key.endswith("language_model.embed_tokens.weight"):
            key = "paligemma_with_expert.paligemma.lm_head.weight"
        hub[f"model.{key}"] = value
    hub["normalize_inputs.buffer_observation_state.mean"] = torch.zeros(6)  # older LeRobot saves carry these
    assert any(
        k.startswith("model.paligemma_with_expert.paligemma.model.language_model.layers.") for k in hub
    )
    (tmp_path / "hub").mkdir()
    safetensors.torch.save_file(hub, str(tmp_path / "hub" / "model.safetensors"))
    spec = one_camera_spec(state_dim=4, action_dim=3)
    with pytest.raises(ValueError, match="not a multiple of head_dim 256"):
        import_policy(str(tmp_path / "hub"), PI0, spec, None)  # pi0's head size does not fit the tiny model
    (tmp_path / "hub" / "config.json").write_text((tmp_path / "ckpt" / "config.json").read_text())
    again, _, report = import_policy(
        str(tmp_path / "hub"), PI0, spec, None, tokenizer=str(tmp_path / "tokenizer.json")
    )
    assert "trunk.decoder.embed.weight" in report.loaded.values()
    assert "normalisation buffers" in report.skipped["normalize_inputs.buffer_observation_state.mean"]
    for (name, a), (_, b) in zip(policy.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_prompt_is_tokenized_the_openpi_way(imported, tmp_path):
    """pi0: ``<bos>`` + the cleaned task + a separately encoded newline (openpi's PaligemmaTokenizer)."""
    from tokenizers import Tokenizer

    _, policy, _, _ = imported
    tok = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    obs = _obs()
    obs.set(keys.TASK, NonTensorStack("pick_up the cube", "open the drawer please"))

    def enc(text):
        return tok.encode(text, add_special_tokens=False).ids

    bos = tok.token_to_id("<bos>")
    assert policy.trunk.prompt_ids(obs) == [
        [bos, *enc("pick up the cube"), *enc("\n")],
        [bos, *enc("open the drawer please"), *enc("\n")],
    ]

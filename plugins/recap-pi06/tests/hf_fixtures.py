"""Tiny random transformers reference models (PaliGemma, SigLIP, PI0), built from configs and saved with
``save_pretrained``: checkpoints in the hub's layout, written by code we did not write."""

from __future__ import annotations

from pathlib import Path

import torch

from recap.data.spec import CameraSpec, RobotSpec

IMAGE = 16
VISION = dict(
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    patch_size=8,
    image_size=IMAGE,
)
TEXT = dict(
    model_type="gemma",
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=1,
    head_dim=8,
    vocab_size=300,
)
IMAGE_TOKEN = 299


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial values everywhere (norm weights and biases start at zero otherwise)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def paligemma(directory: Path, seed: int = 0):
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

    vision = dict(model_type="siglip_vision_model", **VISION)
    config = PaliGemmaConfig(
        vision_config=vision, text_config=TEXT, projection_dim=TEXT["hidden_size"], image_token_id=IMAGE_TOKEN
    )
    model = PaliGemmaForConditionalGeneration(config).eval()
    _randomise(model, seed)
    model.save_pretrained(directory)
    return model


def siglip(directory: Path, seed: int = 0):
    from transformers import SiglipVisionConfig, SiglipVisionModel

    model = SiglipVisionModel(SiglipVisionConfig(**VISION)).eval()
    _randomise(model, seed)
    model.save_pretrained(directory)
    return model


def pi0(directory: Path, seed: int = 0, *, chunk: int = 4, pad_dim: int = 6):
    from transformers import PI0Config, PI0ForConditionalGeneration

    vlm = dict(
        model_type="paligemma",
        vision_config=dict(model_type="siglip_vision_model", **VISION),
        text_config=TEXT,
        projection_dim=TEXT["hidden_size"],
        image_token_id=IMAGE_TOKEN,
    )
    dit = dict(
        model_type="gemma",
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=8,
    )
    config = PI0Config(
        vlm_config=vlm, dit_config=dit, chunk_size=chunk, max_state_dim=pad_dim, max_action_dim=pad_dim
    )
    model = PI0ForConditionalGeneration(config).eval()
    _randomise(model, seed)
    model.save_pretrained(directory)
    return model


def one_camera_spec(state_dim: int = 4, action_dim: int = 3) -> RobotSpec:
    return RobotSpec(
        cameras=(CameraSpec("cam_high", IMAGE, IMAGE),),
        state_dim=state_dim,
        action_dim=action_dim,
        env_state_dim=0,
        joint_names=(),
    )


def tiny_tokenizer(path: Path) -> Path:
    """A byte-level BPE with Gemma's ``<pad>``, ``<eos>``, ``<bos>`` first, small enough that recap's four special
    tokens still fit below the fixtures' image token (ids < 299)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=280,
        special_tokens=["<pad>", "<eos>", "<bos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(
        ["pick up the cube\n", "open the drawer\n", "Task: fold, State: 1 2;\nAction: "] * 10, trainer
    )
    tok.save(str(path))
    return path


def tiny_sentencepiece(path: Path) -> Path:
    """A SentencePiece model trained offline on a few lines, with Gemma's special ids (pad 0, eos 1, bos 2)."""
    import io

    import sentencepiece

    lines = ["Task: pick up the cube, State: 1 2 3;", "Action: open the drawer and fold the towel"] * 20
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=60,
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        pad_piece="<pad>",
        eos_piece="<eos>",
        bos_piece="<bos>",
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())
    return path

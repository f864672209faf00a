"""The text tokenizer: byte-level BPE (HF ``tokenizers``, offline) fitted on the dataset's prompts and sub-task
strings, or a checkpoint's own tokenizer loaded from a local ``tokenizer.json`` or SentencePiece ``.model``.
Before fitting it is the bare byte alphabet, so any text encodes; fitting only shortens sequences."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from recap.errors import ConfigError
from recap_pi06.serialized import SerializedState

PAD, EOS, SUBTASK_START, VALUE = "[PAD]", "[EOS]", "[SUB]", "[VALUE]"
SPECIALS = (PAD, EOS, SUBTASK_START, VALUE)
#: The indicator texts of the paper (section V-B).
POSITIVE_TEXT, NEGATIVE_TEXT = "Advantage: positive", "Advantage: negative"
#: The begin-of-sequence piece of Gemma / PaliGemma tokenizers, put in front of the prompt when present.
BOS = "<bos>"
#: Marks a stored tokenizer that came from a file (a checkpoint's own): it travels in the state dict, so the file
#: is not needed to load it again, and ``fit`` keeps it.
FIXED = b"recap-fixed-tokenizer\n"


def train_byte_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE with the special tokens first (ids 0..3) and at most ``vocab_size`` entries."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return tok


class HFText:
    """A ``tokenizers`` tokenizer; recap's special tokens are added when missing (after its own vocabulary)."""

    def __init__(self, tok: Tokenizer) -> None:
        tok.add_special_tokens([s for s in SPECIALS if tok.token_to_id(s) is None])
        self.tok = tok

    def size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def token_id(self, piece: str) -> int | None:
        return self.tok.token_to_id(piece)

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)

    def serialize(self) -> bytes:
        return self.tok.to_str().encode("utf-8")


class SentencePieceText:
    """A SentencePiece model (Gemma's ``tokenizer.model``); recap's special tokens take the ids after its pieces."""

    def __init__(self, proto: bytes) -> None:
        try:
            import sentencepiece
        except ImportError:
            raise ConfigError(
                "reading a SentencePiece tokenizer needs the sentencepiece package: "
                "pip install 'recap-pi06[weights]' (or use the checkpoint's tokenizer.json)"
            ) from None

        self.proto = proto
        self.sp = sentencepiece.SentencePieceProcessor(model_proto=proto)
        base = self.sp.get_piece_size()
        self.specials = {s: base + i for i, s in enumerate(SPECIALS)}

    def size(self) -> int:
        return self.sp.get_piece_size() + len(self.specials)

    def token_id(self, piece: str) -> int | None:
        if piece in self.specials:
            return self.specials[piece]
        i = self.sp.piece_to_id(piece)
        return None if i == self.sp.unk_id() and piece != self.sp.id_to_piece(i) else i

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts)

    def decode(self, ids: list[int]) -> str:
        base = self.sp.get_piece_size()
        return self.sp.decode([i for i in ids if i < base and not self.sp.is_control(i)])

    def serialize(self) -> bytes:
        return self.proto


def parse_tokenizer(data: bytes) -> HFText | SentencePieceText:
    """A serialised tokenizer: ``tokenizers`` JSON (starts with ``{``) or a SentencePiece model proto."""
    if data[:1] == b"{":
        return HFText(Tokenizer.from_str(data.decode("utf-8")))
    return SentencePieceText(data)


def read_tokenizer_file(path: str) -> HFText | SentencePieceText:
    """A checkpoint's tokenizer: a ``tokenizer.json`` or a SentencePiece ``.model`` file."""
    try:
        return parse_tokenizer(Path(path).read_bytes())
    except Exception as exc:
        raise ConfigError(
            f"text_tokenizer_path {path!r} is neither a readable tokenizers JSON file nor a SentencePiece model: "
            f"{exc}"
        ) from None


class TextTokenizer(SerializedState):
    """Text <-> ids in ``[0, vocab_size)``; the tokenizer's bytes are the serialised state (behind ``FIXED`` for
    one read from a file, which loading a state dict restores without the file)."""

    def __init__(self, vocab_size: int, path: str = "") -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.from_file = bool(path)
        backend = read_tokenizer_file(path) if path else HFText(train_byte_bpe([], vocab_size))
        self._use(backend)
        self._store((FIXED if self.from_file else b"") + backend.serialize())

    def _use(self, backend: HFText | SentencePieceText) -> None:
        size = backend.size()
        if size > self.vocab_size:
            raise ConfigError(
                f"the text tokenizer has {size} entries but the model's text vocabulary is {self.vocab_size}; "
                "raise text_vocab_size in the config"
            )
        ids = [backend.token_id(s) for s in SPECIALS]
        if any(i is None for i in ids):
            raise ConfigError(f"the text tokenizer lacks the special tokens {SPECIALS}")
        self.backend = backend
        self._memo: dict[str, list[int]] = {}  # prompts and sub-tasks repeat across batches
        self.pad_id, self.eos_id, self.subtask_id, self.value_id = ids
        self.bos_id = backend.token_id(BOS)

    def _parse(self, data: bytes) -> None:
        fixed = data.startswith(FIXED)
        self._use(parse_tokenizer(data.removeprefix(FIXED)))
        self.from_file = self.from_file or fixed

    def size(self) -> int:
        """Entries in use (the fitted or loaded vocabulary with recap's special tokens)."""
        return self.backend.size()

    def fit(self, texts: Iterable[str]) -> None:
        """Refit the BPE on ``texts`` (a file-loaded tokenizer is kept as it is)."""
        if self.from_file:
            return
        corpus = [t for t in texts if t] + [POSITIVE_TEXT, NEGATIVE_TEXT]
        backend = HFText(train_byte_bpe(corpus, self.vocab_size))
        self._use(backend)
        self._store(backend.serialize())

    def encode(self, texts: list[str]) -> list[list[int]]:
        new = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if new:
            if len(self._memo) > 100_000:
                self._memo.clear()
            for text, ids in zip(new, self.backend.encode(new), strict=True):
                self._memo[text] = list(ids)
        return [list(self._memo[t]) for t in texts]

    def decode(self, ids: list[int]) -> str:
        return self.backend.decode([i for i in ids if 0 <= i < self.vocab_size])

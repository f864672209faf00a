"""The text tokenizer: byte-level BPE (HF ``tokenizers``, offline) fitted on the dataset's prompts and sub-task
strings, or loaded from a local ``tokenizer.json``. Before fitting it is the bare byte alphabet, so any text
encodes; fitting only shortens sequences."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from recap.errors import ConfigError
from recap_pi06.serialized import SerializedState

PAD, EOS, SUBTASK_START, VALUE = "[PAD]", "[EOS]", "[SUB]", "[VALUE]"
SPECIALS = (PAD, EOS, SUBTASK_START, VALUE)
#: The indicator texts of the paper (section V-B).
POSITIVE_TEXT, NEGATIVE_TEXT = "Advantage: positive", "Advantage: negative"


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


class TextTokenizer(SerializedState):
    """Text <-> ids in ``[0, vocab_size)``; the HF tokenizer JSON is the serialised state."""

    def __init__(self, vocab_size: int, path: str = "") -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.from_file = bool(path)
        if path:
            try:
                tok = Tokenizer.from_file(path)
            except Exception as exc:
                raise ConfigError(
                    f"text_tokenizer_path {path!r} is not a readable tokenizers JSON file: {exc}"
                ) from None
            tok.add_special_tokens([s for s in SPECIALS if tok.token_to_id(s) is None])
        else:
            tok = train_byte_bpe([], vocab_size)
        self._use(tok)
        self._store(tok.to_str().encode("utf-8"))

    def _use(self, tok: Tokenizer) -> None:
        size = tok.get_vocab_size(with_added_tokens=True)
        if size > self.vocab_size:
            raise ConfigError(
                f"the text tokenizer has {size} entries but the model's text vocabulary is {self.vocab_size}; "
                "raise text_vocab_size in the config"
            )
        ids = [tok.token_to_id(s) for s in SPECIALS]
        if any(i is None for i in ids):
            raise ConfigError(f"the text tokenizer lacks the special tokens {SPECIALS}")
        self.tok = tok
        self._memo: dict[str, list[int]] = {}  # prompts and sub-tasks repeat across batches
        self.pad_id, self.eos_id, self.subtask_id, self.value_id = ids

    def _parse(self, data: bytes) -> None:
        self._use(Tokenizer.from_str(data.decode("utf-8")))

    def fit(self, texts: Iterable[str]) -> None:
        """Refit the BPE on ``texts`` (a file-loaded tokenizer is kept as it is)."""
        if self.from_file:
            return
        corpus = [t for t in texts if t] + [POSITIVE_TEXT, NEGATIVE_TEXT]
        tok = train_byte_bpe(corpus, self.vocab_size)
        self._use(tok)
        self._store(tok.to_str().encode("utf-8"))

    def encode(self, texts: list[str]) -> list[list[int]]:
        new = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if new:
            if len(self._memo) > 100_000:
                self._memo.clear()
            for text, enc in zip(new, self.tok.encode_batch(new, add_special_tokens=False), strict=True):
                self._memo[text] = enc.ids
        return [list(self._memo[t]) for t in texts]

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode([i for i in ids if 0 <= i < self.vocab_size], skip_special_tokens=True)

"""FAST action tokenizer (Pertsch et al. 2025), fitted on the dataset's normalised action chunks.

Encoding a chunk ``a`` ``[H, A]`` (normalised units):

1. DCT-II over time per action dimension, orthonormal: ``C = D a`` with
   ``D[k, n] = sqrt(2/H) * c_k * cos(pi * (2n + 1) * k / (2H))``, ``c_0 = 1/sqrt(2)``, ``c_k = 1`` otherwise;
2. scale and round: ``q = round(scale * C)``, clipped to the fitted integer range ``[vmin, vmax]``;
3. flatten low frequencies first: ``q[0, :], q[1, :], ...`` (all dimensions of a frequency together);
4. map each integer to one character and apply a byte-pair encoding trained on the dataset's chunks.

Decoding inverts the steps: ``a = D^T q / scale``. A malformed sequence (unknown ids, stray specials, too few or
too many coefficients) decodes to a defined result with a warning: bad ids are skipped, missing coefficients are
zero (so an empty sequence decodes to the all-zero chunk, i.e. the mean action) and extra ones are dropped.
"""

from __future__ import annotations

import json
import math
import warnings

import torch
from tokenizers import Tokenizer, models, trainers

from recap.errors import SchemaError
from recap_pi06.serialized import SerializedState

BOS, EOS = "<bos>", "<eos>"
_CHAR0 = 0x100  # integers map to characters from U+0100 on (no whitespace or control characters)


def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``D`` ``[n, n]`` (``D^T D = I``)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    t = torch.arange(n, dtype=torch.float64)[None, :]
    d = math.sqrt(2.0 / n) * torch.cos(math.pi * (2 * t + 1) * k / (2 * n))
    d[0] /= math.sqrt(2.0)
    return d.float()


def _train(strings: list[str], vmin: int, vmax: int, vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    alphabet = [chr(_CHAR0 + i) for i in range(vmax - vmin + 1)]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[BOS, EOS], initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(strings, trainer)
    return tok


class FastTokenizer(SerializedState):
    """Normalised action chunks ``[H, A]`` <-> FAST ids in ``[0, vocab_size)`` (``bos_id``, ``eos_id`` included)."""

    def __init__(self, chunk_size: int, action_dim: int, vocab_size: int, scale: float) -> None:
        super().__init__()
        self.chunk_size, self.action_dim, self.vocab_size, self.scale = (
            chunk_size,
            action_dim,
            vocab_size,
            scale,
        )
        self.register_buffer("dct", dct_matrix(chunk_size), persistent=False)
        half = (vocab_size - 3) // 2  # before fitting: a symmetric alphabet that fills the vocabulary
        self.fitted = False
        self._use(_train([], -half, half, vocab_size), -half, half, scale)
        self._store(self._serialise())

    # -- state ------------------------------------------------------------------------------------------------

    def _use(self, tok: Tokenizer, vmin: int, vmax: int, scale: float) -> None:
        self.tok, self.vmin, self.vmax, self.scale = tok, vmin, vmax, scale
        self.bos_id, self.eos_id = tok.token_to_id(BOS), tok.token_to_id(EOS)
        self._pieces = {i: tok.id_to_token(i) for i in range(tok.get_vocab_size())}

    def _serialise(self) -> bytes:
        meta = {"vmin": self.vmin, "vmax": self.vmax, "scale": self.scale, "chunk_size": self.chunk_size}
        meta |= {"action_dim": self.action_dim, "tokenizer": self.tok.to_str(), "fitted": self.fitted}
        return json.dumps(meta).encode("utf-8")

    def _parse(self, data: bytes) -> None:
        meta = json.loads(data.decode("utf-8"))
        if (meta["chunk_size"], meta["action_dim"]) != (self.chunk_size, self.action_dim):
            raise SchemaError(
                f"stored FAST tokenizer is for chunks [{meta['chunk_size']}, {meta['action_dim']}], this model "
                f"uses [{self.chunk_size}, {self.action_dim}]"
            )
        self._use(Tokenizer.from_str(meta["tokenizer"]), meta["vmin"], meta["vmax"], meta["scale"])
        self.fitted = meta.get("fitted", True)  # blobs written before the flag: never refit them

    # -- coefficients -------------------------------------------------------------------------------------------

    def quantize(self, chunks: torch.Tensor) -> torch.Tensor:
        """Normalised chunks ``[N, H, A]`` -> rounded scaled DCT coefficients ``[N, H * A]``, low frequencies
        first (not clipped)."""
        if chunks.shape[1:] != (self.chunk_size, self.action_dim):
            raise SchemaError(
                f"FAST expects chunks [N, {self.chunk_size}, {self.action_dim}], got {tuple(chunks.shape)}"
            )
        coeffs = torch.einsum("kt,nta->nka", self.dct.to(chunks.device), chunks.float())
        return torch.round(coeffs * self.scale).long().flatten(1)

    def fit(self, chunks: torch.Tensor) -> None:
        """Fit the integer range and the BPE merges on normalised chunks ``[N, H, A]``."""
        q = self.quantize(chunks)
        vmin, vmax = int(q.min()), int(q.max())
        capacity = self.vocab_size - 3  # two specials, and at least one merge
        if vmax - vmin + 1 > capacity:
            half = (capacity - 1) // 2
            warnings.warn(
                f"FAST coefficients span [{vmin}, {vmax}] at scale {self.scale}, more than the {capacity} symbols "
                f"fast_vocab_size={self.vocab_size} allows; clipping to [{-half}, {half}]. Raise fast_vocab_size "
                "or lower fast_scale to avoid it.",
                RuntimeWarning,
                stacklevel=2,
            )
            vmin, vmax = max(vmin, -half), min(vmax, half)
        strings = self._strings(q.clamp(vmin, vmax), vmin)
        self._use(_train(strings, vmin, vmax, self.vocab_size), vmin, vmax, self.scale)
        self.fitted = True
        self._store(self._serialise())

    @staticmethod
    def _strings(q: torch.Tensor, vmin: int) -> list[str]:
        return ["".join(chr(_CHAR0 + v - vmin) for v in row) for row in q.tolist()]

    # -- encode / decode ------------------------------------------------------------------------------------------

    def encode(self, chunks: torch.Tensor) -> list[list[int]]:
        """Normalised chunks ``[N, H, A]`` -> FAST ids per chunk (no BOS/EOS)."""
        q = self.quantize(chunks).clamp(self.vmin, self.vmax)
        return [e.ids for e in self.tok.encode_batch(self._strings(q, self.vmin), add_special_tokens=False)]

    def decode(self, ids: list[int]) -> torch.Tensor:
        """FAST ids -> a normalised chunk ``[H, A]``; see the module docstring for malformed sequences."""
        problems: list[str] = []
        text = []
        for i in ids:
            if i == self.eos_id:
                break
            piece = self._pieces.get(int(i))
            if piece is None or i == self.bos_id:
                problems.append(f"id {i} is not a FAST symbol")
                continue
            text.append(piece)
        values = [ord(c) - _CHAR0 + self.vmin for c in "".join(text)]
        n = self.chunk_size * self.action_dim
        if len(values) != n:
            problems.append(f"{len(values)} coefficients instead of {n}")
            values = (values + [0] * n)[:n]
        if problems:
            warnings.warn(
                "malformed FAST sequence (" + "; ".join(problems[:3]) + "): bad ids skipped, missing "
                "coefficients set to zero, extra ones dropped",
                RuntimeWarning,
                stacklevel=2,
            )
        q = torch.tensor(values, dtype=torch.float32).view(self.chunk_size, self.action_dim) / self.scale
        return self.dct.T.cpu() @ q

"""Token sequences with prefix-LM masking, and the inference context that grows them (with or without a KV cache).

Every token carries ``valid`` (False for padding and for a dropped indicator: such tokens are invisible to every
other token and do not advance positions) and ``ar`` (openpi's autoregressive flag). With ``block = cumsum(ar)``
a query may attend a key iff the key is valid and ``block[key] <= block[query]``: the prefix (images, env,
prompt, state: ``ar = 0``) attends bidirectionally, generated tokens (sub-task, indicator, FAST: ``ar = 1``)
causally, and nothing earlier sees anything later. Rotary positions count valid tokens only, so padding and
dropped tokens change nothing, exactly as if they were removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recap_pi06.backbone import Decoder, KVCache
from recap_pi06.gemma3 import valid_positions

#: segment codes (``Tokens.kind``)
IMAGE, ENV, PROMPT, STATE, SUBTASK, INDICATOR, FAST, VALUE = range(8)


@dataclass
class Tokens:
    """A batch of token rows: embeddings ``[B, L, D]``; ``valid``/``ar`` bool, ``kind`` and ``ids`` long
    ``[B, L]`` (``ids`` is the vocabulary id, -1 for images and env state)."""

    embeds: torch.Tensor
    valid: torch.Tensor
    ar: torch.Tensor
    kind: torch.Tensor
    ids: torch.Tensor

    @staticmethod
    def make(
        embeds: torch.Tensor, valid: torch.Tensor, ar: bool, kind: int, ids: torch.Tensor | None = None
    ) -> Tokens:
        fill = torch.full(valid.shape, kind, dtype=torch.long, device=valid.device)
        ids = torch.full(valid.shape, -1, dtype=torch.long, device=valid.device) if ids is None else ids
        return Tokens(embeds, valid, torch.full_like(valid, ar), fill, ids)

    @staticmethod
    def cat(parts: list[Tokens]) -> Tokens:
        return Tokens(*(torch.cat([getattr(p, f) for p in parts], dim=1) for f in _FIELDS))

    def repeat(self, times: int) -> Tokens:
        return Tokens(*(getattr(self, f).repeat(times, *[1] * (getattr(self, f).ndim - 1)) for f in _FIELDS))

    def span(self, kind: int) -> tuple[int, int]:
        """Column range ``[start, stop)`` of a segment (segments are column-aligned across the batch)."""
        cols = (self.kind[0] == kind).nonzero().flatten()
        return (int(cols[0]), int(cols[-1]) + 1) if len(cols) else (0, 0)

    @property
    def width(self) -> int:
        return self.valid.shape[1]


_FIELDS = ("embeds", "valid", "ar", "kind", "ids")


def attention_mask(
    q_valid: torch.Tensor, q_block: torch.Tensor, k_valid: torch.Tensor, k_block: torch.Tensor
):
    """bool ``[B, Lq, Lk]``: key valid and ``block[key] <= block[query]`` (see the module docstring)."""
    return k_valid[:, None, :] & (k_block[:, None, :] <= q_block[:, :, None])


def run_decoder(decoder: Decoder, tokens: Tokens) -> tuple[torch.Tensor, KVCache]:
    """One uncached forward over a whole sequence (training, and the no-cache inference path)."""
    block = tokens.ar.long().cumsum(1)
    positions = (tokens.valid.long().cumsum(1) - 1).clamp_min(0)
    mask = attention_mask(tokens.valid, block, tokens.valid, block)
    return decoder(tokens.embeds, positions, mask)


class Context:
    """The backbone context during inference: tokens so far and, with ``use_cache``, their keys/values.

    ``append`` returns the hidden states of the new tokens. Without a cache it re-runs the decoder over the whole
    sequence (the baseline the KV cache is measured against); with one it runs only the new tokens against
    the cached keys/values. Both give the same numbers up to float rounding.
    """

    def __init__(self, decoder: Decoder, use_cache: bool) -> None:
        self.decoder, self.use_cache = decoder, use_cache
        self.tokens: Tokens | None = None
        self.cache: KVCache | None = None

    def append(self, part: Tokens) -> torch.Tensor:
        if not self.use_cache:
            self.tokens = part if self.tokens is None else Tokens.cat([self.tokens, part])
            hidden, _ = run_decoder(self.decoder, self.tokens)
            return hidden[:, -part.width :]
        if self.tokens is None:
            hidden, self.cache = run_decoder(self.decoder, part)
            self.tokens = part
            return hidden
        old = self.tokens
        last_block = old.ar.long().sum(1, keepdim=True)
        block = last_block + part.ar.long().cumsum(1)
        positions = old.valid.long().sum(1, keepdim=True) + (part.valid.long().cumsum(1) - 1).clamp_min(0)
        mask = attention_mask(
            part.valid,
            block,
            torch.cat([old.valid, part.valid], 1),
            torch.cat([old.ar.long().cumsum(1), block], 1),
        )
        key_positions = valid_positions(torch.cat([old.valid, part.valid], 1))  # sliding windows need them
        hidden, self.cache = self.decoder(
            part.embeds, positions, mask, past=self.cache, key_positions=key_positions
        )
        self.tokens = Tokens.cat([old, part])
        return hidden

    def repeat(self, times: int) -> None:
        """Stack the batch ``times`` times (classifier-free guidance runs both branches in one batch)."""
        assert self.tokens is not None
        self.tokens = self.tokens.repeat(times)
        if self.cache is not None:
            self.cache = [(k.repeat(times, 1, 1, 1), v.repeat(times, 1, 1, 1)) for k, v in self.cache]

    def keys_values(self) -> tuple[KVCache, torch.Tensor, torch.Tensor]:
        """Per-layer keys/values of the whole context, their validity ``[B, L]`` and the next position ``[B]``."""
        assert self.tokens is not None
        cache = self.cache
        if cache is None:
            _, cache = run_decoder(self.decoder, self.tokens)
        return cache, self.tokens.valid, self.tokens.valid.long().sum(1)

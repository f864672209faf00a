"""FAST tokenizer: round trip on held-out chunks, compression, malformed sequences, DCT orthonormality."""

import math

import pytest
import torch
from pi06_testdata import smooth_chunks
from recap_pi06.fast import FastTokenizer, dct_matrix


def test_dct_is_orthonormal():
    d = dct_matrix(50)
    torch.testing.assert_close(d @ d.T, torch.eye(50), atol=1e-5, rtol=0)


def test_round_trip_error_is_bounded_at_default_scale():
    fast = FastTokenizer(chunk_size=50, action_dim=14, vocab_size=1024, scale=10.0)
    fast.fit(smooth_chunks(256, 50, 14, seed=0))
    held_out = smooth_chunks(64, 50, 14, seed=1)
    ids = fast.encode(held_out)
    decoded = torch.stack([fast.decode(r) for r in ids])
    rmse = (decoded - held_out).square().mean().sqrt()
    # rounding error of an orthonormal transform: uniform(-0.5, 0.5) / scale per coefficient -> rmse 0.029
    assert rmse < 0.5 / 10.0 / math.sqrt(3) * 1.1
    assert (decoded - held_out).abs().max() < 0.2
    tokens = sum(len(r) for r in ids) / len(ids)
    assert tokens < 50 * 14 / 4, f"FAST should compress smooth chunks well, got {tokens:.0f} tokens per chunk"


def test_unfitted_tokenizer_still_round_trips():
    fast = FastTokenizer(chunk_size=10, action_dim=3, vocab_size=160, scale=10.0)
    chunks = smooth_chunks(4, 10, 3, seed=2) * 0.5
    decoded = torch.stack([fast.decode(r) for r in fast.encode(chunks)])
    assert (decoded - chunks).abs().max() < 0.2


def test_malformed_sequences_decode_to_a_safe_result():
    fast = FastTokenizer(chunk_size=10, action_dim=3, vocab_size=160, scale=10.0)
    chunks = smooth_chunks(8, 10, 3, seed=3)
    fast.fit(chunks)
    good = fast.encode(chunks[:1])[0]
    with pytest.warns(RuntimeWarning, match="malformed FAST"):
        empty = fast.decode([])
    assert torch.equal(empty, torch.zeros(10, 3))
    with pytest.warns(RuntimeWarning, match="not a FAST symbol"):
        skipped = fast.decode([fast.bos_id, 10_000, *good])
    torch.testing.assert_close(skipped, fast.decode(good))
    with pytest.warns(RuntimeWarning, match="coefficients instead of 30"):
        short = fast.decode(good[: len(good) // 2])
    assert short.shape == (10, 3) and torch.isfinite(short).all()
    with pytest.warns(RuntimeWarning, match="coefficients instead of 30"):
        long = fast.decode(good + good)
    torch.testing.assert_close(long, fast.decode(good))
    assert torch.equal(fast.decode([*good, fast.eos_id, 10_000]), fast.decode(good))


def test_clipping_warns_when_the_vocabulary_is_too_small():
    fast = FastTokenizer(chunk_size=10, action_dim=3, vocab_size=16, scale=100.0)
    with pytest.warns(RuntimeWarning, match="fast_vocab_size"):
        fast.fit(smooth_chunks(8, 10, 3, seed=4))

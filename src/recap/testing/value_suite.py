"""Conformance tests for ``ValueEstimator`` implementations. Subclass in a plugin's tests::

    class TestMyValue(ValueEstimatorConformance):
        @pytest.fixture
        def make_estimator(self):
            return lambda: MyValue(config, spec, stats)      # a fresh, seeded estimator per call

        @pytest.fixture
        def batch(self):
            return my_batch                                    # observations + ``mc_return`` in [-1, 0], B >= 8

Override ``checkpoint`` to return ``(config, spec, stats, registry)`` to also test ``save_value``/``load_value``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from safetensors.torch import load_file, save_file
from tensordict import TensorDict
from torch import nn

from recap.data import keys
from recap.errors import RecapError
from recap.protocols import ValueEstimator

_LABEL_KEYS = (keys.MC_RETURN, keys.ADVANTAGE, keys.INDICATOR)


def _obs_only(batch: TensorDict) -> TensorDict:
    return batch.exclude(*[k for k in _LABEL_KEYS if k in batch])


class ValueEstimatorConformance:
    """Every ValueEstimator must pass these (values in normalised return units [-1, 0])."""

    #: optimiser steps of the fit-a-batch test and the required error reduction
    fit_steps: int = 60
    fit_lr: float = 3e-3
    fit_improvement: float = 0.5

    @pytest.fixture
    def make_estimator(self) -> Callable[[], nn.Module]:
        raise NotImplementedError("override the `make_estimator` fixture: return a zero-argument constructor")

    @pytest.fixture
    def batch(self) -> TensorDict:
        raise NotImplementedError(
            "override the `batch` fixture: observations plus mc_return, batch size >= 8"
        )

    @pytest.fixture
    def checkpoint(self):
        return None

    def test_implements_protocol(self, make_estimator):
        est = make_estimator()
        assert isinstance(est, nn.Module), "value estimators are torch.nn.Module subclasses"
        assert isinstance(est, ValueEstimator), "needs loss(batch) and predict(obs)"

    def test_predict_shapes_and_range(self, make_estimator, batch):
        out = make_estimator().eval().predict(_obs_only(batch))
        n = batch.batch_size[0]
        assert isinstance(out, TensorDict) and out.batch_size == torch.Size([n])
        value = out["value"]
        assert value.shape == (n,) and value.is_floating_point() and torch.isfinite(value).all()
        assert (value >= -1 - 1e-5).all() and (value <= 1e-5).all(), (
            "values are normalised returns in [-1, 0]"
        )
        assert not value.requires_grad, "predict must not build an autograd graph"
        if "logits" in out:
            assert (
                out["logits"].ndim == 2
                and out["logits"].shape[0] == n
                and torch.isfinite(out["logits"]).all()
            )

    def bin_centers(self, num_bins: int) -> torch.Tensor:
        """The value of each bin (Eq. 1): evenly spaced on [-1, 0], both ends included. Override for other bins."""
        return torch.tensor([-1.0 + b / (num_bins - 1) for b in range(num_bins)], dtype=torch.float64)

    def test_distributional_value_is_expected_bin_centre(self, make_estimator, batch):
        """``value`` is the mean of the predicted distribution over bins whose values this suite computes itself
        (not read from the estimator), so wrong bin centres, argmax decoding or a temperature all fail."""
        est = make_estimator().eval()
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():  # spread the logits so that the mean differs from the most likely bin
            for p in est.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g).to(p))
        out = est.predict(_obs_only(batch))
        if "logits" not in out:
            pytest.skip("not a distributional estimator (no logits)")
        logits = out["logits"].double()
        centers = self.bin_centers(logits.shape[1])
        weights = (logits - logits.max(-1, keepdim=True).values).exp()
        expected = (weights * centers).sum(-1) / weights.sum(-1)
        torch.testing.assert_close(out["value"].double(), expected, rtol=0, atol=1e-5)

    def test_rows_are_independent(self, make_estimator, batch):
        """Batched prediction equals frame-by-frame prediction (labelling relies on batching)."""
        est = make_estimator().eval()
        obs = _obs_only(batch)
        full = est.predict(obs)["value"]
        single = torch.cat([est.predict(obs[i : i + 1])["value"] for i in range(min(4, obs.batch_size[0]))])
        torch.testing.assert_close(single, full[: single.shape[0]], rtol=0, atol=1e-5)

    def test_loss_terms_and_gradients(self, make_estimator, batch):
        est = make_estimator().train()
        out = est.loss(batch)
        assert isinstance(out, TensorDict) and out.batch_size == torch.Size([])
        terms = [k for k in out.keys() if k.startswith("loss_")]  # noqa: SIM118 - iterating a TensorDict yields rows
        assert terms, f"loss must return loss_* terms, got {sorted(out.keys())}"
        total = sum(out[k] for k in terms)
        assert total.ndim == 0 and torch.isfinite(total)
        total.backward()
        grads = [p.grad for p in est.parameters() if p.requires_grad and p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads), "the loss does not reach any parameter"

    def test_loss_without_returns_is_refused(self, make_estimator, batch):
        with pytest.raises(RecapError, match=keys.MC_RETURN):
            make_estimator().loss(_obs_only(batch))

    def test_fits_a_fixed_batch(self, make_estimator, batch):
        torch.manual_seed(0)
        est = make_estimator()
        target = batch[keys.MC_RETURN].float()
        before = (est.eval().predict(_obs_only(batch))["value"] - target).abs().mean()
        opt = torch.optim.AdamW(est.parameters(), lr=self.fit_lr, weight_decay=0.0)
        est.train()
        for _ in range(self.fit_steps):
            out = est.loss(batch)
            opt.zero_grad()
            sum(out[k] for k in out.keys() if k.startswith("loss_")).backward()  # noqa: SIM118
            opt.step()
        after = (est.eval().predict(_obs_only(batch))["value"] - target).abs().mean()
        assert after < self.fit_improvement * before, f"value error {before:.4f} -> {after:.4f} after fitting"

    def test_weights_roundtrip_through_safetensors(self, make_estimator, batch, tmp_path):
        a = make_estimator()
        with torch.no_grad():
            for p in a.parameters():
                p.add_(0.01 * torch.randn_like(p))  # differ from a fresh init
        save_file(
            {k: v.contiguous().clone() for k, v in a.state_dict().items()}, str(tmp_path / "w.safetensors")
        )
        b = make_estimator()
        b.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
        obs = _obs_only(batch)
        torch.testing.assert_close(a.eval().predict(obs)["value"], b.eval().predict(obs)["value"])

    def test_checkpoint_roundtrip(self, make_estimator, batch, checkpoint, tmp_path):
        if checkpoint is None:
            pytest.skip("override the `checkpoint` fixture to test save_value/load_value")
        from recap.train.checkpoint import load_value, save_value

        config, spec, stats, registry = checkpoint
        est = make_estimator().eval()
        save_value(tmp_path / "ckpt", est, config, spec, stats, registry)
        loaded = load_value(tmp_path / "ckpt", registry)
        obs = _obs_only(batch)
        torch.testing.assert_close(loaded.predict(obs)["value"], est.predict(obs)["value"])


# --- synthetic episodes whose true value is known ---------------------------------------------------------------

KNOWN_VALUE_DURATIONS: tuple[int, ...] = (20, 30, 40, 60)


def known_value_episode(
    duration: int, fails: bool, *, camera: str = "cam_high", image_hw: tuple[int, int] = (8, 8), seed: int = 0
) -> TensorDict:
    """One episode (store.add's ``steps``) whose length ``duration`` and outcome are visible in every observation.

    ``observation.state`` = [duration / 60, t / duration, fails, 0...] (14 dims, the ALOHA layout size), so the
    true value is known: success -> R_t = -(duration - 1 - t) / L, failure -> -1 (C_fail = L, the task's longest
    episode). The camera shows the phase as brightness plus noise, so image encoders run on real pixels.
    """
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(duration, dtype=torch.float32)
    state = torch.zeros(duration, 14)
    state[:, 0] = duration / 60.0
    state[:, 1] = t / duration
    state[:, 2] = float(fails)
    frames = (t / duration * 200)[:, None, None, None] + 40 * torch.rand(duration, *image_hw, 3, generator=g)
    return TensorDict(
        {
            keys.image_key(camera): frames.clamp(0, 255).to(torch.uint8),
            keys.STATE: state,
            keys.ACTION: state + 0.01 * torch.randn(duration, 14, generator=g),
            keys.IS_INTERVENTION: torch.zeros(duration, dtype=torch.bool),
        },
        batch_size=[duration],
    )


def known_value_dataset(episodes_per_kind: int = 3, seed: int = 0) -> list[tuple[TensorDict, bool]]:
    """Episodes of every duration in KNOWN_VALUE_DURATIONS; every third one of each kind fails."""
    out = []
    for d in KNOWN_VALUE_DURATIONS:
        for i in range(episodes_per_kind):
            fails = i % 3 == 2
            out.append((known_value_episode(d, fails, seed=seed + 1000 * d + i), not fails))
    return out

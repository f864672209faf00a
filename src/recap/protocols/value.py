"""The ValueEstimator protocol: a critic over observations, trained by any generic trainer."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tensordict import TensorDict


@runtime_checkable
class ValueEstimator(Protocol):
    """Predicts the value of the behaviour policy, V(o_t, l), in normalised return units [-1, 0].

    Estimators are ``torch.nn.Module`` subclasses trained by ``recap.train`` through ``loss``.
    """

    def loss(self, batch: TensorDict) -> TensorDict:
        """Training loss on a batch holding observations and ``mc_return``.

        Returns a TensorDict (batch size ``[]``) with ``loss_*`` terms (summed to train) and metric keys.
        """
        ...

    def predict(self, obs: TensorDict) -> TensorDict:
        """Batch size ``[B]`` TensorDict with ``value`` ``[B]`` and, for distributional estimators,
        ``logits`` ``[B, bins]`` over bins whose values are evenly spaced on [-1, 0], both ends included (Eq. 1)."""
        ...

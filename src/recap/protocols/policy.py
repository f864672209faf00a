"""The Policy protocol: every extractor trains a policy through these two methods only."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs
import torch
from tensordict import TensorDict


@runtime_checkable
class Policy(Protocol):
    """A chunked action policy with an optional advantage-indicator input (docs/architecture.md).

    Policies are ``torch.nn.Module`` subclasses; they own their input/action normalisation (statistics are
    given at construction), so callers pass raw observations and get raw actions back.

    Attributes:
        chunk_size: actions per chunk (H).
        action_dim: size of one action.
        input_cameras: the cameras whose frames the policy reads (names from the robot spec, ``()`` for none).
            Training loads only these frames, and evaluation renders these cameras and no others, so a
            policy must list every camera its ``sample_actions`` looks at.
    """

    chunk_size: int
    action_dim: int
    input_cameras: tuple[str, ...]

    def per_sample_loss(
        self,
        batch: TensorDict,
        indicator: torch.Tensor | None,
        *,
        flow_draws: TensorDict | None = None,
    ) -> TensorDict:
        """Per-sample loss terms, each of shape ``[B]`` (the likelihood surrogates every extractor uses).

        Args:
            batch: a training batch (see ``recap.data.keys``) with ``action`` and ``action_is_pad``.
            indicator: bool ``[B]`` improvement indicator fed as input, or ``None`` to drop it for the whole
                batch. Per-sample dropout is expressed by the extractor splitting or masking; policies that
                support it also accept ``batch["indicator_dropped"]`` (bool ``[B]``) to drop per sample.
            flow_draws: optional ``TensorDict`` with ``noise`` ``[B, H, A]`` and ``time`` ``[B]`` so that two
                calls (e.g. a PPO reference and the current policy) use the same draws.

        Returns:
            A TensorDict with batch size ``[B]`` holding ``flow`` (flow-matching MSE per sample, averaged over
            valid chunk steps and action dims) and, where the policy has discrete outputs, ``fast`` and
            ``subtask`` (mean token negative log-likelihood per sample).
        """
        ...

    def sample_actions(
        self,
        obs: TensorDict,
        indicator: torch.Tensor | bool | None = True,
        guidance: float = 1.0,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample an action chunk ``[B, H, A]`` in raw action units.

        ``indicator=None`` samples the unconditional policy; ``True``/``False`` (or a bool tensor ``[B]``)
        conditions on I. With ``guidance`` beta != 1, classifier-free guidance combines the conditional and
        unconditional velocities: ``v = v_u + beta * (v_c - v_u)`` (beta = 0 is unconditional).
        """
        ...


@attrs.frozen
class Inpainting:
    """Real-time chunking's target for the next chunk (Black et al., 2025, guided inpainting of the flow).

    Index i of the new chunk is the action for i control ticks after its observation. ``target[:, i]`` is the
    previous chunk's action for that tick, in raw action units, valid for ``i < guided``:

    - ``i < frozen``: those ticks run from the previous chunk while this one is computed (weight 1);
    - ``frozen <= i < guided``: softly guided towards the previous chunk, with exponentially decaying weights;
    - ``i >= guided``: free (the previous chunk has no action for those ticks).

    With execution horizon s and delay d: ``frozen = d``, ``guided = H - s``; RTC needs ``d <= H - s``.
    ``max_guidance`` clips the guidance weight (the paper's beta, 5 there).
    """

    target: torch.Tensor
    frozen: int
    guided: int
    max_guidance: float = 5.0

    def __attrs_post_init__(self) -> None:
        horizon = self.target.shape[-2]
        if not 0 <= self.frozen <= self.guided <= horizon:
            raise ValueError(
                f"inpainting needs 0 <= frozen ({self.frozen}) <= guided ({self.guided}) <= chunk length "
                f"({horizon}); the inference delay d must not exceed H - s"
            )
        if self.max_guidance < 0:
            raise ValueError(f"max_guidance must be >= 0, got {self.max_guidance}")


@runtime_checkable
class FlowPolicy(Policy, Protocol):
    """Optional protocol of flow-matching policies: sampling from a given initial noise, and RTC inpainting.

    A policy without ``sample_flow`` still runs everywhere; real-time chunking then falls back to naive
    asynchronous execution (with a logged notice) and a request's initial noise is refused.
    """

    def sample_flow(
        self,
        obs: TensorDict,
        indicator: torch.Tensor | bool | None = True,
        guidance: float = 1.0,
        *,
        noise: torch.Tensor | None = None,
        inpainting: Inpainting | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Like ``sample_actions``; ``noise`` ``[B, H, A]`` is the flow's start at tau = 1 in the policy's
        normalised action units (None: the policy draws it), ``inpainting`` guides the chunk (see above)."""
        ...

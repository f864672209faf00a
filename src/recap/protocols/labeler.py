"""The AdvantageLabeler protocol and the value types it exchanges."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs
import torch


@attrs.frozen
class EpisodeToLabel:
    """What a labeler needs of one episode.

    Attributes:
        episode_id: the store's id for the episode.
        task: task prompt (thresholds and normalisation are per task).
        success: the episode's success label (``None`` = unlabelled, refused by labelers).
        values: predicted normalised values V(o_t) for every step, float ``[T]``.
        is_intervention: bool ``[T]``, steps recorded under operator correction.
    """

    episode_id: str
    task: str
    success: bool | None
    values: torch.Tensor
    is_intervention: torch.Tensor


@attrs.frozen
class LabelResult:
    """Per-episode labels (each a dict of ``[T]`` tensors: ``mc_return``, ``advantage``, ``indicator``)
    and the per-task thresholds eps_l that were used."""

    episodes: Mapping[str, Mapping[str, torch.Tensor]]
    thresholds: Mapping[str, float]
    positive_fraction: Mapping[str, float]


@runtime_checkable
class AdvantageLabeler(Protocol):
    """Turns values and success labels into advantages and improvement indicators (docs/method.md)."""

    def label(self, episodes: Sequence[EpisodeToLabel], max_length: Mapping[str, int]) -> LabelResult:
        """Label every step of every episode.

        Args:
            episodes: the episodes, each with its values.
            max_length: per task, the episode length used to normalise returns into (-1, 0).
        """
        ...

"""The value target joined to training batches: each step's normalised Monte-Carlo return R_t."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from recap import rl
from recap.data import keys
from recap.data.schema import EpisodeMeta


def mc_return_columns(
    episodes: Sequence[EpisodeMeta], max_length: Mapping[str, int]
) -> dict[str, dict[str, torch.Tensor]] | None:
    """``{episode_id: {"mc_return": [T]}}`` for ``WindowSampler(label_columns=...)``; None when an episode has no
    success label (its return is unknown), so batches then carry no ``mc_return``.

    ``max_length`` normalises returns per task: the store's ``max_length_per_task()``, as labelling uses.
    """
    if any(m.success is None for m in episodes):
        return None
    return {
        m.episode_id: {
            keys.MC_RETURN: rl.normalized_mc_returns(
                m.length, bool(m.success), max(max_length.get(m.task, 0), m.length)
            )
        }
        for m in episodes
    }

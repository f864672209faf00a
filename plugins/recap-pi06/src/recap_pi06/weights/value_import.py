"""A ``pi06-value`` network from public checkpoints: a Gemma 3 language model (text only, e.g. Gemma 3 270M, or a
whole Gemma 3 VLM) and, beside a text-only one, a SigLIP tower (``SiglipVisionModel``).

The decoder (embedding included) and the vision tower come from the checkpoints; the Gemma 3 projector comes
from a VLM, or starts fresh next to a separate tower; the value head, the statistics and the tokenizer's new
rows are recap's own (the import report names each)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap_pi06.config import Pi06ValueConfig
from recap_pi06.value import Pi06ValueNetwork
from recap_pi06.weights.importer import ImportReport, import_model


def import_value_network(
    paths: Sequence[str],
    base: Pi06ValueConfig,
    spec: RobotSpec,
    num_bins: int,
    stats: NormStats | None,
    *,
    tokenizer: str = "",
    dtype: torch.dtype | None = None,
    progress: Callable[[Iterator, int], Iterator] | None = None,
    seed: int = 0,
) -> tuple[Pi06ValueNetwork, Pi06ValueConfig, ImportReport]:
    """Build a value network shaped like the checkpoints at ``paths`` (read as one) and load it."""
    return import_model(
        list(paths),
        base,
        lambda config: Pi06ValueNetwork(config, spec, num_bins, stats),
        tokenizer=tokenizer,
        dtype=dtype,
        progress=progress,
        seed=seed,
    )

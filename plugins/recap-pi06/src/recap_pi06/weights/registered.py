"""The ``pi06`` weights importer that ``recap weights import`` calls (registry kind ``weights_importer``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import attrs
import torch

from recap.config import WeightImporterConfig
from recap.errors import ConfigError
from recap.protocols import DeploymentSettings, WeightImportRequest
from recap.protocols.weights import Progress
from recap_pi06.config import PI0, PI05, POLICY_PRESETS
from recap_pi06.weights.gemma3 import is_gemma3
from recap_pi06.weights.importer import import_policy
from recap_pi06.weights.norm_stats import find_norm_stats, read_openpi_norm_stats
from recap_pi06.weights.reader import CheckpointFiles

#: the architecture presets an import can start from (the Gemma 3 ones, e.g. ``pi06`` / ``pi06-896``, for a
#: Gemma 3 VLM)
IMPORT_PRESETS = {
    "pi0": PI0,
    "pi05": PI05,
    **{name: preset for name, preset in POLICY_PRESETS.items() if preset.vision.projector == "gemma3"},
}
C = TypeVar("C")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@attrs.frozen
class Pi06WeightImporterConfig(WeightImporterConfig):
    """``preset``: ``pi05`` (adaptive-norm expert, state as text, quantile normalisation), ``pi0`` (time mixed
    into the action tokens, state as one token, mean/std normalisation) or a Gemma 3 one (``pi06`` at 224 px,
    ``pi06-896``: a Gemma 3 VLM gives the backbone and the vision tower, the Gemma 3-style expert starts fresh);
    ``""`` picks ``pi06`` for a Gemma 3 checkpoint, ``pi0`` for one with a ``state_proj`` and ``pi05`` otherwise.
    Shapes come from the checkpoint either way."""


class Pi06WeightImporter:
    """PaliGemma / SigLIP / pi0 / pi0.5 checkpoints -> a ``pi06`` policy checkpoint (see ``docs/pretrained.md``)."""

    def __init__(self, config: Pi06WeightImporterConfig) -> None:
        if config.preset and config.preset not in IMPORT_PRESETS:
            raise ConfigError(
                f"unknown import preset {config.preset!r}; pi06 imports start from {sorted(IMPORT_PRESETS)}"
            )
        self.preset = config.preset

    def import_weights(self, request: WeightImportRequest, progress: Progress) -> list[str]:
        dtype, bar = import_options(request, progress)
        lines = []
        stats = request.stats
        stats_file = Path(request.norm_stats) if request.norm_stats else find_norm_stats(request.source)
        if stats_file is not None:
            stats = read_openpi_norm_stats(stats_file, request.spec)
            lines.append(f"statistics: {stats_file}")
        elif stats is None:
            lines.append("statistics: none (identity normalisation until `recap train-policy` sees data)")

        name = self.preset or _detect_preset(request.source)
        lines.append(f"preset: {name}")
        model, config, report = import_policy(
            [str(p) for p in request.sources()],
            IMPORT_PRESETS[name],
            request.spec,
            stats,
            tokenizer=request.tokenizer,
            dtype=dtype,
            progress=bar,
        )
        config, line = keep_tokenizer(config)
        lines.append(line)
        from recap.train.checkpoint import save_policy  # the trainer's stack loads only when importing

        save_policy(request.out, model, config, request.spec, stats, DeploymentSettings())
        return lines + report.lines()


def import_options(
    request: WeightImportRequest, progress: Progress
) -> tuple[torch.dtype, Callable[[Iterator, int], Iterator]]:
    """The request's dtype (refusing an unknown one) and the tensor progress display of an import."""
    if request.dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {request.dtype!r}")

    def bar(stream: Iterator, total: int) -> Iterator:
        return progress(stream, total, "import")

    return DTYPES[request.dtype], bar


def keep_tokenizer(config: C) -> tuple[C, str]:
    """``config`` without the tokenizer's path, and the report line: the tokenizer travels in the weights
    (``trunk.text.blob``, marked as the checkpoint's own), so the import outlives the downloaded directory and
    fine-tuning never refits it."""
    if not config.text_tokenizer_path:
        return (
            config,
            "tokenizer: none found beside the checkpoint; the byte-level BPE is fitted on your data",
        )
    line = f"tokenizer: {config.text_tokenizer_path} (stored in the checkpoint)"
    return attrs.evolve(config, text_tokenizer_path=""), line


def _detect_preset(source: Path) -> str:
    """``pi06`` for a Gemma 3 checkpoint, ``pi0`` when the checkpoint feeds state through ``state_proj`` (pi0's
    continuous state token), ``pi05`` otherwise."""
    names = CheckpointFiles(source).names()
    if is_gemma3(names):
        return "pi06"
    return "pi0" if any(n.rsplit(".", 2)[-2:-1] == ["state_proj"] for n in names) else "pi05"

"""The ``pi06`` weights importer that ``recap weights import`` calls (registry kind ``weights_importer``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import torch

from recap.config import WeightImporterConfig
from recap.errors import ConfigError
from recap.protocols import DeploymentSettings, WeightImportRequest
from recap.protocols.weights import Progress
from recap_pi06.config import PI0, PI05
from recap_pi06.weights.importer import import_policy
from recap_pi06.weights.norm_stats import find_norm_stats, read_openpi_norm_stats
from recap_pi06.weights.reader import CheckpointFiles

#: the architecture presets an import can start from
IMPORT_PRESETS = {"pi0": PI0, "pi05": PI05}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@attrs.frozen
class Pi06WeightImporterConfig(WeightImporterConfig):
    """``preset``: ``pi05`` (adaptive-norm expert, state as text, quantile normalisation) or ``pi0`` (time mixed
    into the action tokens, state as one token, mean/std normalisation); ``""`` picks ``pi0`` for a checkpoint
    with a ``state_proj`` and ``pi05`` otherwise. Shapes come from the checkpoint either way."""


class Pi06WeightImporter:
    """PaliGemma / SigLIP / pi0 / pi0.5 checkpoints -> a ``pi06`` policy checkpoint (see ``docs/pretrained.md``)."""

    def __init__(self, config: Pi06WeightImporterConfig) -> None:
        if config.preset and config.preset not in IMPORT_PRESETS:
            raise ConfigError(
                f"unknown import preset {config.preset!r}; pi06 imports start from {sorted(IMPORT_PRESETS)}"
            )
        self.preset = config.preset

    def import_weights(self, request: WeightImportRequest, progress: Progress) -> list[str]:
        if request.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {request.dtype!r}")
        lines = []
        stats = request.stats
        stats_file = Path(request.norm_stats) if request.norm_stats else find_norm_stats(request.source)
        if stats_file is not None:
            stats = read_openpi_norm_stats(stats_file, request.spec)
            lines.append(f"statistics: {stats_file}")
        elif stats is None:
            lines.append("statistics: none (identity normalisation until `recap train-policy` sees data)")

        def bar(stream: Iterator, total: int) -> Iterator:
            return progress(stream, total, "import")

        name = self.preset or _detect_preset(request.source)
        lines.append(f"preset: {name}")
        model, config, report = import_policy(
            str(request.source),
            IMPORT_PRESETS[name],
            request.spec,
            stats,
            tokenizer=request.tokenizer,
            dtype=DTYPES[request.dtype],
            progress=bar,
        )
        if config.text_tokenizer_path:
            # the tokenizer travels in the weights (trunk.text.blob, marked as fixed), so the saved config needs
            # no path and the import outlives the downloaded directory
            lines.append(f"tokenizer: {config.text_tokenizer_path} (stored in the checkpoint)")
            config = attrs.evolve(config, text_tokenizer_path="")
        else:
            lines.append(
                "tokenizer: none found beside the checkpoint; the byte-level BPE is fitted on your data"
            )
        from recap.train.checkpoint import save_policy  # the trainer's stack loads only when importing

        save_policy(request.out, model, config, request.spec, stats, DeploymentSettings())
        return lines + report.lines()


def _detect_preset(source: Path) -> str:
    """``pi0`` when the checkpoint feeds state through ``state_proj`` (pi0's continuous state token)."""
    names = CheckpointFiles(source).names()
    return "pi0" if any(n.rsplit(".", 2)[-2:-1] == ["state_proj"] for n in names) else "pi05"

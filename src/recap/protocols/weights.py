"""What ``recap weights import`` asks of an importer that a plugin registers (kind ``weights_importer``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import attrs

from recap.data.spec import RobotSpec
from recap.data.stats import NormStats

T = TypeVar("T")
#: ``progress(items, total, label)``: wraps an iterable in a progress display (or returns it as it is)
Progress = Callable[[Iterable[T], int, str], Iterator[T]]


@attrs.frozen
class WeightImportRequest:
    """One import: read ``source`` (a checkpoint directory or file, never downloaded by recap), write a recap
    checkpoint directory at ``out``.

    Attributes:
        spec: the robot the imported policy will drive (cameras, state and action dimensions).
        stats: the normalisation statistics of a recap store, or None.
        norm_stats: a statistics file that comes with the checkpoint (openpi's ``norm_stats.json``); it
            replaces ``stats``; ``""`` looks beside the checkpoint.
        dtype: the model's dtype: ``float32`` (default), ``bfloat16`` or ``float16``; tensors are converted as
            they are read.
        tokenizer: a ``tokenizer.json`` or SentencePiece ``.model``; ``""`` looks beside the checkpoint.
        vision: a separate vision-tower checkpoint (a ``SiglipVisionModel``) read together with ``source`` (a
            text-only language model such as Gemma 3 270M), or None.
    """

    source: Path
    out: Path
    spec: RobotSpec
    stats: NormStats | None = None
    norm_stats: str = ""
    dtype: str = "float32"
    tokenizer: str = ""
    vision: Path | None = None

    def sources(self) -> list[Path]:
        """The checkpoints to read as one: ``source`` and, when given, ``vision``."""
        return [self.source] if self.vision is None else [self.source, self.vision]


@runtime_checkable
class WeightImporter(Protocol):
    def import_weights(self, request: WeightImportRequest, progress: Progress) -> list[str]:
        """Write the checkpoint; return the report, one line per loaded count, skipped key and key recap
        initialised itself. Raise ``recap.errors.ConfigError`` naming every missing, unexpected or
        mis-shaped key, or the keys of an unknown layout, without writing anything."""
        ...

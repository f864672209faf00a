"""``recap weights import``: a public pretrained checkpoint (downloaded by the user) -> a recap policy checkpoint.

The command resolves the robot spec and statistics, then hands the checkpoint to an importer that a plugin
registered (registry kind ``weights_importer``; ``recap plugins`` lists them). It never downloads anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

from tqdm.auto import tqdm

from recap.data.spec import RobotSpec, aloha_spec
from recap.data.stats import NormStats
from recap.data.store import EpisodeStore
from recap.errors import ConfigError
from recap.plugins import get_registry
from recap.protocols import WeightImporter, WeightImportRequest

T = TypeVar("T")


def import_weights(
    source: Path,
    out: Path,
    /,
    importer: str = "pi06",
    preset: str = "",
    store: Path | None = None,
    norm_stats: str = "",
    tokenizer: str = "",
    dtype: Literal["float32", "bfloat16", "float16"] = "float32",
    progress: bool = True,
    vision: Path | None = None,
) -> int:
    """Import a pi0 / pi0.5 (openpi, LeRobot), PaliGemma, Gemma 3 or SigLIP checkpoint into a recap policy (or,
    with ``--importer pi06-value``, value-estimator) checkpoint.

    Args:
        source: the checkpoint directory (``model.safetensors`` or a sharded ``model.safetensors.index.json``).
        out: the recap checkpoint directory to write (``recap train-policy --init-from OUT`` fine-tunes it).
        importer: the registered importer (``recap plugins`` lists kind ``weights_importer``).
        preset: the importer's architecture preset (pi06: ``pi0``, ``pi05``, or ``pi06`` / ``pi06-896`` for a
            Gemma 3 VLM; pi06-value: a value preset; default: the importer's).
        store: a recap episode store: its robot spec (cameras, dimensions) and statistics build the policy.
            Without one the ALOHA spec at 224x224 is used.
        norm_stats: the checkpoint's statistics (openpi ``norm_stats.json``); default: looked for beside it.
        tokenizer: the checkpoint's ``tokenizer.json`` or SentencePiece ``.model``; default: beside it.
        dtype: the imported model's dtype (tensors are converted as they are read).
        progress: show a progress bar over the tensors.
        vision: a SigLIP tower checkpoint (``SiglipVisionModel``) to read with a text-only SOURCE (the value
            model: ``--importer pi06-value`` from Gemma 3 270M and SigLIP So400m).
    """
    spec, stats = _spec_and_stats(store)
    registry = get_registry()
    entry = registry.get("weights_importer", importer)
    worker = registry.build(entry.config(preset=preset))
    if not isinstance(worker, WeightImporter):
        raise ConfigError(f"importer {importer!r} does not implement recap.protocols.WeightImporter")
    request = WeightImportRequest(
        source=source,
        out=out,
        spec=spec,
        stats=stats,
        norm_stats=norm_stats,
        dtype=dtype,
        tokenizer=tokenizer,
        vision=vision,
    )

    def bar(items: Iterable[T], total: int, label: str) -> Iterator[T]:
        yield from tqdm(items, total=total, desc=label, unit="tensor", disable=not progress)

    for line in worker.import_weights(request, bar):
        print(line)
    print(f"wrote {out}")
    return 0


def _spec_and_stats(store: Path | None) -> tuple[RobotSpec, NormStats | None]:
    if store is None:
        print("no --store: building for the ALOHA spec (three 224x224 cameras, 14-D state and action)")
        return aloha_spec(224, 224), None
    opened = EpisodeStore.open(store)
    stats = opened.norm_stats() if opened.episodes() else None
    return opened.spec, stats

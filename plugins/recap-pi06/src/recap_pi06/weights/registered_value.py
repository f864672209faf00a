"""The ``pi06-value`` weights importer (``recap weights import --importer pi06-value``): a value-estimator
checkpoint whose network is a ``pi06-value`` built from Gemma 3 (text only, with ``--vision`` a SigLIP tower, or a
whole Gemma 3 VLM). The estimator is any registered one taking ``num_bins`` and ``network`` (default
``distributional``, the paper's); it is found through the registry, so this plugin does not import it."""

from __future__ import annotations

import attrs
from attrs.validators import ge

from recap.config import WeightImporterConfig
from recap.errors import ConfigError
from recap.plugins import get_registry
from recap.protocols import WeightImportRequest
from recap.protocols.weights import Progress
from recap_pi06.config import VALUE_PRESETS, Pi06ValueConfig
from recap_pi06.weights.importer import import_model
from recap_pi06.weights.registered import import_options, keep_tokenizer


@attrs.frozen
class Pi06ValueImporterConfig(WeightImporterConfig):
    """``preset``: a value preset (default ``pi06-value``: Gemma 3 270M + SigLIP So400m/14 at 224 px) giving what the
    checkpoints do not fix; ``estimator`` and ``num_bins``: the value estimator the network is wrapped in."""

    estimator: str = "distributional"
    num_bins: int = attrs.field(default=201, validator=ge(2))


class Pi06ValueImporter:
    def __init__(self, config: Pi06ValueImporterConfig) -> None:
        name = config.preset or "pi06-value"
        if name not in VALUE_PRESETS:
            raise ConfigError(f"unknown value preset {name!r}; known: {sorted(VALUE_PRESETS)}")
        self.config, self.base = config, VALUE_PRESETS[name]

    def import_weights(self, request: WeightImportRequest, progress: Progress) -> list[str]:
        dtype, bar = import_options(request, progress)
        registry = get_registry()
        entry = registry.get("value_estimator", self.config.estimator)
        built = {}

        def build(network: Pi06ValueConfig):
            estimator_config = entry.config(num_bins=self.config.num_bins, network=network)
            built["estimator"] = registry.build(
                estimator_config, request.spec, request.stats, registry=registry
            )
            built["config"] = estimator_config
            return built["estimator"].network

        _, network, report = import_model(
            [str(p) for p in request.sources()],
            self.base,
            build,
            tokenizer=request.tokenizer,
            dtype=dtype,
            progress=bar,
        )
        network, line = keep_tokenizer(network)
        from recap.train.checkpoint import save_value  # the trainer's stack loads only when importing

        config = attrs.evolve(built["config"], network=network)
        save_value(request.out, built["estimator"], config, request.spec, request.stats, registry)
        return [line, *report.lines()]

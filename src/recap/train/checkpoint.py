"""Model checkpoints: a directory any later command can rebuild a policy or value estimator from.

Layout (``save_policy`` / ``save_value``)::

    model.safetensors   weights (non-tensor state such as tokenizers lives in uint8 buffers)
    config.toml         the plugin config, tagged with its registered name (recap.config)
    spec.json           the RobotSpec the model was built for
    stats.json          the dataset NormStats (absent when the model was built without statistics)
    deployment.json     policies only: how to sample it (indicator, CFG guidance)

Loading looks the config's tag up in the plugin registry, calls the registered factory with
``(config, spec, stats)`` and loads the weights strictly.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors.torch import load_file
from torch import nn

from recap import config as recap_config
from recap.config import PolicyConfig, ValueEstimatorConfig
from recap.data.schema import spec_from_dict, spec_to_dict
from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap.errors import ConfigError, StoreError
from recap.protocols import DeploymentSettings
from recap.train import state as train_state

WEIGHTS = "model.safetensors"
CONFIG = "config.toml"
SPEC = "spec.json"
STATS = "stats.json"
DEPLOYMENT = "deployment.json"


#: torch dtypes -> safetensors dtype names
_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def write_safetensors(tensors: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Write a ``.safetensors`` file tensor by tensor: the header first, then each tensor's bytes straight from
    its memory (``save_file`` serialises a copy of everything first, doubling the peak for a 3B model)."""
    header: dict[str, Any] = {}
    offset = 0
    for key, tensor in tensors.items():
        if tensor.dtype not in _SAFETENSORS_DTYPES:
            raise ConfigError(f"cannot save {key}: dtype {tensor.dtype} has no safetensors name")
        size = tensor.numel() * tensor.element_size()
        header[key] = {
            "dtype": _SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format aligns the data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for tensor in tensors.values():
            flat = tensor.detach().cpu().contiguous().reshape(-1)  # copies only a non-contiguous tensor
            if flat.numel():
                f.write(memoryview(flat.view(torch.uint8).numpy()))


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load ``model.safetensors`` (a file, or a directory holding one) or a sharded training checkpoint
    (``checkpoints/step_N``, any number of ranks) strictly into ``module``."""
    path = Path(path)
    if path.is_dir() and (path / train_state.DCP_METADATA).exists():
        train_state.load_dcp(
            {"model": module.state_dict()}, path
        )  # the state dict's tensors are the parameters
        return
    file = path / WEIGHTS if path.is_dir() else path
    if not file.exists():
        raise StoreError(f"no weights at {file}; expected a checkpoint directory holding {WEIGHTS}")
    state = load_file(str(file))
    # load_state_dict runs the modules' pre-hooks first, so checkpoints with renamed keys (rename_on_load) load
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ConfigError(f"weights in {file} do not fit this model (shape mismatch): {exc}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ConfigError(
            f"weights in {file} do not fit this model: missing {sorted(result.missing_keys)[:5]}, unexpected "
            f"{sorted(result.unexpected_keys)[:5]}. Build the model with the config the checkpoint was trained "
            "with (its config.toml)."
        )


def _write_common(
    directory: Path,
    module: nn.Module,
    config: Any,
    spec: RobotSpec,
    stats: NormStats | None,
    weights: dict[str, Any] | None,
    registry: Any,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (WEIGHTS + ".tmp")
    write_safetensors(weights if weights is not None else module.state_dict(), tmp)
    os.replace(tmp, directory / WEIGHTS)  # readers never see a half-written weights file
    recap_config.dump(config, directory / CONFIG, _registry(registry))
    (directory / SPEC).write_text(json.dumps(spec_to_dict(spec), indent=2))
    if stats is not None:
        stats.save(directory / STATS)
    elif (directory / STATS).exists():
        (directory / STATS).unlink()


def _read_common(directory: Path, base: type, registry: Any) -> tuple[Any, RobotSpec, NormStats | None]:
    if not (directory / CONFIG).exists() or not (directory / WEIGHTS).exists():
        raise StoreError(
            f"{directory} is not a model checkpoint: expected {WEIGHTS} and {CONFIG} "
            "(written by `recap train-value` / policy training at the end of a run)"
        )
    config = recap_config.load(directory / CONFIG, base, registry)
    spec = spec_from_dict(json.loads((directory / SPEC).read_text()))
    stats = NormStats.load(directory / STATS) if (directory / STATS).exists() else None
    return config, spec, stats


def _registry(registry: Any) -> Any:
    if registry is not None:
        return registry
    from recap.plugins import get_registry

    return get_registry()


def save_policy(
    directory: str | Path,
    policy: nn.Module,
    config: PolicyConfig,
    spec: RobotSpec,
    stats: NormStats | None,
    deployment: DeploymentSettings,
    registry: Any = None,
    *,
    weights: dict[str, Any] | None = None,
) -> Path:
    """Write a policy checkpoint directory (see the module docstring); ``weights`` (default: the policy's own
    state dict) are the whole weights, e.g. ``TrainResult.final_weights`` after sharded training."""
    directory = Path(directory)
    _write_common(directory, policy, config, spec, stats, weights, registry)
    (directory / DEPLOYMENT).write_text(json.dumps(attrs.asdict(deployment), indent=2))
    return directory


def load_policy(directory: str | Path, registry: Any = None) -> tuple[nn.Module, DeploymentSettings]:
    """Rebuild a policy (in eval mode) and its deployment settings from ``save_policy``'s directory."""
    directory = Path(directory)
    reg = _registry(registry)
    config, spec, stats = _read_common(directory, PolicyConfig, reg)
    policy = reg.build(config, spec, stats)
    load_weights(policy, directory)
    deployment = DeploymentSettings()
    if (directory / DEPLOYMENT).exists():
        deployment = DeploymentSettings(**json.loads((directory / DEPLOYMENT).read_text()))
    return policy.eval(), deployment


def save_value(
    directory: str | Path,
    estimator: nn.Module,
    config: ValueEstimatorConfig,
    spec: RobotSpec,
    stats: NormStats | None,
    registry: Any = None,
    *,
    weights: dict[str, Any] | None = None,
) -> Path:
    """Write a value-estimator checkpoint directory (see the module docstring and ``save_policy``)."""
    directory = Path(directory)
    _write_common(directory, estimator, config, spec, stats, weights, registry)
    return directory


def read_value_checkpoint(
    directory: str | Path, registry: Any = None
) -> tuple[ValueEstimatorConfig, RobotSpec, NormStats | None]:
    """The config, spec and statistics a value checkpoint was built with (fine-tuning rebuilds the same model)."""
    return _read_common(Path(directory), ValueEstimatorConfig, _registry(registry))


def load_value(directory: str | Path, registry: Any = None) -> nn.Module:
    """Rebuild a value estimator (in eval mode) from ``save_value``'s directory."""
    directory = Path(directory)
    reg = _registry(registry)
    config, spec, stats = _read_common(directory, ValueEstimatorConfig, reg)
    estimator = reg.build(config, spec, stats, registry=reg)
    load_weights(estimator, directory)
    return estimator.eval()


def value_model_id(directory: str | Path) -> str:
    """A stable id for the value model in ``directory``: ``value-`` + the first 12 hex of its weights' SHA-256.

    Label sets are keyed by it, so relabelling with a retrained model never overwrites older labels.
    """
    file = Path(directory) / WEIGHTS
    if not file.exists():
        raise StoreError(f"no {WEIGHTS} in {directory}; pass a value checkpoint directory")
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "value-" + digest.hexdigest()[:12]

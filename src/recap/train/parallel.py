"""Trainer strategies on ``torch.distributed``: DDP or FSDP2, bf16 precision, activation checkpointing, freezing.

Our losses are methods of the model (``per_sample_loss``, ``loss``) called by an arbitrary ``loss_fn``, not
``forward``. Both strategies route them through ``forward`` instead: ``LossForward`` is a small module whose
``forward(batch)`` calls ``loss_fn`` and which holds the model as its child. Wrapping it gives

* ``ddp``: ``DistributedDataParallel(LossForward)``; its forward hooks fire, so gradients are all-reduced in
  buckets that overlap the backward pass (the hand-written per-parameter all-reduce this replaces could not).
* ``fsdp2``: ``fully_shard`` on every transformer block the model exposes (``transformer_blocks()``) and then on
  ``LossForward`` as the root: the root's parameters (embeddings, heads, projections) are gathered for the whole
  loss call and each block gathers its own around its forward, whichever method of the model runs.

A model states its structure with two optional methods: ``transformer_blocks() -> list[nn.Module]`` (the units
that are sharded and checkpointed) and ``freezable_parts() -> dict[str, nn.Module]`` (names ``freeze`` accepts
besides plain module paths).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
from tensordict import TensorDict
from torch import nn

from recap.errors import ConfigError
from recap.train.distributed import DistInfo

Strategy = Literal["ddp", "fsdp2"]
#: fp32: everything fp32. bf16-mixed: fp32 weights and optimiser state, bf16 compute, fp32 gradient reduction.
#: bf16: weights, gradients and optimiser state in bf16 (half the memory); fsdp2 still reduces in fp32.
Precision = Literal["fp32", "bf16-mixed", "bf16"]
STRATEGIES: tuple[str, ...] = ("ddp", "fsdp2")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16-mixed", "bf16")


class LossForward(nn.Module):
    """``forward(batch) -> (summed loss, the loss TensorDict)``: the loss call as a forward, for DDP and FSDP2."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[TensorDict], TensorDict]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: TensorDict) -> tuple[torch.Tensor, TensorDict]:
        out = self.loss_fn(batch)
        return total_loss(out), out


def total_loss(out: TensorDict) -> torch.Tensor:
    """The sum of the ``loss_*`` terms (each a scalar)."""
    terms = [k for k in out.keys() if isinstance(k, str) and k.startswith("loss_")]  # noqa: SIM118 - rows otherwise
    if not terms:
        raise ConfigError(
            f"loss_fn returned no 'loss_*' terms (got keys {sorted(out.keys())}); name each term loss_<x>"
        )
    total = sum(out[k] for k in terms)
    if total.ndim != 0:
        raise ConfigError(
            f"loss terms must be scalars, got shape {tuple(total.shape)}; reduce over the batch"
        )
    return total


def _declared(model: nn.Module, method: str) -> Any:
    """``method()`` of the model, or of its first submodule that declares it (an estimator's network)."""
    for module in model.modules():
        fn = getattr(module, method, None)
        if callable(fn):
            return fn()
    return None


def blocks_of(model: nn.Module) -> list[nn.Module]:
    """The model's transformer blocks (``transformer_blocks()``), or none when it does not expose any."""
    return list(_declared(model, "transformer_blocks") or [])


def freeze(model: nn.Module, names: tuple[str, ...]) -> list[str]:
    """Stop gradients for each named part (a ``freezable_parts()`` name or a module path); returns the paths."""
    if not names:
        return []
    parts: dict[str, nn.Module] = dict(_declared(model, "freezable_parts") or {})
    modules = dict(model.named_modules())
    frozen = []
    for name in names:
        target = parts.get(name, modules.get(name))
        if target is None or name == "":
            raise ConfigError(
                f"cannot freeze {name!r}: not a part of this model. Parts: {sorted(parts) or 'none declared'}; "
                f"or a module path such as {[n for n in modules if n][:5]}"
            )
        for p in target.parameters():
            p.requires_grad_(False)
        frozen.append(name)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"freezing {list(names)} leaves no trainable parameters")
    return frozen


def apply_activation_checkpointing(model: nn.Module) -> int:
    """Recompute each block's activations in backward instead of keeping them (parameter names unchanged)."""
    from torch.distributed._composable import checkpoint

    blocks = blocks_of(model)
    if not blocks:
        raise ConfigError(
            f"activation_checkpointing needs the model to expose transformer_blocks(); {type(model).__name__} "
            "does not. Turn it off or add the method."
        )
    for block in blocks:
        checkpoint(block)
    return len(blocks)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast for the bf16 modes (ops outside the sharded blocks see fp32 inputs too)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class Parallel:
    """The model as the trainer drives it: ``forward(batch)`` runs the loss, ``no_sync()`` skips gradient
    reduction for accumulation micro-steps, ``model`` is the (possibly sharded) model for state dicts."""

    def __init__(
        self, model: nn.Module, wrapped: nn.Module, strategy: str, precision: str, device: torch.device
    ):
        self.model, self.wrapped, self.strategy = model, wrapped, strategy
        self.precision, self.device = precision, device

    def forward(self, batch: TensorDict) -> tuple[torch.Tensor, TensorDict]:
        with autocast(self.precision, self.device):
            return self.wrapped(batch)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        if isinstance(self.wrapped, nn.parallel.DistributedDataParallel):
            with self.wrapped.no_sync():
                yield
        elif self.sharded:
            self.wrapped.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                self.wrapped.set_requires_gradient_sync(True)
        else:
            yield

    @property
    def sharded(self) -> bool:
        """Whether parameters are split over ranks (FSDP2 with more than one rank)."""
        from torch.distributed.fsdp import FSDPModule

        return isinstance(self.wrapped, FSDPModule)


def wrap(
    model: nn.Module,
    loss_fn: Callable[[TensorDict], TensorDict],
    *,
    strategy: str,
    precision: str,
    activation_checkpointing: bool,
    info: DistInfo,
    device: torch.device,
) -> Parallel:
    """Apply precision, activation checkpointing and the strategy (every rank must hold the same weights)."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown trainer strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    if precision == "bf16":
        for p in model.parameters():  # parameters only: buffers (normalisation statistics) stay fp32
            p.data = p.data.to(torch.bfloat16)
    if activation_checkpointing:
        apply_activation_checkpointing(model)
    root = LossForward(model, loss_fn)
    if strategy == "fsdp2" and info.world_size > 1:
        return Parallel(
            model, _fully_shard(root, model, precision, info, device), strategy, precision, device
        )
    if strategy == "ddp" and info.world_size > 1:
        ids = [device.index] if device.type == "cuda" else None
        # find_unused_parameters: a loss may leave some parameters without a gradient in a step (for example a
        # head whose segment is empty); buffers (statistics, tokenizers) are synced once, at start, never per step
        ddp = nn.parallel.DistributedDataParallel(
            root, device_ids=ids, find_unused_parameters=True, forward_sync_buffers=False
        )
        return Parallel(model, ddp, strategy, precision, device)
    return Parallel(model, root, strategy, precision, device)


def _fully_shard(root: nn.Module, model: nn.Module, precision: str, info: DistInfo, device: torch.device):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device.type, (info.world_size,))
    param_dtype = torch.bfloat16 if precision == "bf16-mixed" else None
    reduce_dtype = torch.float32 if precision != "fp32" else None
    block_policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=reduce_dtype)
    # the root's input is the raw batch: leave its float entries (returns, states) in fp32
    root_policy = MixedPrecisionPolicy(
        param_dtype=param_dtype, reduce_dtype=reduce_dtype, cast_forward_inputs=False
    )
    for block in blocks_of(model):
        fully_shard(block, mesh=mesh, mp_policy=block_policy)
    return fully_shard(root, mesh=mesh, mp_policy=root_policy)


def memory_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes of parameters, gradients and optimiser state this rank holds (its own shards under FSDP2)."""

    def size(t: Any) -> int:
        if not isinstance(t, torch.Tensor):
            return 0
        local = t.to_local() if hasattr(t, "to_local") else t
        return local.numel() * local.element_size()

    params = list(model.parameters())
    return {
        "param_bytes": sum(size(p) for p in params),
        "grad_bytes": sum(size(p.grad) for p in params),
        "optimizer_bytes": sum(size(v) for state in optimizer.state.values() for v in state.values()),
    }

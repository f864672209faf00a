"""The generic trainer used by value and policy training alike.

``train(module, loss_fn, batch_fn, config, out_dir)`` runs AdamW with linear warmup and cosine decay, gradient
clipping, an optional EMA, periodic atomic checkpoints with exact resume, metrics to ``metrics.jsonl`` and a tqdm
progress bar. It runs unchanged under ``torchrun``: each rank draws its share of the global batch through
``batch_fn(step, rank, world_size)`` and gradients are averaged over ranks before the update, with the
``ddp`` or ``fsdp2`` strategy of ``recap.train.parallel``. Checkpoints are sharded (``recap.train.state``).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from tensordict import TensorDict
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from tqdm.auto import tqdm

from recap.errors import ConfigError
from recap.train import distributed as ddp
from recap.train import parallel
from recap.train import state as ckpt_state
from recap.train.checkpoint import load_weights
from recap.train.schedule import EMA, warmup_cosine_lr
from recap.validators import non_negative, positive

METRICS = "metrics.jsonl"
RESOLVED_CONFIG = "resolved_config.toml"

LossFn = Callable[[TensorDict], TensorDict]
BatchFn = Callable[[int, int, int], TensorDict]


@attrs.frozen
class TrainerConfig:
    """Optimisation settings shared by every training command.

    Attributes:
        steps: optimiser steps in total (a resumed run continues up to this number).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW decoupled weight decay (not applied to biases and norm gains, i.e. tensors with
            fewer than 2 dimensions).
        warmup_steps: linear warmup from lr/warmup to lr.
        grad_clip: clip the global gradient L2 norm to this value (None: no clipping).
        ema_decay: keep an exponential moving average of the weights with this decay (None: off); the saved
            final model is the EMA.
        checkpoint_every: write a resumable checkpoint every this many steps and at the end (None: never, for
            benchmarks; a killed run then starts over).
        log_every: write a metrics line every this many steps (and at the end).
        seed: seeds torch/numpy/random at the start (a resume restores the saved generator states instead).
        progress: show a tqdm progress bar (rank 0 only).
        final_lr_ratio: the cosine decays to lr * final_lr_ratio.
        keep_checkpoints: how many of the newest resumable checkpoints to keep.
        betas: AdamW betas.
        strategy: "ddp" (DistributedDataParallel: every rank holds the whole model) or "fsdp2" (``fully_shard``
            per transformer block and the root: parameters, gradients and optimiser state split over ranks).
            Alone (no torchrun) both train the plain model.
        precision: "fp32"; "bf16-mixed" (fp32 weights and optimiser state, bf16 compute, fp32 gradient
            reduction); "bf16" (weights, gradients and optimiser state in bf16, half the memory).
        activation_checkpointing: recompute each transformer block's activations in backward (less memory,
            about a third more compute); needs a model exposing ``transformer_blocks()``.
        freeze: parts to keep fixed: names from the model's ``freezable_parts()`` or module paths.
        device: "cpu", "cuda" (GPU ``LOCAL_RANK`` under torchrun) or "auto" (CUDA when available); the model
            is moved there before training.
        grad_accumulation: split each rank's share of the batch into this many sequential micro-batches
            (same update, less activation memory).
    """

    steps: int = attrs.field(default=1000, validator=positive)
    lr: float = attrs.field(default=3e-4, validator=non_negative)
    weight_decay: float = attrs.field(default=1e-2, validator=non_negative)
    warmup_steps: int = attrs.field(default=100, validator=non_negative)
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    checkpoint_every: int | None = attrs.field(default=500, validator=attrs.validators.optional(positive))
    log_every: int = attrs.field(default=50, validator=positive)
    seed: int = 0
    progress: bool = True
    final_lr_ratio: float = attrs.field(default=0.0, validator=non_negative)
    keep_checkpoints: int = attrs.field(default=2, validator=positive)
    betas: tuple[float, float] = (0.9, 0.95)
    strategy: parallel.Strategy = attrs.field(
        default="ddp", validator=attrs.validators.in_(parallel.STRATEGIES)
    )
    precision: parallel.Precision = attrs.field(
        default="fp32", validator=attrs.validators.in_(parallel.PRECISIONS)
    )
    activation_checkpointing: bool = False
    freeze: tuple[str, ...] = ()
    grad_accumulation: int = attrs.field(default=1, validator=positive)
    device: str = attrs.field(default="cpu", validator=attrs.validators.in_(("cpu", "cuda", "auto")))


@attrs.frozen
class TrainResult:
    """What a finished run reports.

    Attributes:
        step: optimiser steps done (== config.steps).
        resumed_from: the step the run resumed at (None for a fresh start).
        metrics: the last logged metrics (averaged over ranks).
        out_dir: where metrics, checkpoints and the resolved config live.
        wall_s: seconds spent in this call.
        memory: bytes of parameters, gradients and optimiser state this rank held at the end (its shards).
        final_weights: rank 0: the final weights, whole, on the CPU (what checkpoints for serving hold); other
            ranks: None.
    """

    step: int
    resumed_from: int | None
    metrics: dict[str, float]
    out_dir: Path
    wall_s: float
    memory: dict[str, int] = attrs.field(factory=dict)
    final_weights: dict[str, torch.Tensor] | None = attrs.field(default=None, eq=False, repr=False)


def _param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    if not decay and not no_decay:
        raise ConfigError("the module has no trainable parameters; nothing to train")
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _scalars(out: TensorDict) -> dict[str, float]:
    metrics = {}
    for k, v in out.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            metrics[k] = float(v.detach())
    return metrics


def _trim_metrics(path: Path, last_step: int) -> None:
    """After a resume, drop metric lines logged past the checkpoint (they will be logged again)."""
    if not path.exists():
        return
    kept = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= last_step]
    path.write_text("".join(ln + "\n" for ln in kept))


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and ``random`` (before building a model, so its initial weights follow the seed)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def train(
    module: nn.Module,
    loss_fn: LossFn,
    batch_fn: BatchFn,
    config: TrainerConfig,
    out_dir: str | Path,
    *,
    init_from: str | Path | None = None,
    resolved_config: str | None = None,
) -> TrainResult:
    """Train ``module`` by minimising the sum of the ``loss_*`` terms of ``loss_fn(batch_fn(step, rank, world))``.

    Resumes exactly from the newest checkpoint in ``out_dir`` when there is one (``init_from`` is then ignored);
    otherwise starts from ``init_from``'s weights (a checkpoint directory or a ``.safetensors`` file) when given.
    ``resolved_config`` (the run's config as TOML text) is written to ``out_dir/resolved_config.toml`` by rank 0.
    At the end the module holds the final weights (the EMA when enabled) unless the ``fsdp2`` strategy sharded it; in every
    case rank 0's ``TrainResult.final_weights`` holds them whole, on the CPU.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if config.device != "cpu":
        module.to(ddp.local_device(required=config.device == "cuda"))
    device = next(module.parameters()).device
    info = ddp.init_distributed(device)
    try:
        run = _Run(module, loss_fn, batch_fn, config, out_dir, info, device)
        run.prepare(init_from, resolved_config)
        run.loop()
        return run.finish(started)
    finally:
        ddp.shutdown(info)


class _Run:
    """One call of ``train``: set-up, the step loop, logging, checkpoints, and the finish, as named parts."""

    def __init__(self, module, loss_fn, batch_fn, config: TrainerConfig, out_dir: Path, info, device) -> None:
        self.module, self.loss_fn, self.batch_fn, self.config = module, loss_fn, batch_fn, config
        self.out_dir, self.info, self.device = out_dir, info, device
        self.metrics_path = out_dir / METRICS
        self.start, self.resumed_from = 0, None
        self.window: dict[str, float] = {}
        self.window_n, self.tick = 0, time.perf_counter()
        self.last_metrics: dict[str, float] = {}

    # -- set-up ---------------------------------------------------------------------------------------------

    def prepare(self, init_from: str | Path | None, resolved_config: str | None) -> None:
        config, info = self.config, self.info
        if info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            ckpt_state.remove_stale_temporaries(self.out_dir)
            if resolved_config is not None:
                (self.out_dir / RESOLVED_CONFIG).write_text(resolved_config)
        ddp.barrier(info)
        seed_everything(config.seed)
        parallel.freeze(self.module, config.freeze)
        latest = ckpt_state.latest_checkpoint(self.out_dir)
        if latest is None and init_from is not None:
            load_weights(self.module, init_from)
        if config.strategy == "fsdp2":
            ddp.broadcast_parameters(self.module, info)  # DDP syncs rank 0's weights itself
        self.parallel = parallel.wrap(
            self.module,
            self.loss_fn,
            strategy=config.strategy,
            precision=config.precision,
            activation_checkpointing=config.activation_checkpointing,
            info=info,
            device=self.device,
        )
        self.optimizer = torch.optim.AdamW(
            _param_groups(self.module, config.weight_decay), lr=config.lr, betas=config.betas
        )
        self.ema = EMA(self.module, config.ema_decay) if config.ema_decay is not None else None
        if latest is not None:
            self._resume(latest)
        elif info.is_main and self.metrics_path.exists():
            self.metrics_path.unlink()
        ddp.barrier(info)

    def _resume(self, latest: Path) -> None:
        saved = ckpt_state.read_trainer_state(latest)
        if (self.ema is None) != (saved.get("ema_updates") is None):
            raise ConfigError(
                f"{latest} was saved with{'out' if self.ema is not None else ''} EMA but ema_decay is "
                f"{self.config.ema_decay}; resume with the trainer config the run started with"
            )
        state = self._state_dict()
        ckpt_state.load_dcp(state, latest)
        set_model_state_dict(self.module, state["model"])
        set_optimizer_state_dict(self.module, self.optimizer, state["optim"])
        if self.ema is not None:
            self.ema.updates = int(saved["ema_updates"])
        self.start = self.resumed_from = int(saved["step"])
        rngs = saved["rng"]
        ckpt_state.set_rng_state(rngs[self.info.rank] if self.info.rank < len(rngs) else rngs[0])
        if self.info.is_main:
            _trim_metrics(self.metrics_path, self.start)

    def _state_dict(self) -> dict[str, Any]:
        """Everything DCP saves: weights, optimiser state and EMA weights, keyed by parameter name."""
        state = {
            "model": get_model_state_dict(self.module),
            "optim": get_optimizer_state_dict(self.module, self.optimizer),
        }
        if self.ema is not None:
            state["ema"] = self.ema.shadow
        return state

    # -- the loop -------------------------------------------------------------------------------------------

    def loop(self) -> None:
        config = self.config
        bar = tqdm(
            total=config.steps,
            initial=self.start,
            disable=not (config.progress and self.info.is_main),
            desc="train",
        )
        self.module.train()
        for step in range(self.start, config.steps):
            lr = warmup_cosine_lr(
                step,
                base_lr=config.lr,
                warmup_steps=config.warmup_steps,
                total_steps=config.steps,
                final_ratio=config.final_lr_ratio,
            )
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self._accumulate(self.step(step))
            done = step + 1
            if done % config.log_every == 0 or done == config.steps:
                self._log(done, lr, bar)
            if config.checkpoint_every is not None and (
                done % config.checkpoint_every == 0 or done == config.steps
            ):
                self._checkpoint(done)
            bar.update(1)
        bar.close()

    def step(self, step: int) -> dict[str, float]:
        """One optimiser step over this rank's share of the global batch, in ``grad_accumulation`` pieces."""
        config = self.config
        batch = self.batch_fn(step, self.info.rank, self.info.world_size)
        if self.device.type != "cpu":
            batch = batch.to(self.device, non_blocking=True)
        micro = _micro_batches(batch, config.grad_accumulation)
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for i, piece in enumerate(micro):
            last = i == len(micro) - 1
            with contextlib.nullcontext() if last else self.parallel.no_sync():
                loss, out = self.parallel.forward(piece)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"loss is {float(loss)} at step {step}; lower lr or check the batch"
                    )
                (loss / len(micro)).backward()
            for k, v in {**_scalars(out), "loss": float(loss.detach())}.items():
                sums[k] = sums.get(k, 0.0) + v / len(micro)
        clip = config.grad_clip if config.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for p in self.module.parameters() if p.requires_grad], clip
        )
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.module)
        return {**sums, "grad_norm": _as_float(grad_norm)}

    def _accumulate(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.window[k] = self.window.get(k, 0.0) + v
        self.window_n += 1

    def _log(self, done: int, lr: float, bar: Any) -> None:
        now = time.perf_counter()
        avg = ddp.average_scalars({k: v / self.window_n for k, v in self.window.items()}, self.info)
        self.last_metrics = {**avg, "lr": lr, "steps_per_s": self.window_n / max(now - self.tick, 1e-9)}
        if self.info.is_main:
            with self.metrics_path.open("a") as fh:
                fh.write(json.dumps({"step": done, **self.last_metrics}) + "\n")
            bar.set_postfix(loss=f"{self.last_metrics['loss']:.4f}", lr=f"{lr:.2e}")
        self.window, self.window_n, self.tick = {}, 0, now

    def _checkpoint(self, step: int) -> None:
        """Every rank writes its shards into one temporary directory; rank 0 then publishes it."""
        info = self.info
        rngs = ddp.gather_objects(ckpt_state.rng_state(), info)
        if info.is_main:
            ckpt_state.prepare_temporary(self.out_dir, step)
        ddp.barrier(info)
        ckpt_state.write_shards(ckpt_state.temporary_dir(self.out_dir, step), self._state_dict())
        ddp.barrier(info)
        if info.is_main:
            trainer_state = {
                "ema_updates": self.ema.updates if self.ema is not None else None,
                "rng": rngs,
                "world_size": info.world_size,
                "strategy": self.config.strategy,
            }
            ckpt_state.publish(self.out_dir, step, trainer_state, self.config.keep_checkpoints)
        ddp.barrier(info)

    # -- the end --------------------------------------------------------------------------------------------

    def finish(self, started: float) -> TrainResult:
        memory = parallel.memory_bytes(self.module, self.optimizer)
        if self.ema is not None:
            self.ema.copy_to(self.module)
        self.module.eval()
        weights = full_weights(self.module, self.parallel.sharded)
        return TrainResult(
            self.config.steps,
            self.resumed_from,
            self.last_metrics,
            self.out_dir,
            time.perf_counter() - started,
            memory,
            weights if self.info.is_main else None,
        )


def _micro_batches(batch: TensorDict, pieces: int) -> list[TensorDict]:
    if pieces == 1:
        return [batch]
    size = batch.batch_size[0]
    if size % pieces:
        raise ConfigError(
            f"this rank's batch of {size} does not split into grad_accumulation={pieces} equal pieces; "
            "make batch_size / world_size a multiple of grad_accumulation"
        )
    return list(batch.split(size // pieces))


def _as_float(value: torch.Tensor) -> float:
    full = getattr(value, "full_tensor", None)
    return float(full() if callable(full) else value)


def full_weights(module: nn.Module, sharded: bool) -> dict[str, torch.Tensor]:
    """The whole state dict on the CPU (collective when sharded: rank 0 gets it, other ranks an empty dict)."""
    if not sharded:  # copied straight to the CPU: no second copy on the GPU
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return {k: v.contiguous() for k, v in get_model_state_dict(module, options=options).items()}

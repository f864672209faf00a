"""The generic trainer used by value and policy training alike.

``train(module, loss_fn, batch_fn, config, out_dir)`` runs AdamW with linear warmup and cosine decay, gradient
clipping, an optional EMA, periodic atomic checkpoints with exact resume, metrics to ``metrics.jsonl`` and a tqdm
progress bar. It runs unchanged under ``torchrun``: each rank draws its share of the global batch through
``batch_fn(step, rank, world_size)`` and gradients are averaged over ranks before the update.
"""

from __future__ import annotations

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
from tqdm.auto import tqdm

from recap.errors import ConfigError
from recap.train import distributed as ddp
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
        checkpoint_every: write a resumable checkpoint every this many steps (and at the end).
        log_every: write a metrics line every this many steps (and at the end).
        seed: seeds torch/numpy/random at the start (a resume restores the saved generator states instead).
        progress: show a tqdm progress bar (rank 0 only).
        final_lr_ratio: the cosine decays to lr * final_lr_ratio.
        keep_checkpoints: how many of the newest resumable checkpoints to keep.
        betas: AdamW betas.
    """

    steps: int = attrs.field(default=1000, validator=positive)
    lr: float = attrs.field(default=3e-4, validator=non_negative)
    weight_decay: float = attrs.field(default=1e-2, validator=non_negative)
    warmup_steps: int = attrs.field(default=100, validator=non_negative)
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    checkpoint_every: int = attrs.field(default=500, validator=positive)
    log_every: int = attrs.field(default=50, validator=positive)
    seed: int = 0
    progress: bool = True
    final_lr_ratio: float = attrs.field(default=0.0, validator=non_negative)
    keep_checkpoints: int = attrs.field(default=2, validator=positive)
    betas: tuple[float, float] = (0.9, 0.95)


@attrs.frozen
class TrainResult:
    """What a finished run reports.

    Attributes:
        step: optimiser steps done (== config.steps).
        resumed_from: the step the run resumed at (None for a fresh start).
        metrics: the last logged metrics (averaged over ranks).
        out_dir: where metrics, checkpoints and the resolved config live.
        wall_s: seconds spent in this call.
    """

    step: int
    resumed_from: int | None
    metrics: dict[str, float]
    out_dir: Path
    wall_s: float


def _param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    if not decay and not no_decay:
        raise ConfigError("the module has no trainable parameters; nothing to train")
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _total_loss(out: TensorDict) -> torch.Tensor:
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
    ``resolved_config`` (the run's config as TOML text) is written to ``out_dir/resolved_config.toml`` by rank 0. At the end
    the module holds the final weights (the EMA when enabled).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    device = next(module.parameters()).device
    info = ddp.init_distributed(device)
    try:
        return _run(
            module, loss_fn, batch_fn, config, out_dir, init_from, resolved_config, info, started, device
        )
    finally:
        ddp.shutdown(info)


def _run(
    module, loss_fn, batch_fn, config, out_dir, init_from, resolved_config, info, started, device
) -> TrainResult:
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt_state.remove_stale_temporaries(out_dir)
        if resolved_config is not None:
            (out_dir / RESOLVED_CONFIG).write_text(resolved_config)
    ddp.barrier(info)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    optimizer = torch.optim.AdamW(
        _param_groups(module, config.weight_decay), lr=config.lr, betas=config.betas
    )
    ema = EMA(module, config.ema_decay) if config.ema_decay is not None else None
    start, resumed_from = 0, None
    latest = ckpt_state.latest_checkpoint(out_dir)
    metrics_path = out_dir / METRICS
    if latest is not None:
        saved = ckpt_state.load_train_state(latest, module, optimizer)
        start = resumed_from = int(saved["step"])
        rngs = saved["rng"]
        ckpt_state.set_rng_state(rngs[info.rank] if info.rank < len(rngs) else rngs[0])
        if ema is not None:
            if saved["ema"] is None:
                raise ConfigError(
                    f"{latest} was saved without EMA but ema_decay is set; use the same trainer config"
                )
            ema.load_state_dict(saved["ema"], int(saved["ema_updates"]))
        if info.is_main:
            _trim_metrics(metrics_path, start)
    else:
        if init_from is not None:
            load_weights(module, init_from)
        ddp.broadcast_parameters(module, info)
        if ema is not None:
            ema = EMA(module, config.ema_decay)
        if info.is_main and metrics_path.exists():
            metrics_path.unlink()
    ddp.barrier(info)

    params = [p for p in module.parameters() if p.requires_grad]
    bar = tqdm(
        total=config.steps, initial=start, disable=not (config.progress and info.is_main), desc="train"
    )
    last_metrics: dict[str, float] = {}
    window: dict[str, float] = {}
    window_n = 0
    tick = time.perf_counter()
    module.train()
    for step in range(start, config.steps):
        lr = warmup_cosine_lr(
            step,
            base_lr=config.lr,
            warmup_steps=config.warmup_steps,
            total_steps=config.steps,
            final_ratio=config.final_lr_ratio,
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = batch_fn(step, info.rank, info.world_size)
        if device.type != "cpu":
            batch = batch.to(device, non_blocking=True)
        out = loss_fn(batch)
        loss = _total_loss(out)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at step {step}; lower lr or check the batch")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        ddp.average_gradients(params, info)
        clip = config.grad_clip if config.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        if ema is not None:
            ema.update(module)
        for k, v in {**_scalars(out), "loss": float(loss.detach()), "grad_norm": float(grad_norm)}.items():
            window[k] = window.get(k, 0.0) + v
        window_n += 1
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            now = time.perf_counter()
            avg = ddp.average_scalars({k: v / window_n for k, v in window.items()}, info)
            last_metrics = {**avg, "lr": lr, "steps_per_s": window_n / max(now - tick, 1e-9)}
            if info.is_main:
                with metrics_path.open("a") as fh:
                    fh.write(json.dumps({"step": done, **last_metrics}) + "\n")
                bar.set_postfix(loss=f"{last_metrics['loss']:.4f}", lr=f"{lr:.2e}")
            window, window_n, tick = {}, 0, now
        if done % config.checkpoint_every == 0 or done == config.steps:
            _checkpoint(out_dir, done, module, optimizer, ema, config, info)
        bar.update(1)
    bar.close()
    if ema is not None:
        ema.copy_to(module)
    module.eval()
    return TrainResult(config.steps, resumed_from, last_metrics, out_dir, time.perf_counter() - started)


def _checkpoint(out_dir, step, module, optimizer, ema, config, info) -> None:
    rngs = ddp.gather_objects(ckpt_state.rng_state(), info)
    if info.is_main:
        ckpt_state.save_train_state(
            out_dir,
            step,
            module,
            optimizer,
            ema.state_dict() if ema is not None else None,
            ema.updates if ema is not None else 0,
            rngs,
            config.keep_checkpoints,
        )
    ddp.barrier(info)

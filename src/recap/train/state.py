"""Training-state checkpoints for exact resume: weights, optimiser, EMA, every rank's RNG state and the step.

Each checkpoint is a directory ``<out>/checkpoints/step_<N>/`` written under a temporary name and renamed into
place, so a run killed mid-write (SIGKILL included) leaves either a complete checkpoint or none:

    model.safetensors   weights after N optimiser steps
    ema.safetensors     EMA shadow weights (when EMA is on)
    trainer_state.pt    optimiser state, step, EMA update count, per-rank RNG states (torch, numpy, random)

The learning rate is a pure function of the step (``schedule.warmup_cosine_lr``), so the step is the whole
scheduler state.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from recap.errors import StoreError
from recap.train.checkpoint import WEIGHTS, load_weights, state_dict_for_saving

CHECKPOINTS = "checkpoints"
EMA_WEIGHTS = "ema.safetensors"
STATE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def rng_state() -> dict[str, Any]:
    """This process's random generators (torch CPU/CUDA, numpy, Python)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dirs(out_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``out_dir``, sorted by step."""
    root = Path(out_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and (d / STATE).exists() and (d / WEIGHTS).exists():
            found.append((int(m.group(1)), d))
    return sorted(found)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    dirs = checkpoint_dirs(out_dir)
    return dirs[-1][1] if dirs else None


def save_train_state(
    out_dir: str | Path,
    step: int,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema_state: dict[str, torch.Tensor] | None,
    ema_updates: int,
    rank_rng_states: list[dict[str, Any]],
    keep: int,
) -> Path:
    """Write ``step_<step>`` atomically and delete all but the newest ``keep`` checkpoints."""
    root = Path(out_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-step_{step:08d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(state_dict_for_saving(module), str(tmp / WEIGHTS))
    if ema_state is not None:
        save_file({k: v.contiguous().clone() for k, v in ema_state.items()}, str(tmp / EMA_WEIGHTS))
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "ema_updates": ema_updates,
            "rng": rank_rng_states,
        },
        tmp / STATE,
    )
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for _, old in checkpoint_dirs(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_train_state(directory: Path, module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load weights and optimiser state; return the rest (step, rng, ema_updates, ema weights or None)."""
    load_weights(module, directory)
    try:
        state = torch.load(directory / STATE, weights_only=False)
    except Exception as exc:  # a truncated file cannot happen after the atomic rename, but say what broke
        raise StoreError(
            f"cannot read {directory / STATE}: {exc}; delete that checkpoint to resume from an older one"
        ) from exc
    optimizer.load_state_dict(state["optimizer"])
    ema_file = directory / EMA_WEIGHTS
    state["ema"] = load_file(str(ema_file)) if ema_file.exists() else None
    return state


def remove_stale_temporaries(out_dir: str | Path) -> None:
    """Drop half-written checkpoints left by a killed run."""
    root = Path(out_dir) / CHECKPOINTS
    if root.is_dir():
        for d in root.glob(".tmp-step_*"):
            shutil.rmtree(d, ignore_errors=True)

"""A tiny, fully deterministic training job used by the trainer tests (also run as a script under torchrun).

    python toy_training.py OUT_DIR STEPS [--kill-at K] [--ema D] [--global-batch B]

Trains a 2-layer MLP with dropout to regress y = sin(x0) + x1 / 2 from a fixed pseudo-random data set; ``--kill-at K``
(dropout draws are per-rank, so data-parallel comparisons pass ``--dropout 0``) SIGKILLs the process while drawing the batch of step K (mid-run, between checkpoints).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import torch
from tensordict import TensorDict
from torch import nn

from recap.train import TrainerConfig, train


def make_model(dropout: float = 0.1) -> nn.Module:
    torch.manual_seed(1234)
    return nn.Sequential(nn.Linear(4, 32), nn.GELU(), nn.Dropout(dropout), nn.Linear(32, 1))


def make_batch_fn(global_batch: int, kill_at: int | None = None):
    def batch_fn(step: int, rank: int, world: int) -> TensorDict:
        if kill_at is not None and step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        g = torch.Generator().manual_seed(10_000 + step)  # the global batch depends on the step only
        x = torch.randn(global_batch, 4, generator=g)
        y = torch.sin(x[:, :1]) + 0.5 * x[:, 1:2]
        return TensorDict({"x": x[rank::world], "y": y[rank::world]}, batch_size=[global_batch // world])

    return batch_fn


def make_loss_fn(model: nn.Module):
    def loss_fn(batch: TensorDict) -> TensorDict:
        err = model(batch["x"]) - batch["y"]
        return TensorDict(
            {"loss_mse": err.pow(2).mean(), "abs_err": err.abs().mean().detach()}, batch_size=[]
        )

    return loss_fn


def toy_config(steps: int, ema: float | None = None) -> TrainerConfig:
    return TrainerConfig(
        steps=steps, lr=1e-2, warmup_steps=5, checkpoint_every=10, log_every=5, progress=False, ema_decay=ema
    )


def run(
    out_dir: Path,
    steps: int,
    kill_at: int | None = None,
    ema: float | None = None,
    global_batch: int = 16,
    dropout: float = 0.1,
):
    model = make_model(dropout)
    result = train(
        model, make_loss_fn(model), make_batch_fn(global_batch, kill_at), toy_config(steps, ema), out_dir
    )
    return model, result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("steps", type=int)
    ap.add_argument("--kill-at", type=int, default=None)
    ap.add_argument("--ema", type=float, default=None)
    ap.add_argument("--global-batch", type=int, default=16)
    ap.add_argument("--dropout", type=float, default=0.1)
    args = ap.parse_args()
    model, _ = run(args.out_dir, args.steps, args.kill_at, args.ema, args.global_batch, args.dropout)
    if int(os.environ.get("RANK", "0")) == 0:
        from safetensors.torch import save_file

        save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()},
            str(args.out_dir / "final.safetensors"),
        )
    sys.exit(0)

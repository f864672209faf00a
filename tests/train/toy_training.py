"""A tiny, fully deterministic training job used by the trainer tests (also run as a script under torchrun).

    python toy_training.py OUT_DIR STEPS [--kill-at K] [--ema D] [--global-batch B] [--dropout P]
        [--strategy ddp|fsdp2] [--precision fp32|bf16-mixed|bf16] [--ac] [--accum N]

Trains a small residual MLP (two "transformer blocks", so FSDP2 shards per block and activation checkpointing has
units to recompute) to regress y = sin(x0) + x1 / 2 from a fixed pseudo-random data set. ``--kill-at K``
SIGKILLs the process while drawing the batch of step K (mid-run, between checkpoints). Dropout draws are per
rank, so comparisons across world sizes pass ``--dropout 0``. Rank 0 writes ``OUT_DIR/final.safetensors``.
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


class Block(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2, self.drop = (
            nn.Linear(width, 2 * width),
            nn.Linear(2 * width, width),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.drop(torch.nn.functional.gelu(self.fc1(x))))


class Toy(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 16)
        self.blocks = nn.ModuleList(Block(16, dropout) for _ in range(2))
        self.head = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)

    def transformer_blocks(self) -> list[nn.Module]:
        return list(self.blocks)

    def freezable_parts(self) -> dict[str, nn.Module]:
        return {"input": self.inp}


def make_model(dropout: float = 0.1) -> Toy:
    torch.manual_seed(1234)
    return Toy(dropout)


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
        err = model(batch["x"]).float() - batch["y"]
        return TensorDict(
            {"loss_mse": err.pow(2).mean(), "abs_err": err.abs().mean().detach()}, batch_size=[]
        )

    return loss_fn


def toy_config(steps: int, ema: float | None = None, **parallel) -> TrainerConfig:
    return TrainerConfig(
        steps=steps,
        lr=1e-2,
        warmup_steps=5,
        checkpoint_every=10,
        log_every=5,
        progress=False,
        ema_decay=ema,
        **parallel,
    )


def run(
    out_dir: Path,
    steps: int,
    kill_at: int | None = None,
    ema: float | None = None,
    global_batch: int = 16,
    dropout: float = 0.1,
    **parallel,
):
    model = make_model(dropout)
    result = train(
        model,
        make_loss_fn(model),
        make_batch_fn(global_batch, kill_at),
        toy_config(steps, ema, **parallel),
        out_dir,
    )
    if result.final_weights is not None:
        from safetensors.torch import save_file

        save_file(result.final_weights, str(Path(out_dir) / "final.safetensors"))
    return model, result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("steps", type=int)
    ap.add_argument("--kill-at", type=int, default=None)
    ap.add_argument("--ema", type=float, default=None)
    ap.add_argument("--global-batch", type=int, default=16)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--strategy", default="ddp")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--ac", action="store_true")
    ap.add_argument("--accum", type=int, default=1)
    args = ap.parse_args()
    run(
        args.out_dir,
        args.steps,
        args.kill_at,
        args.ema,
        args.global_batch,
        args.dropout,
        strategy=args.strategy,
        precision=args.precision,
        activation_checkpointing=args.ac,
        grad_accumulation=args.accum,
    )
    sys.exit(0)

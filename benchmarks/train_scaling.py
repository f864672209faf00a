"""Training throughput and memory per rank under the ``ddp`` and ``fsdp2`` strategies, on 1 and 2 ranks.

    python benchmarks/train_scaling.py                      # CPU: gloo, a 119M-parameter decoder, 4 torchrun jobs
    python benchmarks/train_scaling.py --depth 2 --steps 4  # a quick look
    python benchmarks/train_scaling.py --device cuda --nproc 1 2 4

Each job runs ``recap.train.train`` (the same path ``recap train-policy`` takes) on a synthetic Gemma-style decoder
(``recap_pi06.backbone.Decoder`` built from a ``DecoderShape``: width 768, 10 layers, MLP 3072, 32k vocabulary;
next-token loss on random tokens) and reports, per rank: samples/s (the mean of the logged windows after the first,
so start-up is not counted), the bytes of parameters, gradients and AdamW state the rank holds (its shards under
FSDP2), and the peak resident set size of the process. The ratios printed last compare FSDP2 with DDP at the same
world size, measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from tensordict import TensorDict
from torch import nn


def decoder_lm(width: int, depth: int, vocab: int) -> nn.Module:
    from recap_pi06.backbone import Decoder
    from recap_pi06.config import DecoderShape

    heads = width // 64
    shape = DecoderShape(
        width=width, depth=depth, num_heads=heads, num_kv_heads=heads, head_dim=64, mlp_dim=4 * width
    )

    class DecoderLM(nn.Module):
        """Next-token prediction over random ids: the decoder, its tied output head, and its blocks declared."""

        def __init__(self) -> None:
            super().__init__()
            self.decoder = Decoder(shape, vocab)

        def transformer_blocks(self) -> list[nn.Module]:
            return list(self.decoder.layers)

        def loss(self, batch: TensorDict) -> TensorDict:
            ids = batch["ids"]
            b, n = ids.shape
            positions = torch.arange(n, device=ids.device).expand(b, n)
            mask = torch.ones(n, n, dtype=torch.bool, device=ids.device).tril().expand(b, n, n)
            hidden, _ = self.decoder(self.decoder.embed_tokens(ids), positions, mask)
            logits = self.decoder.logits(hidden[:, :-1], 0, vocab).float()
            nll = nn.functional.cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
            return TensorDict({"loss_nll": nll}, batch_size=[])

    return DecoderLM()


def worker(args: argparse.Namespace) -> None:
    """One rank of one job (started by torchrun): train, then rank 0 prints every rank's figures as JSON."""
    import torch.distributed as dist

    from recap.train import TrainerConfig, train
    from recap.train.distributed import local_device

    device = local_device() if args.device == "cuda" else torch.device("cpu")
    if dist.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(0)
    model = decoder_lm(args.width, args.depth, args.vocab).to(device)
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0

    def batch_fn(step: int, rank: int, world: int) -> TensorDict:
        g = torch.Generator().manual_seed(step)
        ids = torch.randint(0, args.vocab, (args.global_batch, args.seq), generator=g)
        return TensorDict({"ids": ids[rank::world]}, batch_size=[args.global_batch // world])

    config = TrainerConfig(
        steps=args.steps,
        lr=1e-4,
        warmup_steps=0,
        log_every=2,
        checkpoint_every=10**9,
        keep_checkpoints=1,
        progress=False,
        strategy=args.strategy,
        precision=args.precision,
        activation_checkpointing=args.ac,
    )
    result = train(model, model.loss, batch_fn, config, args.out)
    lines = (
        [json.loads(x) for x in (Path(args.out) / "metrics.jsonl").read_text().splitlines()]
        if rank == 0
        else []
    )
    figures = {
        **result.memory,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "params": sum(p.numel() for p in model.parameters()) * (world if args.strategy == "fsdp2" else 1),
    }
    gathered = [figures]
    if dist.is_initialized():
        gathered = [None] * world
        dist.all_gather_object(gathered, figures)
    if rank == 0:
        steady = [ln["steps_per_s"] for ln in lines[1:]] or [lines[-1]["steps_per_s"]]
        sps = sum(steady) / len(steady) * args.global_batch
        print("RESULT " + json.dumps({"samples_per_s": sps, "ranks": gathered}))
    if dist.is_initialized():
        dist.destroy_process_group()


def launch(args: argparse.Namespace, strategy: str, nproc: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = Path(tempfile.mkdtemp(prefix="train-scaling-"))
    passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k in PASSED]
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", f"--master-port={port}",
           "--master-addr=127.0.0.1", __file__, "--worker", f"--strategy={strategy}", f"--out={out}",
           *passthrough, *(["--ac"] if args.ac else [])]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    found = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not found:
        raise SystemExit(f"{strategy} x{nproc} failed:\n{proc.stderr[-4000:]}")
    return json.loads(found[-1][len("RESULT ") :])


PASSED = ("width", "depth", "vocab", "seq", "global_batch", "steps", "precision", "device")


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    ap.add_argument("--strategy", default="ddp", help=argparse.SUPPRESS)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--vocab", type=int, default=32_000)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--global-batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--ac", action="store_true", help="activation checkpointing per block")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="OMP threads per rank")
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    rows = {}
    for strategy in ("ddp", "fsdp2"):
        for nproc in args.nproc:
            rows[(strategy, nproc)] = launch(args, strategy, nproc)
            print(f"done: {strategy} x{nproc}", file=sys.stderr, flush=True)
    params = rows[("ddp", args.nproc[0])]["ranks"][0]["params"]
    print(f"model: {params / 1e6:.0f}M parameters (width {args.width}, depth {args.depth}, vocab {args.vocab}); "
          f"global batch {args.global_batch} x {args.seq} tokens; {args.precision}; device {args.device}")  # fmt: skip
    print("| strategy | ranks | samples/s | params MiB/rank | grads MiB/rank | AdamW state MiB/rank | "
          "params+grads+state MiB/rank | peak RSS MiB/rank (max) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for (strategy, nproc), row in rows.items():
        r = max(row["ranks"], key=lambda x: x["peak_rss_bytes"])
        total = r["param_bytes"] + r["grad_bytes"] + r["optimizer_bytes"]
        print(f"| {strategy} | {nproc} | {row['samples_per_s']:.2f} | {mib(r['param_bytes'])} | "
              f"{mib(r['grad_bytes'])} | {mib(r['optimizer_bytes'])} | {mib(total)} | {mib(r['peak_rss_bytes'])} |")  # fmt: skip
    for nproc in args.nproc:
        ddp, fsdp = rows[("ddp", nproc)], rows[("fsdp2", nproc)]
        print(f"{nproc} rank(s), FSDP2 / DDP: params+grads+state per rank {_state(fsdp) / _state(ddp):.2f}, "
              f"peak RSS {_rss(fsdp) / _rss(ddp):.2f}, samples/s {fsdp['samples_per_s'] / ddp['samples_per_s']:.2f}")  # fmt: skip


def _state(row: dict) -> int:
    r = row["ranks"][0]
    return r["param_bytes"] + r["grad_bytes"] + r["optimizer_bytes"]


def _rss(row: dict) -> int:
    return max(x["peak_rss_bytes"] for x in row["ranks"])


if __name__ == "__main__":
    main()

"""Inference and training speed of the pi0.6-style VLA (plugin recap-pi06) on CPU, plus the FAST tokenizer's
reconstruction error and compression at several scales.

    python benchmarks/vla_inference.py [--preset pi06-small] [--threads 2] [--repeats 5]

Prints, for one observation (batch 1) of an ALOHA-like robot (3 cameras 96x128, 14-D state/action, 7-D env
state): time per 50-step action chunk with and without the KV cache (and their ratio), with the sub-task given
and with greedy sub-task decoding; with CFG (guidance 2) and without (ratio); training samples per second
(forward + backward + AdamW, batch 32); FAST RMSE and tokens per chunk on held-out smooth chunks.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch
from recap_pi06.config import POLICY_PRESETS
from recap_pi06.fast import FastTokenizer
from recap_pi06.policy import Pi06Policy
from tensordict import NonTensorStack, TensorDict

from recap.data import keys
from recap.data.spec import CameraSpec, RobotSpec
from recap.data.stats import NormStats


def smooth_chunks(n: int, horizon: int, dims: int, seed: int) -> torch.Tensor:
    """An offset plus three low-frequency cosines plus a little noise, per dimension (normalised units)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, horizon)[None, :, None]
    out = torch.randn(n, 1, dims, generator=g)
    for k in (1, 2, 3):
        amp = torch.randn(n, 1, dims, generator=g) / k
        phase = torch.rand(n, 1, dims, generator=g) * 2 * math.pi
        out = out + amp * torch.cos(math.pi * k * t + phase)
    return out + 0.01 * torch.randn(n, horizon, dims, generator=g)


def make_batch(spec: RobotSpec, size: int, horizon: int, seed: int = 0) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    data = {
        keys.STATE: torch.randn(size, spec.state_dim, generator=g),
        keys.ENV_STATE: torch.randn(size, spec.env_state_dim, generator=g),
        keys.ACTION: smooth_chunks(size, horizon, spec.action_dim, seed),
        keys.ACTION_IS_PAD: torch.zeros(size, horizon, dtype=torch.bool),
    }
    for cam in spec.cameras:
        data[cam.key] = torch.randint(0, 256, (size, *cam.shape), generator=g, dtype=torch.uint8)
    batch = TensorDict(data, batch_size=[size])
    batch.set(keys.TASK, NonTensorStack(*["transfer the cube to the other arm"] * size))
    subtasks = ["reach the cube", "grasp the cube", "hand over", "release"]
    batch.set(keys.SUBTASK, NonTensorStack(*[subtasks[i % 4] for i in range(size)]))
    return batch


def timed(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds per call, the candidates interleaved so that they see the same machine load
    (this box is shared; the minimum is the least disturbed run)."""
    for fn in fns.values():
        fn()  # warm-up
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def bench_inference(policy: Pi06Policy, obs: TensorDict, repeats: int) -> None:
    with_subtask, decode = obs, obs.exclude(keys.SUBTASK)

    def run(o, cache, guidance):
        gen = torch.Generator().manual_seed(0)
        return lambda: policy.sample_actions(o, True, guidance, generator=gen, use_cache=cache)

    steps = policy.config.num_steps
    print(f"\n== time per {policy.chunk_size}-step chunk (batch 1, {steps} Euler steps), best of {repeats}")
    limit = policy.config.max_subtask_tokens
    for label, o in (("sub-task given", with_subtask), ("sub-task decoded", decode)):
        t = timed({"cache": run(o, True, 1.0), "plain": run(o, False, 1.0)}, repeats)
        extra = f" (untrained: up to {limit} tokens + EOS)" if o is decode else ""
        print(
            f"{label:<17} KV cache {t['cache'] * 1e3:8.1f} ms | no cache {t['plain'] * 1e3:8.1f} ms | "
            f"speed-up x{t['plain'] / t['cache']:.2f}{extra}"
        )
    t = timed({"off": run(with_subtask, True, 1.0), "on": run(with_subtask, True, 2.0)}, repeats)
    print(
        f"CFG (sub-task given, cached): off {t['off'] * 1e3:.1f} ms | on (beta=2) {t['on'] * 1e3:.1f} ms | "
        f"cost x{t['on'] / t['off']:.2f}"
    )


def bench_training(policy: Pi06Policy, batch: TensorDict, steps: int) -> None:
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    ind = torch.rand(batch.batch_size[0], generator=torch.Generator().manual_seed(0)) < 0.5

    def step():
        losses = policy.per_sample_loss(batch, ind)
        opt.zero_grad()
        sum(v.mean() for v in losses.values()).backward()
        opt.step()

    seconds = timed({"step": step}, steps)["step"]
    size = batch.batch_size[0]
    print(f"\n== training: batch {size}, {seconds * 1e3:.0f} ms/step -> {size / seconds:.1f} samples/s")


def bench_fast(horizon: int, dims: int) -> None:
    train, held = smooth_chunks(512, horizon, dims, seed=10), smooth_chunks(128, horizon, dims, seed=11)
    print(
        f"\n== FAST on held-out smooth chunks [{horizon}x{dims}] (normalised units), vocab = alphabet + 1024"
    )
    print(f"{'scale':>6} {'rmse':>8} {'max err':>8} {'tokens/chunk':>13} {'alphabet':>9} {'raw coeffs':>11}")
    for scale in (2.0, 5.0, 10.0, 20.0, 50.0):
        probe = FastTokenizer(horizon, dims, 16, scale).quantize(train)
        alphabet = int(probe.max() - probe.min()) + 1
        fast = FastTokenizer(horizon, dims, alphabet + 1024, scale)
        fast.fit(train)
        ids = fast.encode(held)
        dec = torch.stack([fast.decode(r) for r in ids])
        err = dec - held
        tokens = sum(len(r) for r in ids) / len(ids)
        print(
            f"{scale:>6.0f} {err.square().mean().sqrt():>8.4f} {err.abs().max():>8.4f} {tokens:>13.1f} {alphabet:>9} {horizon * dims:>11}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="pi06-small", choices=sorted(POLICY_PRESETS))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1: this shared 2-core box)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--train-batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = POLICY_PRESETS[args.preset]
    spec = RobotSpec(
        cameras=tuple(CameraSpec(c, 96, 128) for c in ("cam_high", "cam_left_wrist", "cam_right_wrist")),
        env_state_dim=7,
    )
    data = make_batch(spec, 256, config.chunk_size)
    stats = NormStats.compute(
        {
            keys.STATE: data[keys.STATE],
            keys.ENV_STATE: data[keys.ENV_STATE],
            keys.ACTION: data[keys.ACTION].flatten(0, 1),
        }
    )
    policy = Pi06Policy(config, spec, stats)
    fitted = policy.fit_to_data(data)
    n_params = sum(p.numel() for p in policy.parameters())
    prefix = policy.trunk.prefix(data[:1]).width
    print(
        f"preset {args.preset}: {n_params / 1e6:.2f}M parameters, {torch.get_num_threads()} CPU threads, "
        f"prefix {prefix} tokens, fitted {fitted}"
    )
    with torch.no_grad():
        bench_inference(policy, data[:1].exclude(keys.ACTION, keys.ACTION_IS_PAD), args.repeats)
    bench_training(policy, data[: args.train_batch], max(3, args.repeats))
    bench_fast(config.chunk_size, spec.action_dim)


if __name__ == "__main__":
    main()

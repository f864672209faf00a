"""Policy server overhead and throughput on loopback, against in-process inference in the same run.

    nice -n 10 python benchmarks/serving.py                 # 20 s per client count
    nice -n 10 python benchmarks/serving.py --seconds 60    # the 60-second load run

One ALOHA observation in openpi's layout (4 cameras, uint8 3x224x224 each, 14-d state, a prompt) and the MLP flow
policy at the demo size (hidden 384, depth 3, H = 20, reading cam_high). Measured:

- round trip of one request from one client, and round trip minus the server-reported policy time (the cost of
  serving: msgpack, the WebSocket, validation, queueing), p50 and p99;
- requests/s with 1, 4 and 8 client processes sending back to back for --seconds each (the server batches
  what queues up, up to --max-batch), with the mean batch size the server ran;
- in-process inference of the same observation: batch 1 (what one robot gets without a server) and batch 8.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time

import numpy as np
import torch
from tensordict import NonTensorStack

from recap.builtins.mlp_flow import FlowMLPConfig, FlowMLPPolicy
from recap.data.spec import CameraSpec, RobotSpec
from recap.deploy import PolicyServer, PolicyService, RemotePolicy

CAMERAS = ("cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist")
SPEC = RobotSpec(cameras=tuple(CameraSpec(c, 224, 224) for c in CAMERAS), fps=50)


def aloha_request(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "state": rng.normal(size=14).astype(np.float32),
        "images": {c: rng.integers(0, 256, size=(3, 224, 224), dtype=np.uint8) for c in CAMERAS},
        "prompt": "transfer the cube",
    }


def client(url: str, seconds: float, ready, go, queue) -> None:
    torch.set_num_threads(1)
    remote, request = RemotePolicy(url), aloha_request()
    ready.put(True)
    go.wait()
    latencies, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        remote.infer(request)
        latencies.append(time.perf_counter() - t0)
    queue.put(latencies)


def percentiles(values_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(values_s) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def in_process(service: PolicyService, batch: int, seconds: float) -> tuple[float, float]:
    """(median ms per call, observations per second) of the policy alone."""
    request = service.parse(aloha_request())
    obs = torch.stack([request.obs] * batch)
    obs["task"] = NonTensorStack.from_list([request.prompt] * batch)
    times, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        t0 = time.perf_counter()
        with torch.no_grad():
            service.policy.sample_actions(obs, request.indicator, request.guidance)
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    return median * 1000.0, batch / median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration per client count")
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--clients", type=str, default="1,4,8")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server's policy")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = FlowMLPConfig(hidden=384, depth=3, chunk_size=20, camera="cam_high")
    service = PolicyService(FlowMLPPolicy(config, SPEC).eval(), SPEC, policy_id="bench")
    one_ms, one_rate = in_process(service, 1, min(args.seconds, 5.0))
    eight_ms, eight_rate = in_process(service, 8, min(args.seconds, 5.0))
    print(
        f"request: 4 cameras x 3x224x224 uint8 ({sum(c.nbytes for c in aloha_request()['images'].values()) / 1e6:.2f} MB)"
    )
    print("\n| in-process | ms per call (median) | observations/s |\n|---|---|---|")
    print(f"| batch 1 | {one_ms:.2f} | {one_rate:.0f} |\n| batch 8 | {eight_ms:.2f} | {eight_rate:.0f} |")

    with PolicyServer(service, port=0, max_batch=args.max_batch) as server:
        remote, request = RemotePolicy(server.url), aloha_request()
        round_trips, overheads = [], []
        for _ in range(args.round_trips):
            t0 = time.perf_counter()
            reply = remote.infer(request)
            rtt = time.perf_counter() - t0
            round_trips.append(rtt)
            overheads.append(rtt - reply["policy_timing"]["infer_ms"] / 1000.0)
        remote.close()
        rtt50, rtt99 = percentiles(round_trips)
        over50, over99 = percentiles(overheads)
        print("\n| one client, one request at a time | p50 (ms) | p99 (ms) |\n|---|---|---|")
        print(
            f"| round trip | {rtt50:.2f} | {rtt99:.2f} |\n| round trip minus policy time | {over50:.2f} | {over99:.2f} |"
        )

        print("\n| clients | requests/s | vs in-process batch 1 | p50 (ms) | p99 (ms) | mean batch |")
        print("|---|---|---|---|---|---|")
        ctx = mp.get_context("spawn")
        for n in [int(c) for c in args.clients.split(",")]:
            queue, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
            procs = [
                ctx.Process(target=client, args=(server.url, args.seconds, ready, go, queue))
                for _ in range(n)
            ]
            for p in procs:
                p.start()
            for _ in procs:  # every client has imported torch and connected
                ready.get()
            server.batch_sizes.clear()
            go.set()
            latencies = [x for _ in procs for x in queue.get()]
            for p in procs:
                p.join()
            rate = len(latencies) / args.seconds
            p50, p99 = percentiles(latencies)
            batches = server.batch_sizes
            mean_batch = sum(batches) / max(len(batches), 1)
            print(
                f"| {n} | {rate:.0f} | {rate / one_rate:.2f}x | {p50:.2f} | {p99:.2f} | {mean_batch:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

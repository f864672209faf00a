"""Value labelling throughput: frames valued per second by the default value network ("conv-mlp" under the
"distributional" estimator, 201 bins), batched across episode boundaries (what `recap label` does) against
frame-by-frame, measured in the same run through the same ``recap.train.labeling.predict_values`` path.

    python benchmarks/value_labeling.py                       # 3 cameras 96x128, 8 episodes x 250 steps
    python benchmarks/value_labeling.py --batch-size 512 --device cuda

The frame-by-frame baseline values only the first ``--baseline-frames`` frames (it is slow) and is reported per
frame; both use the same weights and inputs and their values are checked to agree.
"""

from __future__ import annotations

import argparse
import time

import torch
from recap_distributional_value import DistributionalValue, DistributionalValueConfig
from tensordict import TensorDict

from recap.data import keys
from recap.data.spec import aloha_spec
from recap.train.labeling import observation, predict_values


def synthetic_episode(length: int, spec, seed: int) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    steps = {
        k.key: torch.randint(0, 256, (length, *k.shape), generator=g, dtype=torch.uint8) for k in spec.cameras
    }
    steps[keys.STATE] = torch.randn(length, spec.state_dim, generator=g)
    return TensorDict(steps, batch_size=[length])


def timed(
    estimator, episodes, batch_size: int, device: torch.device
) -> tuple[float, dict[str, torch.Tensor]]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        values = predict_values(estimator, episodes, batch_size=batch_size, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--length", type=int, default=250)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--baseline-frames", type=int, default=200)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    spec = aloha_spec(args.height, args.width)
    torch.manual_seed(0)
    estimator = DistributionalValue(DistributionalValueConfig(), spec).to(device).eval()
    n_params = sum(p.numel() for p in estimator.parameters())
    task = "hand the cube over"
    episodes = [
        (f"ep{i}", observation(synthetic_episode(args.length, spec, i), task).to(device))
        for i in range(args.episodes)
    ]
    total = args.episodes * args.length
    timed(estimator, episodes[:1], args.batch_size, device)  # warm-up (allocator, kernels)

    batched_s, batched = timed(estimator, episodes, args.batch_size, device)
    first = episodes[0][1][: args.baseline_frames]
    single_s, single = timed(estimator, [("ep0", first)], 1, device)
    n_single = first.batch_size[0]
    max_diff = (single["ep0"] - batched["ep0"][:n_single]).abs().max().item()

    batched_fps = total / batched_s
    single_fps = n_single / single_s
    print(f"value network: conv-mlp, {n_params / 1e6:.2f}M parameters, 201 bins; {len(spec.cameras)} cameras "
          f"{args.height}x{args.width}; device {device}, torch threads {torch.get_num_threads()}")  # fmt: skip
    print(
        f"batched (batch {args.batch_size}):  {total} frames in {batched_s:.2f} s = {batched_fps:,.0f} frames/s"
    )
    print(f"frame by frame (batch 1): {n_single} frames in {single_s:.2f} s = {single_fps:,.0f} frames/s")
    print(
        f"ratio batched / frame-by-frame: {batched_fps / single_fps:.1f}x  (max |value difference| {max_diff:.2e})"
    )


if __name__ == "__main__":
    main()

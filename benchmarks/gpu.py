"""GPU readiness in one script: training throughput, model FLOP utilisation, peak memory and action-chunk latency of
pi0.5-shaped and pi0.6-shaped (Gemma 3 4B backbone) VLAs with random weights, and one timed stage of the
``demo-gpu`` loop preset, extrapolated to the whole run.

    python benchmarks/gpu.py            # on a GPU machine: installs what is missing, then runs (about 8 min)
    python benchmarks/gpu.py --plan     # print what it would run and exit (what it does without a GPU)
    python benchmarks/gpu.py --tiny     # the same code path at pi06-tiny shapes (CPU or GPU), to check the script
    python benchmarks/gpu.py --json results.json --peak-tflops 989

On a bare machine it installs the repository (``pip install -e . plugins/recap-pi06
plugins/recap-distributional-value``, which pulls torch with CUDA from PyPI) and restarts itself. For each model:

* training: ``recap.train.train`` (the path ``recap train-policy`` takes) with ``precision="bf16-mixed"`` (fp32
  master weights and AdamW state, bf16 compute) and activation checkpointing per block, on synthetic batches of
  3 cameras at 224x224, 14-D state and actions, 50-step chunks; samples/s is the mean of the logged windows after
  the first (start-up excluded);
* MFU: model FLOPs per sample (counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward+backward
  without recomputation) times samples/s, over the GPU's dense bf16 peak (a table by device name, or
  ``--peak-tflops``);
* peak memory: ``torch.cuda.max_memory_allocated`` during training;
* latency: one 50-action chunk for one observation, KV cache, 10 Euler steps, bf16 autocast, with the sub-task given,
  without and with classifier-free guidance (beta = 2: two expert passes per step); median of 10 after 3 warm-ups.

Tokenizers are left unfitted (byte-level text, raw FAST coefficients), so sequences are at their longest; the
sequence length is printed. Collection and evaluation (the CPU simulator) are not part of the extrapolation.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEEDED = (
    "torch",
    "tensordict",
    "recap",
    "recap_pi06",
    "recap_distributional_value",
    "recap_bimanual",
    "recap_advantage_conditioning",
)
#: the VLA, and what the demo-gpu preset names (simulator, value estimator, extractor)
PLUGINS = (
    "plugins/recap-pi06",
    "plugins/recap-distributional-value",
    "plugins/recap-bimanual",
    "plugins/recap-advantage-conditioning",
)
#: dense bf16 tensor-core peak, FLOP/s, by a substring of ``torch.cuda.get_device_name()``
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "B200": 2250e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}

#: SigLIP So400m/14 at 224 px
SO400M = {"width": 1152, "depth": 27, "heads": 16, "mlp_dim": 4304, "patch_size": 14, "image_size": 224}
#: action expert of both (width 1024, MLP 4096, the backbone's head layout)
EXPERT = {"width": 1024, "mlp_dim": 4096}
#: policy shapes as data: pi0.5 = Gemma 2B + SigLIP So400m + a width-1024 expert (3.36B); pi0.6 = Gemma 3 4B (5.16B)
MODELS = {
    "pi0.5-shaped": {
        "vision": SO400M,
        "backbone": {"width": 2048, "depth": 18, "num_heads": 8, "num_kv_heads": 1, "head_dim": 256,
                     "mlp_dim": 16384},
        "expert": EXPERT,
        "text_vocab_size": 257_152,
        "fast_vocab_size": 2048,
    },
    "pi0.6-shaped (Gemma 3 4B)": {
        "vision": SO400M,
        "backbone": {"width": 2560, "depth": 34, "num_heads": 8, "num_kv_heads": 4, "head_dim": 256,
                     "mlp_dim": 10240},
        "expert": EXPERT,
        "text_vocab_size": 262_144,
        "fast_vocab_size": 2048,
    },
}  # fmt: skip
TINY = {
    "vision": {"width": 16, "depth": 1, "heads": 2, "mlp_dim": 32, "patch_size": 8, "image_size": 16},
    "backbone": {"width": 32, "depth": 2, "num_heads": 2, "num_kv_heads": 1, "head_dim": 16, "mlp_dim": 64},
    "expert": {"width": 16, "mlp_dim": 32},
    "text_vocab_size": 300,
    "fast_vocab_size": 320,
    "chunk_size": 10,
    "max_fast_tokens": 48,
}
COMMON = {"chunk_size": 50, "max_prompt_tokens": 48, "max_subtask_tokens": 24, "max_fast_tokens": 256}


def settings(tiny: bool) -> dict:
    """Sizes of every measurement (tiny: a few seconds on a CPU)."""
    if tiny:
        return {"batch": 4, "steps": 4, "image": 32, "cameras": 1, "latency_repeats": 2, "demo_steps": 4}
    return {"batch": 32, "steps": 8, "image": 224, "cameras": 3, "latency_repeats": 10, "demo_steps": 40}


def print_plan(args: argparse.Namespace) -> None:
    s = settings(args.tiny)
    models = {"pi06-tiny": TINY} if args.tiny else MODELS
    print("benchmarks/gpu.py would run, on one GPU (none found here, so nothing runs):")
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"  0. pip install -e {ROOT} "
            + " ".join(str(ROOT / p) for p in PLUGINS)
            + f"  (missing: {missing})"
        )
    for i, (name, shape) in enumerate(models.items(), 1):
        b = shape["backbone"]
        print(f"  {i}. {name}: decoder width {b['width']} x {b['depth']} layers, vision width "
              f"{shape['vision']['width']} x {shape['vision']['depth']}, expert width {shape['expert']['width']}; "
              f"{s['cameras']} cameras {s['image']}x{s['image']}")  # fmt: skip
        print(f"     train {s['steps']} steps of batch {s['batch']} (bf16-mixed, activation checkpointing): "
              "samples/s, MFU, peak memory")  # fmt: skip
        print(
            f"     latency of one chunk (KV cache, 10 flow steps) without / with CFG, median of {s['latency_repeats']}"
        )
    print(
        f"  {len(models) + 1}. demo-gpu preset: {s['demo_steps']} policy_pretrain steps timed, the run extrapolated"
    )


def ensure_installed(no_install: bool) -> None:
    """Install the repository and its plugins when something is missing, then restart so they load.

    Outside a virtual environment (a bare machine's system Python may refuse pip) it makes ``.venv-gpu`` in the
    repository and restarts under it.
    """
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if not missing:
        return
    if no_install or os.environ.get("RECAP_GPU_BENCH_INSTALLED"):
        raise SystemExit(f"missing {missing} and installing is off (or did not help); install the repository")
    python = Path(sys.executable)
    if sys.prefix == sys.base_prefix:
        venv = ROOT / ".venv-gpu"
        if not (venv / "bin" / "python").exists():
            subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        python = venv / "bin" / "python"
    packages = [x for p in ("", *PLUGINS) for x in ("-e", str(ROOT / p))]
    cmd = [str(python), "-m", "pip", "install", "-q", *packages]
    print("installing:", " ".join(cmd), flush=True)
    subprocess.check_call(cmd)
    os.environ["RECAP_GPU_BENCH_INSTALLED"] = "1"
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


# -- measurements (torch imported from here on) ----------------------------------------------------------------


def robot_spec(cameras: int, height: int, width: int | None = None):
    from recap.data.spec import CameraSpec, RobotSpec

    names = ("cam_high", "cam_left_wrist", "cam_right_wrist")[:cameras]
    cams = tuple(CameraSpec(n, height, width or height) for n in names)
    return RobotSpec(cameras=cams, state_dim=14, action_dim=14, env_state_dim=0, joint_names=())


def build_policy(shape: dict, spec, device):
    import torch
    from recap_pi06.config import Pi06Config
    from recap_pi06.policy import Pi06Policy

    from recap import config as recap_config
    from recap.plugins import get_registry

    data = {**COMMON, **shape, "uses_env_state": False, "noise_scale": 1.0}
    cfg = recap_config.from_dict(Pi06Config, data, get_registry())
    torch.manual_seed(0)
    with torch.device(device):
        return Pi06Policy(cfg, spec, None)


def batch_fn_for(spec, global_batch: int, chunk: int, device):
    from recap.testing.policy_suite import make_batch

    def batch_fn(step: int, rank: int, world: int):
        batch = make_batch(spec, batch_size=global_batch, chunk_size=chunk, seed=step)
        return (batch[rank::world] if world > 1 else batch).to(device)

    return batch_fn


def flops_per_sample(policy, batch) -> float:
    """Forward + backward FLOPs per sample, counted by torch (no activation recomputation)."""
    from torch.utils.flop_counter import FlopCounterMode

    policy.train()
    counter = FlopCounterMode(display=False)
    with counter, autocast(batch_device(policy)):
        out = policy.per_sample_loss(batch, batch["indicator"])
        sum(v.float().mean() for v in out.values()).backward()
    policy.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch.batch_size[0]


def batch_device(policy):
    return next(policy.parameters()).device


def measure_training(policy, spec, s: dict, device, out: Path, precision: str) -> dict:
    import torch

    from recap.train import TrainerConfig, train

    batch_fn = batch_fn_for(spec, s["batch"], policy.chunk_size, device)
    probe = batch_fn(0, 0, 1)[:2].to(device)
    flops = flops_per_sample(policy, probe)
    with torch.no_grad():
        flags = torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)
        tokens, _ = policy.training_sequence(probe, *flags, policy._normalized_chunks(probe))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    config = TrainerConfig(
        steps=s["steps"], lr=1e-5, warmup_steps=0, log_every=2, checkpoint_every=None, progress=False,
        precision=precision, activation_checkpointing=True, device=device.type,
    )  # fmt: skip
    result = train(policy, lambda b: _loss(policy, b), batch_fn, config, out)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steady = [ln["steps_per_s"] for ln in lines[1:]] or [lines[-1]["steps_per_s"]]
    samples_per_s = statistics.mean(steady) * s["batch"]
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {
        "params": sum(p.numel() for p in policy.parameters()),
        "sequence_tokens": int(tokens.width),
        "flops_per_sample": flops,
        "samples_per_s": samples_per_s,
        "achieved_tflops": flops * samples_per_s / 1e12,
        "peak_memory_gib": None if peak is None else peak / 2**30,
        "final_loss": result.metrics.get("loss"),
        "precision": precision,
    }


def precision_for(device) -> str:
    """bf16 on the GPU; fp32 on the CPU (``--tiny`` checks the code path; CPU bf16 is slow and not the point)."""
    return "bf16-mixed" if device.type == "cuda" else "fp32"


def autocast(device):
    import contextlib

    import torch

    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


def _loss(policy, batch):
    from tensordict import TensorDict

    out = policy.per_sample_loss(batch, batch["indicator"])
    return TensorDict({f"loss_{k}": v.float().mean() for k, v in out.items()}, batch_size=[])


def measure_latency(policy, spec, repeats: int, device) -> dict:
    import torch

    from recap.testing.policy_suite import make_batch, observation_of

    obs = observation_of(make_batch(spec, batch_size=1, chunk_size=policy.chunk_size, seed=1)).to(device)
    obs.set("subtask", "pick up the cube")
    policy.eval()
    if device.type == "cuda":
        policy.to(torch.bfloat16)  # serving weights in bf16 (autocast still handles fp32 inputs)

    def timed(guidance: float) -> float:
        times = []
        for i in range(3 + repeats):
            sync(device)
            start = time.perf_counter()
            with autocast(device):
                policy.sample_actions(obs, True, guidance, use_cache=True)
            sync(device)
            if i >= 3:
                times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    return {"chunk_ms": timed(1.0), "chunk_cfg_ms": timed(2.0)}


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_demo_stage(s: dict, device, out: Path, tiny: bool) -> dict:
    """Time ``demo-gpu``'s policy_pretrain stage for a few steps on synthetic windows; extrapolate all training."""
    import attrs

    from recap import config as recap_config
    from recap.plugins import get_registry
    from recap.train import train

    reg = get_registry()
    loop = recap_config.resolve_preset("demo-gpu", reg)
    backend = loop.backend
    spec = robot_spec(len(backend.cameras), backend.image_height, backend.image_width)
    policy_cfg = loop.policy if not tiny else attrs.evolve(loop.policy, **_tiny_shapes())
    import torch

    torch.manual_seed(0)
    with torch.device(device):
        policy = reg.build(policy_cfg, spec, None)
    stage = loop.policy_pretrain
    batch = stage.batch_size if not tiny else 8
    trainer = attrs.evolve(stage.trainer, steps=s["demo_steps"], log_every=max(2, s["demo_steps"] // 4),
                           checkpoint_every=None, progress=False, device=device.type,
                           precision=precision_for(device))  # fmt: skip
    train(
        policy, lambda b: _loss(policy, b), batch_fn_for(spec, batch, policy.chunk_size, device), trainer, out
    )
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps_per_s = statistics.mean([ln["steps_per_s"] for ln in lines[1:]] or [lines[-1]["steps_per_s"]])
    stages = {
        "policy_pretrain": loop.policy_pretrain.trainer.steps,
        "policy_sft": loop.policy_sft.trainer.steps,
        "policy_finetune": loop.policy_finetune.trainer.steps * loop.iterations,
    }
    total = sum(stages.values())
    return {
        "steps_per_s": steps_per_s,
        "batch": batch,
        "policy_steps": stages,
        "policy_training_min": total / steps_per_s / 60,
    }


def _tiny_shapes() -> dict:
    from recap_pi06.config import DecoderShape, ExpertShape, VisionShape

    return {
        "vision": VisionShape(**TINY["vision"]),
        "backbone": DecoderShape(**TINY["backbone"]),
        "expert": ExpertShape(**TINY["expert"]),
        "max_fast_tokens": TINY["max_fast_tokens"],
    }


def peak_flops(device, override: float | None) -> float | None:
    import torch

    if override:
        return override * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def run(args: argparse.Namespace) -> dict:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(1)  # tiny models: one thread avoids spin-waiting on a shared machine
    s = settings(args.tiny)
    models = {"pi06-tiny": TINY} if args.tiny else MODELS
    peak = peak_flops(device, args.peak_tflops)
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "peak_bf16_tflops": None if peak is None else peak / 1e12, "models": {}}  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="recap-gpu-bench-"))
    try:
        spec = robot_spec(s["cameras"], s["image"])
        for name, shape in models.items():
            started = time.perf_counter()
            policy = build_policy(shape, spec, device)
            try:
                row = measure_training(policy, spec, s, device, work / name.split()[0], precision_for(device))
            except (
                torch.cuda.OutOfMemoryError
            ):  # fp32 master weights + AdamW do not fit: all-bf16 halves them
                del policy
                torch.cuda.empty_cache()
                policy = build_policy(shape, spec, device)
                row = measure_training(policy, spec, s, device, work / (name.split()[0] + "-bf16"), "bf16")
            row["mfu"] = None if peak is None else row["achieved_tflops"] * 1e12 / peak
            row.update(measure_latency(policy, spec, s["latency_repeats"], device))
            row["wall_s"] = time.perf_counter() - started
            report["models"][name] = row
            print_row(name, row, flush=True)
            del policy
            if device.type == "cuda":
                torch.cuda.empty_cache()
        report["demo_gpu"] = measure_demo_stage(s, device, work / "demo", args.tiny)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_report(report)
    return report


def measure_model(name: str, shape: dict, spec, s: dict, device, work: Path, peak: float | None) -> dict:
    """Train, then time chunks, for one model; fp32 master weights that do not fit fall back to all-bf16."""
    started = time.perf_counter()
    policy = build_policy(shape, spec, device)
    row = None
    try:
        row = measure_training(policy, spec, s, device, work / name.split()[0], precision_for(device))
    except Exception as exc:
        if "out of memory" not in str(exc).lower():
            raise
    if row is None:  # outside the except block, so the failed step's tensors can be freed
        del policy
        free(device)
        policy = build_policy(shape, spec, device)
        row = measure_training(policy, spec, s, device, work / (name.split()[0] + "-bf16"), "bf16")
    row["mfu"] = None if peak is None else row["achieved_tflops"] * 1e12 / peak
    row.update(measure_latency(policy, spec, s["latency_repeats"], device))
    row["wall_s"] = time.perf_counter() - started
    return row


def free(device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def print_row(name: str, row: dict, flush: bool = False) -> None:
    print(f"[{name}] {row['params'] / 1e6:.1f}M params, {row['sequence_tokens']} tokens/sample, "
          f"{row['samples_per_s']:.2f} samples/s, {row['wall_s']:.0f} s", flush=flush)  # fmt: skip


def print_report(report: dict) -> None:
    print(
        f"\ndevice: {report['device']} (torch {report['torch']}), peak bf16 {report['peak_bf16_tflops']} TFLOP/s"
    )
    print("| model | params | precision | tokens/sample | samples/s | TFLOP/s | MFU | peak memory GiB | chunk ms | "
          "chunk ms, CFG |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in report["models"].items():
        if "error" in r:
            print(f"| {name} | failed: {r['error'][:200]} |")
            continue
        mfu = "n/a" if r["mfu"] is None else f"{r['mfu']:.1%}"
        mem = "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f}"
        print(f"| {name} | {r['params'] / 1e6:,.0f}M | {r['precision']} | {r['sequence_tokens']} | {r['samples_per_s']:.2f} | "
              f"{r['achieved_tflops']:.1f} | {mfu} | {mem} | {r['chunk_ms']:.1f} | {r['chunk_cfg_ms']:.1f} |")  # fmt: skip
    d = report["demo_gpu"]
    if "error" in d:
        print(f"demo-gpu stage failed: {d['error'][:300]}")
        return
    print(f"demo-gpu policy_pretrain: {d['steps_per_s']:.2f} steps/s at batch {d['batch']}; the run's "
          f"{sum(d['policy_steps'].values())} policy steps {d['policy_steps']} take about "
          f"{d['policy_training_min']:.1f} min of training (collection and evaluation not included)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", action="store_true", help="print what would run and exit")
    ap.add_argument("--tiny", action="store_true", help="pi06-tiny shapes: checks the script on any machine")
    ap.add_argument("--no-install", action="store_true", help="never pip install")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak, TFLOP/s")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    has_gpu = shutil.which("nvidia-smi") is not None
    if args.plan or not (has_gpu or args.tiny):
        print_plan(args)
        return
    ensure_installed(args.no_install)
    report = run(args)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

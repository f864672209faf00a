"""Importing a pretrained checkpoint: time and peak memory of ``recap weights import``'s reader against the
checkpoint's size on disk, and against loading the whole state dict first (``safetensors.torch.load_file``, the
usual way), each in a fresh process.

    nice -n 10 python benchmarks/weights_import.py              # ~1.1B parameters (pi0.5 widths, fewer layers)
    python benchmarks/weights_import.py --vision-depth 27 --depth 18   # the full pi0.5 shapes (~3.4B, ~7 GB)
    python benchmarks/weights_import.py --write-only /tmp/pi05_synthetic   # then: recap weights import it

The checkpoint is synthetic (random bf16 weights) in openpi's pi0.5 key layout, written in two shards with a
``model.safetensors.index.json``: SigLIP So400m widths, a Gemma-2B backbone and a Gemma-300M adaptive-norm
expert, with ``--vision-depth`` / ``--depth`` layers. Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

VISION, PATCH, IMAGE, VISION_MLP = 1152, 14, 224, 4304
WIDTH, HEADS, HEAD_DIM, MLP, VOCAB = 2048, 8, 256, 16384, 257_152
EXPERT, EXPERT_MLP, PAD = 1024, 4096, 32


def openpi_pi05_shapes(vision_depth: int, depth: int) -> dict[str, tuple[int, ...]]:
    """Every tensor of a pi0.5 checkpoint as openpi's PyTorch converter names it."""
    shapes: dict[str, tuple[int, ...]] = {}
    vt = "paligemma_with_expert.paligemma.model.vision_tower.vision_model."
    shapes[vt + "embeddings.patch_embedding.weight"] = (VISION, 3, PATCH, PATCH)
    shapes[vt + "embeddings.patch_embedding.bias"] = (VISION,)
    shapes[vt + "embeddings.position_embedding.weight"] = ((IMAGE // PATCH) ** 2, VISION)
    for i in range(vision_depth):
        layer = f"{vt}encoder.layers.{i}."
        for name in ("layer_norm1", "layer_norm2"):
            shapes[layer + name + ".weight"] = shapes[layer + name + ".bias"] = (VISION,)
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"{layer}self_attn.{name}.weight"], shapes[f"{layer}self_attn.{name}.bias"] = (
                (VISION, VISION),
                (VISION,),
            )
        shapes[layer + "mlp.fc1.weight"], shapes[layer + "mlp.fc1.bias"] = (VISION_MLP, VISION), (VISION_MLP,)
        shapes[layer + "mlp.fc2.weight"], shapes[layer + "mlp.fc2.bias"] = (VISION, VISION_MLP), (VISION,)
    shapes[vt + "post_layernorm.weight"] = shapes[vt + "post_layernorm.bias"] = (VISION,)
    mm = "paligemma_with_expert.paligemma.model.multi_modal_projector.linear."
    shapes[mm + "weight"], shapes[mm + "bias"] = (WIDTH, VISION), (WIDTH,)
    shapes["paligemma_with_expert.paligemma.lm_head.weight"] = (VOCAB, WIDTH)
    for root, width, mlp, adaptive in (
        ("paligemma_with_expert.paligemma.model.language_model.", WIDTH, MLP, False),
        ("paligemma_with_expert.gemma_expert.model.", EXPERT, EXPERT_MLP, True),
    ):
        for i in range(depth):
            layer = f"{root}layers.{i}."
            shapes[layer + "self_attn.q_proj.weight"] = (HEADS * HEAD_DIM, width)
            shapes[layer + "self_attn.k_proj.weight"] = shapes[layer + "self_attn.v_proj.weight"] = (
                HEAD_DIM,
                width,
            )
            shapes[layer + "self_attn.o_proj.weight"] = (width, HEADS * HEAD_DIM)
            shapes[layer + "mlp.gate_proj.weight"] = shapes[layer + "mlp.up_proj.weight"] = (mlp, width)
            shapes[layer + "mlp.down_proj.weight"] = (width, mlp)
            for norm in ("input_layernorm", "post_attention_layernorm"):
                if adaptive:
                    shapes[f"{layer}{norm}.dense.weight"], shapes[f"{layer}{norm}.dense.bias"] = (
                        (3 * width, width),
                        (3 * width,),
                    )
                else:
                    shapes[f"{layer}{norm}.weight"] = (width,)
        if adaptive:
            shapes[root + "norm.dense.weight"], shapes[root + "norm.dense.bias"] = (
                (3 * width, width),
                (3 * width,),
            )
        else:
            shapes[root + "norm.weight"] = (width,)
    for name, shape in {
        "action_in_proj": (EXPERT, PAD),
        "action_out_proj": (PAD, EXPERT),
        "time_mlp_in": (EXPERT, EXPERT),
        "time_mlp_out": (EXPERT, EXPERT),
    }.items():
        shapes[name + ".weight"], shapes[name + ".bias"] = shape, (shape[0],)
    return shapes


def write_checkpoint(directory: Path, shapes: dict[str, tuple[int, ...]], shards: int = 2) -> None:
    """Random bf16 tensors, shard by shard (never the whole checkpoint in memory)."""
    directory.mkdir(parents=True)
    names = list(shapes)
    per = -(-len(names) // shards)
    weight_map = {}
    g = torch.Generator().manual_seed(0)
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {
            k: (torch.randn(shapes[k], generator=g) * 0.02).to(torch.bfloat16)
            for k in names[s * per : (s + 1) * per]
        }
        save_file(part, str(directory / file))
        weight_map.update(dict.fromkeys(part, file))
        del part
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


#: the process's own peak resident set (VmHWM): ru_maxrss would carry over the parent's peak through fork
PEAK = """
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""

CHILD_IMPORT = (
    PEAK
    + """
import json, sys, time, torch
from recap.data.spec import aloha_spec
from recap_pi06.config import PI05
from recap_pi06.weights.importer import import_policy
torch.set_num_threads(2)
start = time.perf_counter()
model, config, report = import_policy(sys.argv[1], PI05, aloha_spec(224, 224), None, dtype=torch.bfloat16)
took = time.perf_counter() - start
params = sum(p.numel() for p in model.parameters())
print(json.dumps({"seconds": took, "peak_rss": peak(),
                  "params": params, "loaded": len(report.loaded)}))
"""
)

CHILD_BASELINE = (
    PEAK
    + """
import json, sys, time, torch
from pathlib import Path
from safetensors.torch import load_file
from recap.data.spec import aloha_spec
from recap_pi06.weights.importer import default_dtype, infer_config
from recap_pi06.weights.layouts import target_of
from recap_pi06.weights.reader import CheckpointFiles
from recap_pi06.config import PI05
from recap_pi06.policy import Pi06Policy
torch.set_num_threads(2)
start = time.perf_counter()
state = {}
for shard in sorted(Path(sys.argv[1]).glob("*.safetensors")):
    state.update(load_file(str(shard)))  # the whole state dict in memory first
config = infer_config(CheckpointFiles(sys.argv[1]), PI05)
with default_dtype(torch.bfloat16):
    model = Pi06Policy(config, aloha_spec(224, 224), None)
params = dict(model.named_parameters())
with torch.no_grad():
    for key, tensor in state.items():
        target = target_of(key)
        if target in params:
            params[target][: tensor.shape[0]].copy_(tensor)
took = time.perf_counter() - start
print(json.dumps({"seconds": took, "peak_rss": peak()}))
"""
)


def run_child(code: str, checkpoint: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, str(checkpoint)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vision-depth", type=int, default=6)
    parser.add_argument("--depth", type=int, default=4, help="backbone and expert layers")
    parser.add_argument("--write-only", type=Path, help="only write the checkpoint to this new directory")
    args = parser.parse_args()
    shapes = openpi_pi05_shapes(args.vision_depth, args.depth)
    if args.write_only:
        write_checkpoint(args.write_only, shapes)  # e.g. to try `recap weights import` on it
        return
    params = sum(torch.Size(s).numel() for s in shapes.values())
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "pi05_synthetic"
        t0 = time.perf_counter()
        write_checkpoint(checkpoint, shapes)
        disk = sum(f.stat().st_size for f in checkpoint.glob("*.safetensors"))
        print(
            f"checkpoint: {params / 1e9:.2f}B parameters, {disk / 2**30:.2f} GiB bf16 in 2 shards "
            f"(written in {time.perf_counter() - t0:.0f} s)"
        )
        ours = run_child(CHILD_IMPORT, checkpoint)
        base = run_child(CHILD_BASELINE, checkpoint)
    gib = 2**30
    print(
        f"recap import (lazy, shard by shard): {ours['seconds']:.1f} s, peak RSS {ours['peak_rss'] / gib:.2f} GiB "
        f"= {ours['peak_rss'] / disk:.2f}x the checkpoint; {ours['loaded']} tensors into "
        f"{ours['params'] / 1e9:.2f}B parameters"
    )
    print(
        f"baseline (load_file everything, then copy): {base['seconds']:.1f} s, peak RSS "
        f"{base['peak_rss'] / gib:.2f} GiB = {base['peak_rss'] / disk:.2f}x the checkpoint"
    )
    print(
        f"ratio: peak memory {ours['peak_rss'] / base['peak_rss']:.2f}x the baseline's, "
        f"time {ours['seconds'] / base['seconds']:.2f}x"
    )


if __name__ == "__main__":
    main()

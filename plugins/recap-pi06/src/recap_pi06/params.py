"""Parameter counts per part, for presets built on the meta device (no memory is allocated).

python -m recap_pi06.params pi06 pi0 pi05   # prints the per-part counts of presets against their targets
python -m recap_pi06.params pi05 --lora 16    # ... and what a LoRA fine-tune of rank 16 trains
python -m recap_pi06.params pi06 --lora 16 --gpus 8   # ... and the memory of weights and optimiser state
"""

from __future__ import annotations

import sys

import attrs
import torch
from torch import nn

from recap.data.spec import aloha_spec
from recap_pi06.config import POLICY_PRESETS, PRESET_TARGETS, VALUE_PRESETS
from recap_pi06.policy import Pi06Policy
from recap_pi06.value import Pi06ValueNetwork


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def part_counts(model: Pi06Policy | Pi06ValueNetwork) -> dict[str, int]:
    """Parameters of the vision tower (with its projection), the decoder backbone (with its embedding table),
    the action expert (policies) or value head (value networks), and the total."""
    counts = {"vision": _count(model.trunk.vision), "backbone": _count(model.trunk.decoder)}
    if isinstance(model, Pi06Policy):
        counts["expert"] = _count(model.expert)
    else:
        counts["value_head"] = _count(model.head)
    counts["total"] = _count(model)
    return counts


def build_on_meta(name: str, lora_rank: int = 0) -> Pi06Policy | Pi06ValueNetwork:
    """A preset on the meta device, for the ALOHA spec (three 224x224 cameras are resized by the tower)."""
    spec = aloha_spec()
    with torch.device("meta"):
        if name in POLICY_PRESETS:
            return Pi06Policy(attrs.evolve(POLICY_PRESETS[name], lora_rank=lora_rank), spec, None)
        if name in VALUE_PRESETS:
            return Pi06ValueNetwork(VALUE_PRESETS[name], spec, 201, None)
    known = sorted(POLICY_PRESETS) + sorted(VALUE_PRESETS)
    raise KeyError(f"unknown pi06 preset {name!r}; known: {known}")


def memory_gb(total: int, trainable: int, gpus: int) -> dict[str, float]:
    """GB (1e9 bytes) of weights and optimiser state, before activations: 2 bytes per bf16 value, 4 per float32,
    16 per parameter trained with float32 AdamW (weight, gradient, two moments); FSDP2 shards all of it over
    ``gpus``; LoRA keeps the base in bf16 and trains ``trainable`` parameters in float32 AdamW."""
    rows = {
        "inference, bf16 weights": 2 * total,
        "inference, float32 weights": 4 * total,
        "full fine-tune, float32 AdamW": 16 * total,
        f"full fine-tune, float32 AdamW, FSDP2 over {gpus} GPUs (per GPU)": 16 * total / gpus,
    }
    if trainable < total:
        rows["LoRA on a bf16 base (trained parameters in float32 AdamW)"] = (
            2 * (total - trainable) + 16 * trainable
        )
    return {name: size / 1e9 for name, size in rows.items()}


def _option(argv: list[str], name: str) -> tuple[int, list[str]]:
    if name not in argv:
        return 0, argv
    at = argv.index(name)
    return int(argv[at + 1]), argv[:at] + argv[at + 2 :]


def main(argv: list[str]) -> None:
    lora, argv = _option(argv, "--lora")
    gpus, argv = _option(argv, "--gpus")
    for name in argv or list(PRESET_TARGETS):
        model = build_on_meta(name, lora)
        targets = PRESET_TARGETS.get(name, {})
        print(f"{name}:")
        for part, n in part_counts(model).items():
            target = targets.get(part)
            extra = f"  (target {target / 1e6:,.0f}M, {100 * (n / target - 1):+.1f}%)" if target else ""
            print(f"  {part:<10} {n / 1e6:>10,.1f}M{extra}")
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if lora and isinstance(model, Pi06Policy):  # value networks take no adapters
            print(f"  trainable with LoRA rank {lora}: {trainable / 1e6:,.1f}M")
        if gpus:
            adapters = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
            for row, gb in memory_gb(part_counts(model)["total"] - adapters, trainable, gpus).items():
                print(f"  {row}: {gb:,.1f} GB")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Parameter counts per part, for presets built on the meta device (no memory is allocated).

python -m recap_pi06.params pi06 pi0 pi05   # prints the per-part counts of presets against their targets
python -m recap_pi06.params pi05 --lora 16    # ... and what a LoRA fine-tune of rank 16 trains
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


def main(argv: list[str]) -> None:
    lora = 0
    if "--lora" in argv:
        at = argv.index("--lora")
        lora, argv = int(argv[at + 1]), argv[:at] + argv[at + 2 :]
    for name in argv or list(PRESET_TARGETS):
        model = build_on_meta(name, lora)
        targets = PRESET_TARGETS.get(name, {})
        print(f"{name}:")
        for part, n in part_counts(model).items():
            target = targets.get(part)
            extra = f"  (target {target / 1e6:,.0f}M, {100 * (n / target - 1):+.1f}%)" if target else ""
            print(f"  {part:<10} {n / 1e6:>10,.1f}M{extra}")
        if lora:
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            print(f"  trainable with LoRA rank {lora}: {trainable / 1e6:,.1f}M")


if __name__ == "__main__":
    main(sys.argv[1:])

"""LoRA adapters (through ``peft``) on the decoder's and the action expert's attention and MLP projections: how a
3B imported model is fine-tuned on one GPU. Everything else is frozen except the expert's small input/output
projections and time MLP (they are where the robot's action space differs from the pretraining mixture).

``Pi06Config.lora_rank > 0`` builds the policy with adapters (the trainer optimises what requires grad);
:func:`merge_lora` folds them back into plain weights for export::

    python -m recap_pi06.lora add IMPORTED_DIR LORA_DIR --rank 16    # then recap train-policy --init-from LORA_DIR
    python -m recap_pi06.lora merge TRAINED_DIR OUT_DIR                # plain weights again
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs
from torch import nn

from recap.errors import ConfigError

#: the projections that get adapters (module names inside ``trunk.decoder`` and ``expert`` layers)
LORA_TARGETS = r".*(trunk\.decoder|expert)\.layers\.\d+\.(attn\.(q|k|v|o)|mlp\.(gate|up|down))"
#: modules outside the layers that stay trainable next to the adapters
TRAINABLE = (
    "expert.action_in",
    "expert.action_out",
    "expert.state_proj",
    "expert.time_mlp",
    "expert.time_mix",
)


def _peft():
    try:
        import peft
    except ImportError:
        raise ConfigError("LoRA needs the peft package: pip install 'recap-pi06[weights]'") from None
    return peft


def add_lora(model: nn.Module, rank: int, alpha: float) -> nn.Module:
    """Wrap the target projections of ``model`` in LoRA adapters (in place) and freeze the rest."""
    peft = _peft()
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=LORA_TARGETS)
    peft.inject_adapter_in_model(config, model)
    for name, param in model.named_parameters():
        if name.startswith(TRAINABLE):
            param.requires_grad_(True)
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight and put the plain ``nn.Linear`` back (in place); the result's
    state dict has the keys of a model built without adapters."""
    from peft.tuners.lora import LoraLayer

    merged = 0
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, module.get_base_layer())
            merged += 1
    if merged == 0:
        raise ConfigError("this model has no LoRA adapters to merge")
    for param in model.parameters():
        param.requires_grad_(True)
    if hasattr(model, "config") and attrs.has(type(model.config)):
        model.config = attrs.evolve(model.config, lora_rank=0)
    return model


def main(argv: list[str]) -> int:
    """``add IN OUT [--rank R] [--alpha A]`` or ``merge IN OUT`` on policy checkpoint directories."""
    import argparse

    from recap.data.stats import NormStats
    from recap.train.checkpoint import STATS, load_policy, save_policy

    parser = argparse.ArgumentParser(prog="python -m recap_pi06.lora")
    parser.add_argument("action", choices=["add", "merge"])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=16.0)
    args = parser.parse_args(argv)
    policy, deployment = load_policy(args.source)
    stats = NormStats.load(args.source / STATS) if (args.source / STATS).exists() else None
    if args.action == "add":
        if policy.config.lora_rank > 0:
            raise ConfigError(f"{args.source} already has LoRA adapters (rank {policy.config.lora_rank})")
        add_lora(policy, args.rank, args.alpha)
        policy.config = attrs.evolve(policy.config, lora_rank=args.rank, lora_alpha=args.alpha)
    else:
        merge_lora(policy)
    save_policy(args.out, policy, policy.config, policy.spec, stats, deployment)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

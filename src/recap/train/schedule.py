"""Learning-rate schedule (linear warmup, then cosine decay) and an exponential moving average of weights.

Both are pure functions of the step (or of state that checkpoints save), so a resumed run continues exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def warmup_cosine_lr(
    step: int, *, base_lr: float, warmup_steps: int, total_steps: int, final_ratio: float
) -> float:
    """Learning rate for optimiser step ``step`` (0-based).

        lr = base_lr * (step + 1) / warmup                                         for step < warmup
        lr = base_lr * (r + (1 - r) * 0.5 * (1 + cos(pi * p))),  p = (step - warmup) / (total - warmup)   after

    with r = ``final_ratio`` (the floor the cosine decays to) and p clipped to [0, 1].
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max((step - warmup_steps) / span, 0.0), 1.0)
    return base_lr * (final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


class EMA:
    """Shadow weights ``w_ema <- d * w_ema + (1 - d) * w`` after every optimiser step (buffers are copied).

    The effective decay ramps up as ``min(d, (1 + n) / (10 + n))`` over the first updates so that early
    averages are not dominated by the random initialisation.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}; use None to disable the EMA")
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in module.state_dict().items():
            shadow = self.shadow[name]
            if value.is_floating_point():
                shadow.mul_(d).add_(value.detach(), alpha=1.0 - d)
            else:
                shadow.copy_(value)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise KeyError(
                f"EMA checkpoint lacks {sorted(missing)[:5]}; was it saved from a different model?"
            )
        for k in self.shadow:
            self.shadow[k].copy_(state[k])
        self.updates = updates

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Load the averaged weights into ``module`` (done once training ends)."""
        module.load_state_dict(self.shadow)

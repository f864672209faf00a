"""The value-network variant (the pi*0.6 paper, section V-C): the same vision tower and Gemma-style decoder, smaller,
over ``[images][env][Task: prompt. State:][state bins][VALUE]``; a linear head on the final hidden state of the
VALUE token (which attends to the whole prefix) gives the logits of p_phi(V | o_t, l) over the value bins.
The distributional estimator that owns the bins and the cross-entropy wraps this module."""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn

from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap.errors import ConfigError
from recap_pi06.config import Pi06ValueConfig
from recap_pi06.tokens import VALUE, Tokens, run_decoder
from recap_pi06.trunk import Trunk


class Pi06ValueNetwork(nn.Module):
    """``forward(obs) -> logits [B, num_bins]``. Call :meth:`fit_to_data` once before training to fit the
    text BPE (it is stored in the state dict)."""

    def __init__(
        self, config: Pi06ValueConfig, spec: RobotSpec, num_bins: int, stats: NormStats | None = None
    ) -> None:
        super().__init__()
        if num_bins < 2:
            raise ConfigError(f"num_bins must be at least 2, got {num_bins}")
        self.config, self.spec, self.num_bins = config, spec, num_bins
        self.trunk = Trunk.from_config(config, spec, stats, extra_vocab=0)
        self.head = nn.Linear(config.backbone.width, num_bins)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def transformer_blocks(self) -> list[nn.Module]:
        return self.trunk.transformer_blocks()

    def freezable_parts(self) -> dict[str, nn.Module]:
        return self.trunk.freezable_parts()

    def fit_to_data(self, batch: TensorDict) -> dict[str, float]:
        """Fit the text BPE on the batch's prompts (call once before training)."""
        self.trunk.text.fit(self.trunk.prompts(batch))
        return {"text_vocab": float(self.trunk.text.size())}

    def forward(self, obs: TensorDict) -> torch.Tensor:
        trunk = self.trunk
        size = obs.batch_size[0]
        query = trunk.text_tokens([[trunk.text.value_id]] * size, False, VALUE)
        hidden, _ = run_decoder(trunk.decoder, Tokens.cat([trunk.prefix(obs), query]))
        return self.head(hidden[:, -1])

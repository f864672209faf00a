"""pi06 checkpoints written before the pretrained-weights flavours still load and compute the same: the vision
blocks' fused ``qkv`` splits into q, k, v; the expert's ``modulation`` (gate ``1 + g``, an ungated final norm)
becomes openpi's ``dense`` with a raw gate."""

from __future__ import annotations

import torch
from recap_pi06.config import PI06_TINY
from recap_pi06.policy import Pi06Policy

from recap.nn import draw_flow


def _as_written_before(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The old key layout of the same numbers (what the previous release saved)."""
    old = {}
    for key, value in state.items():
        for kind in ("weight", "bias"):
            if ".blocks." in key and key.endswith(f".q.{kind}"):
                stem = key[: -len(f"q.{kind}")]
                old[f"{stem}qkv.{kind}"] = torch.cat([state[f"{stem}{n}.{kind}"] for n in "qkv"])
        if ".blocks." in key and any(key.endswith(f".{n}.{k}") for n in "qkv" for k in ("weight", "bias")):
            continue
        if ".norm.dense." in key and key.startswith("expert."):
            stem, kind = key.split(".norm.dense.")
            if kind == "bias":
                dim = value.shape[0] // 3
                value = torch.cat([value[: 2 * dim], value[2 * dim :] - 1.0])
                if stem == "expert.final_norm":
                    value = value[: 2 * dim]
            elif stem == "expert.final_norm":
                value = value[: 2 * (value.shape[0] // 3)]
            old[f"{stem}.modulation.{kind}"] = value
            continue
        old[key] = value
    return old


def test_old_checkpoint_layout_loads_and_computes_the_same(policy, spec, stats, tiny_batch):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "dense" in name:  # non-trivial modulation, so a wrong gate offset shows
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    old = _as_written_before(policy.state_dict())
    assert "trunk.vision.blocks.0.qkv.weight" in old and "expert.layers.0.attn_norm.modulation.weight" in old
    assert old["expert.final_norm.modulation.bias"].shape[0] == 2 * PI06_TINY.expert.width
    fresh = Pi06Policy(PI06_TINY, spec, stats)
    fresh.load_state_dict(old, strict=True)
    draws = draw_flow(policy, 4, generator=torch.Generator().manual_seed(1))
    a = policy.per_sample_loss(tiny_batch, None, flow_draws=draws)
    b = fresh.per_sample_loss(tiny_batch, None, flow_draws=draws)
    for name in ("flow", "fast", "subtask"):
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)

"""LoRA on an imported model: the merged export equals the adapter model, a short fine-tune lowers the loss while
the base weights stay put, and adapter checkpoints round-trip through the core's checkpoint directory."""

from __future__ import annotations

import attrs
import pytest
import torch
from hf_fixtures import one_camera_spec, pi0, tiny_tokenizer
from recap_pi06.config import PI0
from recap_pi06.lora import add_lora, main, merge_lora
from recap_pi06.policy import Pi06Policy
from recap_pi06.weights.importer import import_policy

from recap.nn import draw_flow
from recap.plugins import load_registry, set_registry
from recap.protocols import DeploymentSettings
from recap.testing.policy_suite import make_batch
from recap.train.checkpoint import load_policy, save_policy

pytest.importorskip("peft")
pytest.importorskip("transformers")

CHUNK = 4


@pytest.fixture
def imported(tmp_path):
    pi0(tmp_path / "ckpt", chunk=CHUNK, pad_dim=6)
    tokenizer = tiny_tokenizer(tmp_path / "tokenizer.json")
    spec = one_camera_spec(state_dim=4, action_dim=3)
    policy, config, _ = import_policy(str(tmp_path / "ckpt"), PI0, spec, None, tokenizer=str(tokenizer))
    return policy, config, spec


def _loss(policy, batch, draws):
    losses = policy.per_sample_loss(batch, None, flow_draws=draws)
    return losses["flow"].mean() + losses["fast"].mean()


def test_merged_export_equals_the_adapter_model(imported):
    policy, config, spec = imported
    batch = make_batch(spec, batch_size=3, chunk_size=CHUNK)
    draws = draw_flow(policy, 3, generator=torch.Generator().manual_seed(0))
    plain_keys = set(policy.state_dict())
    add_lora(policy, rank=4, alpha=8.0)
    adapters = [n for n, _ in policy.named_parameters() if "lora_B" in n]
    assert any(n.startswith("trunk.decoder.layers.1.mlp.down") for n in adapters)
    assert any(n.startswith("expert.layers.0.attn.q") for n in adapters)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)  # adapters that change the output
    with_adapters = policy.per_sample_loss(batch, None, flow_draws=draws)
    merge_lora(policy)
    merged = policy.per_sample_loss(batch, None, flow_draws=draws)
    assert set(policy.state_dict()) == plain_keys
    for name in ("flow", "fast"):
        assert (with_adapters[name] - merged[name]).abs().max() <= 1e-4, name
    base = Pi06Policy(config, spec, None)
    base.load_state_dict(policy.state_dict())  # the export is a plain checkpoint of the original architecture
    assert not torch.allclose(base.per_sample_loss(batch, None, flow_draws=draws)["flow"], torch.zeros(3))


def test_lora_fine_tune_lowers_the_loss_and_keeps_the_base(imported):
    policy, _, spec = imported
    torch.manual_seed(0)
    batch = make_batch(spec, batch_size=4, chunk_size=CHUNK)
    draws = draw_flow(policy, 4, generator=torch.Generator().manual_seed(2))
    add_lora(policy, rank=4, alpha=8.0)
    frozen = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    assert "trunk.decoder.layers.0.attn.q.base_layer.weight" in frozen
    assert "trunk.vision.blocks.0.q.weight" in frozen
    trainable = [p for p in policy.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) < 0.5 * sum(p.numel() for p in policy.parameters())
    opt = torch.optim.Adam(trainable, lr=1e-2)
    first = _loss(policy, batch, draws).item()
    for _ in range(25):
        opt.zero_grad()
        _loss(policy, batch, draws).backward()
        opt.step()
    last = _loss(policy, batch, draws).item()
    assert last < 0.6 * first, (first, last)
    for name, before in frozen.items():
        assert torch.equal(policy.get_parameter(name), before), name


def test_adapter_checkpoints_round_trip_and_merge_from_the_command_line(imported, tmp_path):
    from recap_pi06 import plugin

    policy, config, spec = imported
    set_registry(load_registry([("recap-pi06", plugin)], entrypoints=False))
    try:
        save_policy(tmp_path / "imported", policy, config, spec, None, DeploymentSettings())
        assert main(["add", str(tmp_path / "imported"), str(tmp_path / "lora"), "--rank", "4"]) == 0
        adapted, _ = load_policy(tmp_path / "lora")
        assert adapted.config.lora_rank == 4
        assert any("lora_A" in n for n, _ in adapted.named_parameters())
        with torch.no_grad():
            adapted.expert.layers[0].attn.q.lora_B["default"].weight.fill_(0.1)
        save_policy(tmp_path / "trained", adapted, adapted.config, spec, None, DeploymentSettings())
        assert main(["merge", str(tmp_path / "trained"), str(tmp_path / "merged")]) == 0
        merged, _ = load_policy(tmp_path / "merged")
        assert merged.config == attrs.evolve(config, lora_rank=0)  # the alpha of the adapters is kept as data
        batch = make_batch(spec, batch_size=2, chunk_size=CHUNK)
        draws = draw_flow(merged, 2, generator=torch.Generator().manual_seed(3))
        a = adapted.per_sample_loss(batch, None, flow_draws=draws)["flow"]
        b = merged.per_sample_loss(batch, None, flow_draws=draws)["flow"]
        assert (a - b).abs().max() <= 1e-4
    finally:
        set_registry(None)


def test_lora_fine_tune_in_bf16_mixed_precision_through_the_trainer(imported, tmp_path):
    """The same through ``recap.train.train`` with ``precision = "bf16-mixed"`` (bf16 compute on the CPU)."""
    from tensordict import TensorDict

    from recap.train.trainer import TrainerConfig, train

    policy, _, spec = imported
    torch.manual_seed(0)
    batch = make_batch(spec, batch_size=4, chunk_size=CHUNK)
    draws = draw_flow(policy, 4, generator=torch.Generator().manual_seed(2))
    add_lora(policy, rank=4, alpha=8.0)

    def loss_fn(b: TensorDict) -> TensorDict:
        return TensorDict({"loss_flow_fast": _loss(policy, b, draws)}, batch_size=[])

    before = _loss(policy, batch, draws).item()
    config = TrainerConfig(
        steps=25,
        lr=1e-2,
        warmup_steps=0,
        weight_decay=0.0,
        progress=False,
        checkpoint_every=None,
        precision="bf16-mixed",
        device="cpu",
    )
    train(policy, loss_fn, lambda step, rank, world: batch, config, tmp_path / "run")
    with torch.no_grad():
        after = _loss(policy, batch, draws).item()
    assert after < 0.7 * before, (before, after)

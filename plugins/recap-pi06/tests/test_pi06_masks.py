"""Attention structure on pi06-tiny: what can see what, knowledge insulation, and indicator dropping."""

import torch
from recap_pi06.tokens import FAST, IMAGE, INDICATOR, PROMPT, STATE, SUBTASK, attention_mask, run_decoder
from tensordict import TensorDict

from recap.data import keys
from recap.nn import draw_flow


def _sequence(policy, batch, indicator=None):
    chunks = policy._normalized_chunks(batch)
    size = batch.batch_size[0]
    positive, dropped = policy.resolve_indicator(
        torch.ones(size, dtype=torch.bool) if indicator is None else indicator, size
    )
    return policy.training_sequence(batch, positive, dropped, chunks)


def test_prefix_lm_mask_structure(policy, tiny_batch):
    tokens, ctx_width = _sequence(policy, tiny_batch)
    block = tokens.ar.long().cumsum(1)
    mask = attention_mask(tokens.valid, block, tokens.valid, block)
    kind = tokens.kind[0]
    prefix = (kind == IMAGE) | (kind == PROMPT) | (kind == STATE) | (kind == 1)
    generated = (kind == SUBTASK) | (kind == INDICATOR) | (kind == FAST)
    assert not mask[:, prefix][:, :, generated].any(), "a prefix token can attend to a generated token"
    # the prefix is bidirectional among its valid tokens
    pv = tokens.valid[:, prefix]
    assert torch.equal(mask[:, prefix][:, :, prefix], pv[:, None, :].expand(-1, int(prefix.sum()), -1))
    # sub-task tokens cannot see the indicator or FAST; FAST starts after the expert context
    sub, ind = kind == SUBTASK, (kind == INDICATOR) | (kind == FAST)
    assert not mask[:, sub][:, :, ind].any()
    assert tokens.span(FAST)[0] == ctx_width and tokens.span(INDICATOR)[1] <= ctx_width


def test_prefix_hidden_states_ignore_generated_tokens(policy, tiny_batch):
    tokens, _ = _sequence(policy, tiny_batch)
    hidden, _ = run_decoder(policy.trunk.decoder, tokens)
    changed = tokens.kind >= SUBTASK
    perturbed = type(tokens)(tokens.embeds.clone(), tokens.valid, tokens.ar, tokens.kind, tokens.ids)
    perturbed.embeds[changed] = torch.randn_like(perturbed.embeds[changed]) * 10
    hidden2, _ = run_decoder(policy.trunk.decoder, perturbed)
    prefix = ~changed[0]
    torch.testing.assert_close(hidden2[:, prefix], hidden[:, prefix], atol=1e-6, rtol=0)
    assert not torch.allclose(hidden2[:, ~prefix], hidden[:, ~prefix]), "perturbation had no effect at all"


def test_expert_cannot_see_fast_tokens(policy, tiny_batch, monkeypatch):
    ind = tiny_batch[keys.INDICATOR]
    draws = draw_flow(policy, 4, generator=torch.Generator().manual_seed(0))
    before = policy.per_sample_loss(tiny_batch, ind, flow_draws=draws)
    off, cap = policy.fast_offset, policy.config.max_fast_tokens
    g = torch.Generator().manual_seed(1)

    def random_fast_rows(chunks):
        n = int(torch.randint(3, cap - 2, (1,), generator=g))
        return [
            [off + int(i) for i in torch.randint(2, 100, (n,), generator=g)] for _ in range(chunks.shape[0])
        ]

    monkeypatch.setattr(policy, "fast_rows", random_fast_rows)
    after = policy.per_sample_loss(tiny_batch, ind, flow_draws=draws)
    torch.testing.assert_close(after["flow"], before["flow"], atol=1e-6, rtol=0)
    assert not torch.allclose(after["fast"], before["fast"]), "the FAST tokens did change"


def test_flow_loss_sends_no_gradient_into_backbone(policy, tiny_batch):
    policy.per_sample_loss(tiny_batch, tiny_batch[keys.INDICATOR])["flow"].sum().backward()
    for name, p in policy.trunk.named_parameters():
        assert p.grad is None or not p.grad.any(), f"flow loss reached backbone parameter {name}"
    assert any(p.grad is not None and p.grad.any() for p in policy.expert.parameters())
    policy.zero_grad(set_to_none=True)
    policy.per_sample_loss(tiny_batch, tiny_batch[keys.INDICATOR])["fast"].sum().backward()
    assert any(p.grad is not None and p.grad.any() for p in policy.trunk.parameters()), (
        "FAST CE trains the backbone"
    )
    assert all(p.grad is None or not p.grad.any() for p in policy.expert.parameters())


def test_dropping_the_indicator_removes_its_tokens(policy, tiny_batch):
    size = tiny_batch.batch_size[0]
    dropped = torch.tensor([True, False, True, False])
    chunks = policy._normalized_chunks(tiny_batch)
    tokens, _ = policy.training_sequence(tiny_batch, torch.ones(size, dtype=torch.bool), dropped, chunks)
    ind = tokens.kind == INDICATOR
    assert ind.any(1).all()
    assert not (tokens.valid & ind)[dropped].any() and (tokens.valid & ind)[~dropped].any(1).all()
    none_tokens, _ = policy.training_sequence(
        tiny_batch, torch.ones(size, dtype=torch.bool), torch.ones(size, dtype=torch.bool), chunks
    )
    assert not (none_tokens.kind == INDICATOR).any(), "a batch without indicators has no indicator segment"
    # every loss of a dropped row equals that of the same row built with no indicator segment at all
    draws = draw_flow(policy, size, generator=torch.Generator().manual_seed(0))
    masked = tiny_batch.clone()
    masked.set("indicator_dropped", dropped)
    mixed = policy.per_sample_loss(masked, torch.ones(size, dtype=torch.bool), flow_draws=draws)
    absent = policy.per_sample_loss(tiny_batch, None, flow_draws=draws)
    for name in ("flow", "fast", "subtask"):
        torch.testing.assert_close(mixed[name][dropped], absent[name][dropped], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(mixed["fast"][~dropped], absent["fast"][~dropped])


def test_indicator_does_not_change_subtask_loss(policy, tiny_batch):
    size = tiny_batch.batch_size[0]
    pos = policy.per_sample_loss(tiny_batch, torch.ones(size, dtype=torch.bool))["subtask"]
    neg = policy.per_sample_loss(tiny_batch, torch.zeros(size, dtype=torch.bool))["subtask"]
    torch.testing.assert_close(pos, neg, atol=1e-6, rtol=0)


def test_bad_action_shape_is_refused(policy, tiny_batch):
    bad = TensorDict({k: v for k, v in tiny_batch.items() if k != keys.ACTION}, batch_size=[4])
    bad.set(keys.ACTION, torch.zeros(4, 7, 3))
    try:
        policy.per_sample_loss(bad, None)
    except ValueError as exc:
        assert "chunk_size" in str(exc)
    else:
        raise AssertionError("a wrong chunk length was accepted")

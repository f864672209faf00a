"""Sampling from the pi0.6-style policy.

1. Encode the observation prefix once (into a KV cache, or re-run the decoder every step without one).
2. Decode the sub-task greedily, ``[SUB] t_1 ... t_n [EOS]`` (n <= max_subtask_tokens), or take
   ``obs["subtask"]`` when given, so callers can decode at a lower rate than they sample actions.
3. Append the indicator text ("Advantage: positive" / "negative"; nothing when unconditional).
4. Integrate the flow from tau = 1 (``x = noise_scale * eps``) to 0 with ``num_steps`` Euler steps,
   ``x <- x - v / num_steps``. With classifier-free guidance beta != 1 (the paper's Eqs. 12-13, docs/method.md) the conditional
   and unconditional contexts are stacked into one batch and ``v = v_u + beta * (v_c - v_u)``; both share the
   prefix and sub-task (they come before the indicator) and the noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from tensordict import TensorDict

from recap.data import keys
from recap_pi06.tokens import INDICATOR, SUBTASK, Context
from recap_pi06.trunk import read_texts

if TYPE_CHECKING:
    from recap_pi06.policy import Pi06Policy


def decode_subtasks(policy: Pi06Policy, obs: TensorDict, *, use_cache: bool) -> tuple[Context, list[str]]:
    """Encode the prefix and the sub-task into a fresh context; returns it and the sub-task strings."""
    trunk, text = policy.trunk, policy.trunk.text
    ctx = Context(trunk.decoder, use_cache)
    ctx.append(trunk.prefix(obs))
    if not policy.config.subtask:
        return ctx, [""] * obs.batch_size[0]
    if keys.SUBTASK in obs:
        given = read_texts(obs, keys.SUBTASK)
        ctx.append(trunk.text_tokens(policy.subtask_rows(given), True, SUBTASK))
        return ctx, given
    size, device = obs.batch_size[0], trunk.device
    vocab, limit = policy.config.text_vocab_size, policy.config.max_subtask_tokens
    banned = torch.tensor([text.pad_id, text.subtask_id, text.value_id], device=device)
    feed = torch.full((size,), text.subtask_id, dtype=torch.long, device=device)
    feed_valid = torch.ones(size, dtype=torch.bool, device=device)
    done = torch.zeros(size, dtype=torch.bool, device=device)
    generated: list[list[int]] = [[] for _ in range(size)]
    for _ in range(limit + 2):
        step = trunk.text_tokens([[i] for i in feed.tolist()], True, SUBTASK)
        step.valid = feed_valid[:, None].clone()
        hidden = ctx.append(step)
        done = done | (feed_valid & (feed == text.eos_id))
        if bool(done.all()):
            break
        logits = trunk.decoder.logits(hidden[:, -1], 0, vocab)
        logits[:, banned] = float("-inf")
        pred = logits.argmax(-1)
        lengths = torch.tensor([len(g) for g in generated], device=device)
        pred = torch.where(lengths >= limit, torch.full_like(pred, text.eos_id), pred)
        for b in (~done & (pred != text.eos_id)).nonzero().flatten().tolist():
            generated[b].append(int(pred[b]))
        feed, feed_valid = pred, ~done
    return ctx, [text.decode(g) for g in generated]


def sample_chunk(
    policy: Pi06Policy,
    obs: TensorDict,
    indicator: torch.Tensor | bool | None,
    guidance: float,
    *,
    generator: torch.Generator | None,
    use_cache: bool,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Raw actions ``[B, H, A]`` and the sub-tasks they were conditioned on (see the module docstring)."""
    size = obs.batch_size[0]
    ctx, subtasks = decode_subtasks(policy, obs, use_cache=use_cache)
    guided = indicator is not None and guidance != 1.0
    positive, dropped = policy.resolve_indicator(indicator, size)
    rows = policy.indicator_rows(positive, dropped)
    if guided:
        ctx.repeat(2)
        rows = rows + [[] for _ in range(size)]
    part = policy.trunk.text_tokens(rows, True, INDICATOR)
    if part.width > 0:
        ctx.append(part)

    device, cfg = policy.trunk.device, policy.config
    shape = (size, policy.chunk_size, policy.flow_dim)
    if noise is None:
        noise = torch.randn(shape, generator=generator)
    elif tuple(noise.shape) != shape:
        raise ValueError(
            f"noise must have shape {list(shape)} (batch, chunk, flow_dim), got {list(noise.shape)}"
        )
    x = (noise * cfg.noise_scale).to(device)
    state = policy.expert_state(obs)
    state = None if state is None else (torch.cat([state, state]) if guided else state)
    cached = ctx.keys_values() if use_cache else None
    for i in range(cfg.num_steps):
        kv, valid, start = cached if cached is not None else ctx.keys_values()
        x_in = torch.cat([x, x]) if guided else x
        tau = torch.full((x_in.shape[0],), 1.0 - i / cfg.num_steps, device=device)
        v = policy.expert(x_in, tau, kv, valid, start, state)
        if guided:
            v_c, v_u = v.chunk(2)
            v = v_u + guidance * (v_c - v_u)
        x = x - v / cfg.num_steps
    return policy.trunk.norm.unnormalize(keys.ACTION, x[..., : policy.action_dim]), subtasks

"""The pi0.6-style policy: backbone (trunk), FAST tokens, flow-matching action expert, advantage indicator.

Training sequence (the pi*0.6 paper, section V; docs/pi06.md)::

    [images][env][Task: prompt. State:][state bins] -> [SUB] sub-task [EOS] -> Advantage: positive|negative|-
        -> [BOS] FAST tokens [EOS]

``per_sample_loss`` returns, per sample:

* ``flow``: ``mean_{valid k, a} (v_theta(x_tau, tau, ctx) - u)^2`` with ``x_tau = tau eps + (1 - tau) a``,
  ``u = eps - a`` and ``tau ~ Beta(1.5, 1)`` mapped to ``[0.001, 1]``; the expert attends to the backbone keys
  and values up to the indicator (never FAST), detached (knowledge insulation);
* ``fast``: mean next-token NLL of the FAST segment (BOS excluded, EOS included);
* ``subtask``: mean next-token NLL of the sub-task segment (an empty sub-task is just ``[SUB][EOS]``).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from tensordict import TensorDict
from torch import nn

from recap.data import keys
from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap.errors import SchemaError
from recap.nn import flow_matching_path, masked_chunk_mean
from recap_pi06.config import Pi06Config
from recap_pi06.expert import ActionExpert
from recap_pi06.fast import FastTokenizer
from recap_pi06.text_tokenizer import NEGATIVE_TEXT, POSITIVE_TEXT
from recap_pi06.tokens import FAST, INDICATOR, SUBTASK, Tokens, run_decoder
from recap_pi06.trunk import Trunk, read_texts

INDICATOR_DROPPED = "indicator_dropped"


class Pi06Policy(nn.Module):
    """Implements ``recap.protocols.Policy``. Build with ``Pi06Policy(config, spec, stats)``.

    Call :meth:`fit_to_data` once before training on a sample of training windows: it fits the text BPE on
    the prompts and sub-tasks and the FAST BPE on the normalised action chunks. Both tokenizers live in
    ``uint8`` buffers, so ``state_dict`` / safetensors checkpoints are self-contained.
    """

    def __init__(self, config: Pi06Config, spec: RobotSpec, stats: NormStats | None = None) -> None:
        super().__init__()
        self.config, self.spec = config, spec
        self.chunk_size, self.action_dim = config.chunk_size, spec.action_dim
        self.input_cameras = spec.camera_names  # the vision tower reads every camera of the spec
        self.trunk = Trunk.from_config(config, spec, stats, extra_vocab=config.fast_vocab_size)
        self.fast = FastTokenizer(
            config.chunk_size, spec.action_dim, config.fast_vocab_size, config.fast_scale
        )
        #: the expert's action width: the spec's, or the checkpoint's padded width (pi0 / pi0.5: 32)
        self.flow_dim = max(config.action_pad_dim, spec.action_dim)
        state_token = self.trunk.state_pad_dim if config.state_input == "token" else 0
        self.expert = ActionExpert(config.backbone, config.expert, self.flow_dim, state_dim=state_token)
        if config.lora_rank > 0:
            from recap_pi06.lora import add_lora

            add_lora(self, config.lora_rank, config.lora_alpha)
        self.fast_offset = config.text_vocab_size + config.state_bins

    # -- structure the trainer reads (FSDP2 sharding, activation checkpointing, freezing) ---------------------

    def transformer_blocks(self) -> list[nn.Module]:
        """Vision, backbone and expert blocks: each is sharded and recomputed on its own."""
        return self.trunk.transformer_blocks() + list(self.expert.layers)

    def freezable_parts(self) -> dict[str, nn.Module]:
        """Names ``TrainerConfig.freeze`` accepts: ``vision``, ``backbone`` (decoder) and ``expert``."""
        return {**self.trunk.freezable_parts(), "expert": self.expert}

    # -- data-fitted parts ------------------------------------------------------------------------------------

    @property
    def needs_fitting(self) -> bool:
        """True while the FAST tokenizer was never fitted: an imported checkpoint brings weights but no FAST
        merges, so its first fine-tune fits them (``recap.train.policy.train_policy`` asks)."""
        return not self.fast.fitted

    def fit_to_data(self, batch: TensorDict) -> dict[str, float]:
        """Fit the text and FAST tokenizers on a sample of training windows (call once, before training).

        Returns figures worth logging: text and FAST vocabulary sizes and FAST tokens per chunk.
        """
        texts = self.trunk.prompts(batch) + read_texts(batch, keys.SUBTASK)
        self.trunk.text.fit(texts)
        chunks = self._normalized_chunks(batch)
        self.fast.fit(chunks)
        lengths = torch.tensor([len(r) for r in self.fast.encode(chunks)], dtype=torch.float32)
        if lengths.max() > self.config.max_fast_tokens - 2:
            warnings.warn(
                f"FAST chunks take up to {int(lengths.max())} tokens but max_fast_tokens is "
                f"{self.config.max_fast_tokens} (2 for BOS/EOS); longer ones are truncated. Raise "
                "max_fast_tokens or fast_vocab_size.",
                RuntimeWarning,
                stacklevel=2,
            )
        return {
            "text_vocab": float(self.trunk.text.size()),
            "fast_vocab": float(self.fast.tok.get_vocab_size()),
            "fast_tokens_per_chunk": float(lengths.mean()),
        }

    def _normalized_chunks(self, batch: TensorDict) -> torch.Tensor:
        """Normalised action chunks with padded steps holding the last valid action (FAST encodes whole chunks)."""
        action = batch.get(keys.ACTION)
        expected = (self.chunk_size, self.action_dim)
        if action.ndim != 3 or tuple(action.shape[1:]) != expected:
            raise SchemaError(
                f"pi06 expects {keys.ACTION!r} of shape [B, {expected[0]}, {expected[1]}] (chunk_size from the "
                f"config, action_dim from the spec); got {tuple(action.shape)}. Sample windows with "
                f"chunk_size={self.chunk_size}."
            )
        chunks = self.trunk.norm.normalize(keys.ACTION, action.to(self.trunk.device).float())
        if keys.ACTION_IS_PAD in batch:
            valid = ~batch.get(keys.ACTION_IS_PAD).to(chunks.device)
            last = (valid.long() * torch.arange(chunks.shape[1], device=chunks.device)).argmax(1)
            held = chunks[torch.arange(chunks.shape[0], device=chunks.device), last][:, None]
            chunks = torch.where(valid[..., None], chunks, held)
        return chunks

    # -- sequence pieces ----------------------------------------------------------------------------------------

    def subtask_rows(self, subtasks: list[str]) -> list[list[int]]:
        text = self.trunk.text
        ids = text.encode(subtasks) if subtasks else []
        return [[text.subtask_id, *r[: self.config.max_subtask_tokens], text.eos_id] for r in ids]

    def indicator_rows(self, positive: torch.Tensor, dropped: torch.Tensor) -> list[list[int]]:
        pos, neg = self.trunk.text.encode([POSITIVE_TEXT, NEGATIVE_TEXT])
        return [
            [] if d else (pos if p else neg) for p, d in zip(positive.tolist(), dropped.tolist(), strict=True)
        ]

    def fast_rows(self, chunks: torch.Tensor) -> list[list[int]]:
        cap, off = self.config.max_fast_tokens - 2, self.fast_offset
        return [
            [off + self.fast.bos_id, *(off + i for i in r[:cap]), off + self.fast.eos_id]
            for r in self.fast.encode(chunks)
        ]

    def resolve_indicator(
        self, indicator: torch.Tensor | bool | None, size: int, dropped: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(positive, dropped) bool ``[B]`` from the protocol's indicator argument and optional per-sample drops."""
        if indicator is None:
            positive, drop = torch.ones(size, dtype=torch.bool), torch.ones(size, dtype=torch.bool)
        elif isinstance(indicator, bool):
            positive, drop = torch.full((size,), indicator), torch.zeros(size, dtype=torch.bool)
        else:
            if tuple(indicator.shape) != (size,):
                raise SchemaError(
                    f"indicator must be a bool tensor of shape [{size}], got {tuple(indicator.shape)}"
                )
            positive, drop = indicator.detach().cpu().bool(), torch.zeros(size, dtype=torch.bool)
        if dropped is not None:
            if tuple(dropped.shape) != (size,):
                raise SchemaError(
                    f"batch['indicator_dropped'] must be bool [{size}], got {tuple(dropped.shape)}"
                )
            drop = drop | dropped.detach().cpu().bool()
        return positive, drop

    def training_sequence(
        self, batch: TensorDict, positive: torch.Tensor, dropped: torch.Tensor, chunks: torch.Tensor
    ) -> tuple[Tokens, int]:
        """The full training sequence and the width of its expert context (everything before FAST)."""
        trunk = self.trunk
        parts = [trunk.prefix(batch)]
        if self.config.subtask:
            parts.append(trunk.text_tokens(self.subtask_rows(read_texts(batch, keys.SUBTASK)), True, SUBTASK))
        parts.append(trunk.text_tokens(self.indicator_rows(positive, dropped), True, INDICATOR))
        context_width = sum(p.width for p in parts)
        parts.append(trunk.text_tokens(self.fast_rows(chunks), True, FAST))
        return Tokens.cat(parts), context_width

    # -- Policy protocol ---------------------------------------------------------------------------------------

    def per_sample_loss(
        self, batch: TensorDict, indicator: torch.Tensor | None, *, flow_draws: TensorDict | None = None
    ) -> TensorDict:
        """Per-sample ``flow``, ``fast`` and ``subtask`` losses ``[B]`` (see the module docstring).

        ``batch["indicator_dropped"]`` (bool ``[B]``) drops the indicator for those samples (their indicator
        tokens are removed: invisible and position-free).
        """
        size = batch.batch_size[0]
        chunks = self._normalized_chunks(batch)
        drops = batch.get(INDICATOR_DROPPED) if INDICATOR_DROPPED in batch else None
        positive, dropped = self.resolve_indicator(indicator, size, drops)
        tokens, ctx_width = self.training_sequence(batch, positive, dropped, chunks)
        hidden, cache = run_decoder(self.trunk.decoder, tokens)

        subtask = self._segment_nll(hidden, tokens, SUBTASK, 0, self.config.text_vocab_size)
        fast = self._segment_nll(hidden, tokens, FAST, self.fast_offset, self.config.fast_vocab_size)

        targets = F.pad(chunks, (0, self.flow_dim - self.action_dim))  # padded dims are zero, as in pi0
        x_tau, tau, target_velocity = flow_matching_path(targets, self._padded_draws(flow_draws))
        context = [(k[:, :, :ctx_width], v[:, :, :ctx_width]) for k, v in cache]
        ctx_valid = tokens.valid[:, :ctx_width]
        velocity = self.expert(
            x_tau, tau, context, ctx_valid, ctx_valid.long().sum(1), self.expert_state(batch)
        )
        err = (velocity - target_velocity)[..., : self.action_dim].square().mean(-1)  # [B, H], real dims
        flow = masked_chunk_mean(err, batch.get(keys.ACTION_IS_PAD) if keys.ACTION_IS_PAD in batch else None)
        return TensorDict({"flow": flow, "fast": fast, "subtask": subtask}, batch_size=[size])

    def _padded_draws(self, draws: TensorDict | None) -> TensorDict | None:
        """Flow draws with noise over the spec's action dimensions get zero noise in the padding dimensions."""
        if draws is None or draws.get("noise").shape[-1] == self.flow_dim:
            return draws
        noise = F.pad(draws.get("noise"), (0, self.flow_dim - draws.get("noise").shape[-1]))
        return TensorDict({"noise": noise, "time": draws.get("time")}, batch_size=draws.batch_size)

    def expert_state(self, obs: TensorDict) -> torch.Tensor | None:
        """The state token's input for ``state_input = token`` (pi0), else None."""
        return self.trunk.padded_state(obs) if self.config.state_input == "token" else None

    def _segment_nll(
        self, hidden: torch.Tensor, tokens: Tokens, kind: int, offset: int, vocab: int
    ) -> torch.Tensor:
        """Mean next-token NLL inside one segment (teacher forcing): position j predicts token j + 1."""
        start, stop = tokens.span(kind)
        if stop - start < 2:  # no segment (e.g. sub-tasks switched off): nothing to predict
            return hidden.new_zeros(hidden.shape[0])
        ids = tokens.ids[:, start:stop] - offset
        logits = self.trunk.decoder.logits(hidden[:, start : stop - 1], offset, offset + vocab)
        target_valid = tokens.valid[:, start + 1 : stop]
        targets = ids[:, 1:].clamp(0, vocab - 1)
        nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        return (nll * target_valid).sum(1) / target_valid.sum(1).clamp_min(1)

    @torch.no_grad()
    def sample_actions(
        self,
        obs: TensorDict,
        indicator: torch.Tensor | bool | None = True,
        guidance: float = 1.0,
        *,
        generator: torch.Generator | None = None,
        use_cache: bool | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Raw action chunk ``[B, H, A]``: prefix (KV cache), greedy sub-task, indicator, Euler steps, CFG.

        ``obs["subtask"]``, when present, is used instead of decoding (run sub-task decoding at a lower rate
        by passing the last decoded one). ``noise`` ``[B, H, flow_dim]`` replaces the initial draw (it is still
        scaled by ``noise_scale``). See ``recap_pi06.inference``.
        """
        from recap_pi06.inference import sample_chunk

        cache = self.config.kv_cache if use_cache is None else use_cache
        actions, _ = sample_chunk(
            self, obs, indicator, guidance, generator=generator, use_cache=cache, noise=noise
        )
        return actions

    @torch.no_grad()
    def predict_subtask(self, obs: TensorDict) -> list[str]:
        """Greedy sub-task text for each observation."""
        from recap_pi06.inference import decode_subtasks

        return decode_subtasks(self, obs, use_cache=self.config.kv_cache)[1]

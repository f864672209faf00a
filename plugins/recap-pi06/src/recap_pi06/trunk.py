"""What the policy and the value network share: normalisation (``recap.nn``), the text tokenizer, the vision
tower, the decoder, and the observation prefix ``[images][env][Task: prompt (+ metadata). State:][state bins]``.

The embedding table of the decoder holds, in order: text ids ``[0, text_vocab)``, state bins
``[text_vocab, text_vocab + state_bins)`` and then any extra family (the policy's FAST ids).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from tensordict import NonTensorData, NonTensorStack, TensorDict
from torch import nn

from recap.data import keys
from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap.errors import SchemaError
from recap.nn import FeatureNormalizers, rename_on_load
from recap_pi06.backbone import Decoder, VisionEncoder
from recap_pi06.config import DecoderShape, Pi06Config, Pi06ValueConfig, VisionShape
from recap_pi06.text_tokenizer import TextTokenizer
from recap_pi06.tokens import ENV, IMAGE, PROMPT, STATE, Tokens

#: an optional text key with per-sample metadata appended to the prompt (pi0.6 "metadata" inputs)
METADATA = "metadata"


def read_texts(batch: TensorDict, key: str) -> list[str]:
    """The strings of a text entry, one per row ("" for every row when the key is absent)."""
    size = batch.batch_size[0]
    if key not in batch:
        return [""] * size
    value: Any = batch.get(key)
    if isinstance(value, NonTensorStack):
        value = value.tolist()
    elif isinstance(value, NonTensorData):
        value = value.data
    if isinstance(value, str):
        return [value] * size
    value = list(value)
    if len(value) != size:
        raise SchemaError(f"batch text {key!r} has {len(value)} entries for a batch of {size}")
    return [str(v) for v in value]


def policy_inputs(config: Pi06Config) -> dict[str, Any]:
    """How a policy config feeds state and normalises (the value network keeps the defaults: state bins)."""
    return {
        "state_input": config.state_input,
        "state_pad_dim": config.action_pad_dim,
        "normalization": config.normalization,
    }


class Trunk(nn.Module):
    """Vision tower + decoder + tokenizer + statistics; builds the observation prefix."""

    def __init__(
        self,
        spec: RobotSpec,
        stats: NormStats | None,
        vision: VisionShape,
        decoder: DecoderShape,
        *,
        text_vocab: int,
        state_bins: int,
        extra_vocab: int,
        max_prompt_tokens: int,
        uses_env_state: bool,
        text_tokenizer_path: str,
        min_std: float,
        state_input: str = "bins",
        state_pad_dim: int = 0,
        normalization: str = "mean_std",
    ) -> None:
        super().__init__()
        self.spec = spec
        self.text_vocab, self.state_bins, self.max_prompt_tokens = text_vocab, state_bins, max_prompt_tokens
        self.state_input, self.state_pad_dim = state_input, max(state_pad_dim, spec.state_dim)
        self.uses_env_state = uses_env_state and spec.env_state_dim > 0
        # mean/std (or quantile) normalisation; the state tokens discretise [q01, q99] mapped to [-1, 1] (pi0.5)
        dims = {keys.STATE: spec.state_dim, keys.ACTION: spec.action_dim, keys.ENV_STATE: spec.env_state_dim}
        self.norm = FeatureNormalizers(
            dims, stats, min_std=min_std, quantiles=True, require_stats=False, mode=normalization
        )
        rename_on_load(self.norm, self.norm.legacy_flat_keys("", ""))  # checkpoints of before recap.nn
        self.text = TextTokenizer(text_vocab, text_tokenizer_path)
        self.vision = VisionEncoder(vision, decoder.width) if spec.cameras else None
        self.env_proj = nn.Linear(spec.env_state_dim, decoder.width) if self.uses_env_state else None
        self.decoder = Decoder(decoder, text_vocab + state_bins + extra_vocab)

    @classmethod
    def from_config(
        cls,
        config: Pi06Config | Pi06ValueConfig,
        spec: RobotSpec,
        stats: NormStats | None,
        *,
        extra_vocab: int,
    ) -> Trunk:
        """The trunk a policy or value network config describes (``extra_vocab``: ids after the state bins)."""
        return cls(
            spec,
            stats,
            config.vision,
            config.backbone,
            text_vocab=config.text_vocab_size,
            state_bins=config.state_bins,
            extra_vocab=extra_vocab,
            max_prompt_tokens=config.max_prompt_tokens,
            uses_env_state=config.uses_env_state,
            text_tokenizer_path=config.text_tokenizer_path,
            min_std=config.min_std,
            **(policy_inputs(config) if isinstance(config, Pi06Config) else {}),
        )

    def transformer_blocks(self) -> list[nn.Module]:
        vision = list(self.vision.blocks) if self.vision is not None else []
        return vision + list(self.decoder.layers)

    def freezable_parts(self) -> dict[str, nn.Module]:
        parts: dict[str, nn.Module] = {"backbone": self.decoder}
        if self.vision is not None:
            parts["vision"] = self.vision
        return parts

    @property
    def device(self) -> torch.device:
        return self.decoder.embed.weight.device

    def _tensor(self, obs: TensorDict, key: str, trailing: tuple[int, ...]) -> torch.Tensor:
        if key not in obs:
            raise SchemaError(
                f"pi06 needs {key!r} in its input (from the robot spec); the batch has {sorted(obs.keys())}"
            )
        value = obs.get(key)
        if tuple(value.shape[1:]) != trailing:
            raise SchemaError(
                f"{key!r} has shape {tuple(value.shape)}, expected [B, {', '.join(map(str, trailing))}]"
            )
        return value.to(self.device)

    def text_tokens(self, rows: list[list[int]], ar: bool, kind: int, width: int | None = None) -> Tokens:
        """Right-padded rows of ids (full-vocabulary ids) as Tokens of ``width`` (default: the longest row)."""
        width = max((len(r) for r in rows), default=0) if width is None else width
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        valid = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row[:width], dtype=torch.long)
            valid[i, : len(row)] = True
        ids, valid = ids.to(self.device), valid.to(self.device)
        return Tokens.make(self.decoder.embed_tokens(ids), valid, ar, kind, ids)

    def prompts(self, obs: TensorDict) -> list[str]:
        """The prompt per row, by ``state_input``: ``bins``: ``Task: <task>. [<metadata>.] State:`` (the state bins
        follow as their own tokens); ``text`` (pi0.5): ``Task: <task>, State: <bin numbers>;\nAction: ``;
        ``token`` (pi0): ``<task>\n``. Metadata, when present, follows the task. For ``text`` and ``token`` the
        task is cleaned as openpi cleans it (underscores and newlines become spaces)."""
        tasks, meta = read_texts(obs, keys.TASK), read_texts(obs, METADATA)
        tasks = [
            t.strip() + (f". {m.strip()}" if m.strip() else "") for t, m in zip(tasks, meta, strict=True)
        ]
        if self.state_input != "bins":
            tasks = [t.replace("_", " ").replace("\n", " ") for t in tasks]
        if self.state_input == "token":
            return [f"{t}\n" for t in tasks]
        if self.state_input == "text":
            states = [" ".join(map(str, row)) for row in self.discrete_state(obs).tolist()]
            return [f"Task: {t}, State: {s};\nAction: " for t, s in zip(tasks, states, strict=True)]
        return [f"Task: {t}. State:" for t in tasks]

    def prompt_ids(self, obs: TensorDict) -> list[list[int]]:
        """The prompts' token ids, BOS first when the tokenizer has one, cut to ``max_prompt_tokens``. pi0's
        ``<task>\n`` is encoded as the task and then the newline on their own, as openpi encodes it."""
        bos = [] if self.text.bos_id is None else [self.text.bos_id]
        prompts = self.prompts(obs)
        if self.state_input == "token":
            newline = self.text.encode(["\n"])[0]
            rows = [r + newline for r in self.text.encode([p.removesuffix("\n") for p in prompts])]
        else:
            rows = self.text.encode(prompts)
        return [(bos + r)[: self.max_prompt_tokens] for r in rows]

    def padded_state(self, obs: TensorDict) -> torch.Tensor:
        """The normalised state ``[B, state_pad_dim]`` (zero-padded past the spec's dimensions)."""
        state = self._tensor(obs, keys.STATE, (self.spec.state_dim,)).float()
        state = self.norm.normalize(keys.STATE, state)
        return F.pad(state, (0, self.state_pad_dim - state.shape[1]))

    def discrete_state(self, obs: TensorDict) -> torch.Tensor:
        """State bins ``[B, D]`` (:meth:`state_bin_ids`; for ``text`` the padding dimensions too, in the middle
        bin, as pi0.5 writes all 32)."""
        if self.spec.state_dim == 0:
            return torch.zeros(obs.batch_size[0], 0, dtype=torch.long)
        bins = self.state_bin_ids(self._tensor(obs, keys.STATE, (self.spec.state_dim,)).float())
        if self.state_input == "text" and self.state_pad_dim > bins.shape[1]:
            bins = F.pad(bins, (0, self.state_pad_dim - bins.shape[1]), value=self.state_bins // 2)
        return bins

    def state_bin_ids(self, state: torch.Tensor) -> torch.Tensor:
        """Each state dimension's bin in ``[0, state_bins)``: ``[q01, q99]`` split evenly, the tails clamped."""
        unit = (self.norm.of(keys.STATE).to_quantile_range(state) + 1.0) / 2.0
        return (unit * self.state_bins).floor().long().clamp(0, self.state_bins - 1)

    def prefix(self, obs: TensorDict) -> Tokens:
        """The observation prefix (all ``ar = 0``: bidirectional)."""
        size = obs.batch_size[0]
        parts: list[Tokens] = []
        for cam in self.spec.cameras:
            frames = self._tensor(obs, cam.key, cam.shape)
            emb = self.vision(frames)
            parts.append(
                Tokens.make(emb, torch.ones(emb.shape[:2], dtype=torch.bool, device=emb.device), False, IMAGE)
            )
        if self.env_proj is not None:
            env = self.norm.normalize(
                keys.ENV_STATE, self._tensor(obs, keys.ENV_STATE, (self.spec.env_state_dim,)).float()
            )
            emb = self.env_proj(env)[:, None, :]
            parts.append(
                Tokens.make(emb, torch.ones(size, 1, dtype=torch.bool, device=emb.device), False, ENV)
            )
        parts.append(self.text_tokens(self.prompt_ids(obs), False, PROMPT))
        if self.spec.state_dim > 0 and self.state_input == "bins":
            ids = self.text_vocab + self.discrete_state(obs)
            valid = torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
            parts.append(Tokens.make(self.decoder.embed_tokens(ids), valid, False, STATE, ids))
        return Tokens.cat(parts)

"""The default value network "conv-mlp": small enough to train on a CPU in minutes.

    logits = MLP([ conv_c(image_c) for each camera c ] ++ [ mlp(norm(state)) ] ++ [ mlp(norm(env_state)) ]
                 ++ [ task_embedding(task text) ])   ->  [B, num_bins]

Each camera has its own conv encoder (stride-2 3x3 convs, GroupNorm, GELU, a 4x4 adaptive pool, linear); the
frames are resized to ``image_size`` rows first, keeping the aspect ratio. State inputs are standardised with the
dataset statistics (kept as buffers, so a checkpoint carries them). The task embedding is either a learned table
over a fixed list of prompts, or the mean of learned embeddings of hashed words and of the whole prompt, which
also gives unseen prompts a sensible embedding from the words they share with known ones.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from tensordict import TensorDict
from torch import nn

from recap.config import ValueNetworkConfig
from recap.data import keys, text
from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap.errors import SchemaError
from recap.nn import Normalizer, rename_on_load
from recap.nn.normalizer import DEFAULT_MIN_STD


@attrs.frozen
class ConvMLPConfig(ValueNetworkConfig):
    """Settings of the "conv-mlp" value network.

    Attributes:
        cameras: cameras to read (None: every camera of the spec; (): no images).
        image_size: frames are resized to this many rows (aspect ratio kept) before the conv encoder.
        channels: output channels of the stride-2 conv layers, one entry per layer.
        image_features: features per camera after the encoder.
        state_features: features of the state (and environment-state) encoder.
        use_env_state: read ``observation.environment_state`` when the spec has one (privileged sim state).
        task_embedding: "hash" (hashed words of the prompt; any prompt works) or "table" (one learned row per
            prompt in ``tasks``; other prompts are refused).
        task_buckets: rows of the hashed embedding table.
        tasks: the prompts of the "table" embedding.
        task_features: size of the task embedding.
        hidden: width of the head MLP.
        depth: hidden layers of the head MLP.
        dropout: dropout in the head MLP.
        min_std: floor on the standard deviation that standardises state and environment state (raw units):
            a dimension that barely moved in the data (std 0.005 rad) would otherwise turn a small deviation of
            the robot's own rollouts into a huge input.
    """

    cameras: tuple[str, ...] | None = None
    image_size: int = 64
    channels: tuple[int, ...] = (16, 32, 64)
    image_features: int = 64
    state_features: int = 64
    use_env_state: bool = True
    task_embedding: Literal["hash", "table"] = "hash"
    task_buckets: int = 1024
    tasks: tuple[str, ...] = ()
    task_features: int = 32
    hidden: int = 256
    depth: int = 2
    dropout: float = 0.0
    min_std: float = attrs.field(default=DEFAULT_MIN_STD, validator=attrs.validators.gt(0.0))

    def __attrs_post_init__(self) -> None:
        if self.task_embedding == "table" and not self.tasks:
            raise ValueError("task_embedding='table' needs the list of task prompts in `tasks`")
        if self.depth < 1 or self.hidden < 1 or self.image_size < 8:
            raise ValueError("depth and hidden must be >= 1 and image_size >= 8")


@lru_cache(maxsize=65536)
def _hash_ids(prompt: str, buckets: int) -> tuple[int, ...]:
    """Bucket ids of the whole prompt and of each lower-cased word (stable across processes, unlike hash())."""
    words = prompt.lower().split()
    tokens = ["<prompt>" + prompt.strip().lower(), *words] if words else ["<empty>"]
    return tuple(
        int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") % buckets
        for t in tokens
    )


class TaskEmbedding(nn.Module):
    """Task prompt -> ``[B, task_features]`` ("hash" or "table", see ConvMLPConfig)."""

    def __init__(self, config: ConvMLPConfig) -> None:
        super().__init__()
        self.kind = config.task_embedding
        self.buckets = config.task_buckets
        self.tasks = {t: i for i, t in enumerate(config.tasks)}
        rows = self.buckets if self.kind == "hash" else len(self.tasks)
        self.table = nn.EmbeddingBag(rows, config.task_features, mode="mean")
        nn.init.normal_(self.table.weight, std=0.1)

    def forward(self, prompts: list[str]) -> torch.Tensor:
        device = self.table.weight.device
        if self.kind == "table":
            unknown = sorted({p for p in prompts if p not in self.tasks})
            if unknown:
                raise SchemaError(
                    f"task prompt(s) {unknown[:3]} are not in this value network's task table {sorted(self.tasks)}; "
                    "use task_embedding='hash' to accept new prompts, or add them to `tasks` and retrain"
                )
            idx = torch.tensor([self.tasks[p] for p in prompts], device=device)
            return self.table(idx[:, None])
        ids = [_hash_ids(p, self.buckets) for p in prompts]
        flat = torch.tensor([i for row in ids for i in row], device=device)
        offsets = torch.tensor(
            [0, *torch.tensor([len(r) for r in ids]).cumsum(0)[:-1].tolist()], device=device
        )
        return self.table(flat, offsets)


class ConvEncoder(nn.Module):
    """uint8 ``[B, H, W, 3]`` frames -> ``[B, features]``."""

    def __init__(self, height: int, width: int, config: ConvMLPConfig) -> None:
        super().__init__()
        self.size = (config.image_size, max(8, round(config.image_size * width / height)))
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in config.channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(1, c_out), nn.GELU()]
            c_in = c_out
        self.convs = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.out = nn.Linear(c_in * 16, config.image_features)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float()
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        # resizing is linear, so scale pixels to about [-2, 2] after it, on fewer pixels
        return F.gelu(self.out(self.convs(x.mul_(4.0 / 255.0).sub_(2.0))))


class VectorEncoder(nn.Module):
    """Standardised vector -> features; the statistics live in a ``recap.nn.Normalizer`` (buffers, so
    checkpoints carry them)."""

    def __init__(self, dim: int, features: int, stats: NormStats | None, key: str, min_std: float) -> None:
        super().__init__()
        feature = stats[key] if stats is not None and key in stats else None
        self.norm = Normalizer(dim, feature, min_std=min_std, name=key)
        rename_on_load(self, {"mean": "norm.mean", "std": "norm.std"})  # checkpoints of before recap.nn
        self.net = nn.Sequential(
            nn.Linear(dim, features), nn.GELU(), nn.Linear(features, features), nn.GELU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm.normalize(x.float()))


class ConvMLPValueNet(nn.Module):
    """Observation batch -> value-bin logits ``[B, num_bins]`` (the "conv-mlp" value network)."""

    def __init__(
        self, config: ConvMLPConfig, spec: RobotSpec, num_bins: int, stats: NormStats | None
    ) -> None:
        super().__init__()
        self.config = config
        cams = spec.camera_names if config.cameras is None else config.cameras
        for c in cams:
            spec.camera(c)  # a clear error for a camera the robot does not have
        self.cameras = tuple(cams)
        self.input_cameras = self.cameras  # training reads only these frames
        self.images = nn.ModuleDict(
            {c: ConvEncoder(spec.camera(c).height, spec.camera(c).width, config) for c in cams}
        )
        self.state = VectorEncoder(spec.state_dim, config.state_features, stats, keys.STATE, config.min_std)
        self.env_state = None
        if config.use_env_state and spec.env_state_dim > 0:
            self.env_state = VectorEncoder(
                spec.env_state_dim, config.state_features, stats, keys.ENV_STATE, config.min_std
            )
        self.task = TaskEmbedding(config)
        width = len(cams) * config.image_features + config.state_features * (2 if self.env_state else 1)
        width += config.task_features
        layers: list[nn.Module] = []
        for _ in range(config.depth):
            layers += [nn.Linear(width, config.hidden), nn.GELU(), nn.Dropout(config.dropout)]
            width = config.hidden
        head = nn.Linear(width, num_bins)
        nn.init.zeros_(head.weight)  # start from the uniform distribution over bins
        nn.init.zeros_(head.bias)
        self.head = nn.Sequential(*layers, head)

    def forward(self, obs: TensorDict) -> torch.Tensor:
        missing = [k for k in self.required_keys() if k not in obs]
        if missing:
            raise SchemaError(f"observation lacks {missing}; it has {sorted(obs.keys())}")
        parts = [self.images[c](obs[keys.image_key(c)]) for c in self.cameras]
        parts.append(self.state(obs[keys.STATE]))
        if self.env_state is not None:
            parts.append(self.env_state(obs[keys.ENV_STATE]))
        parts.append(self.task(text(obs, keys.TASK)))
        return self.head(torch.cat(parts, dim=-1))

    def required_keys(self) -> list[str]:
        req = [keys.image_key(c) for c in self.cameras] + [keys.STATE, keys.TASK]
        return req + ([keys.ENV_STATE] if self.env_state is not None else [])

"""Built-in policy "mlp-flow": a small, real flow-matching MLP policy with an advantage-indicator input.

It ships in the core so tests, the CPU demo and third-party extractors always have a real policy to train: it
is the tiny policy every conformance suite runs on and the CPU workhorse of the end-to-end demo (a
~530k-parameter MLP over state + privileged object state learnt the transfer-cube hand-over).

Flow matching as in ``recap.nn.flow`` (pi0 convention), in normalised action units::

    x_tau = tau * eps + (1 - tau) * a,   u = eps - a,   loss = || v_theta(x_tau, tau, c) - u ||^2
    tau ~ Beta(1.5, 1) mapped to [0.001, 1]

Sampling integrates dx/dtau = v from tau = 1 (x = noise_scale * eps) to tau = 0 with Euler steps; with
classifier-free guidance the velocity is ``v_u + beta * (v_c - v_u)``, both branches in one batched forward.
The context c concatenates the normalised state (and optional environment state), a hashed task embedding,
an indicator embedding (tokens: negative, positive, dropped) and optionally a small conv encoding of one camera.
"""

from __future__ import annotations

import functools
import math
import zlib

import attrs
import torch
from tensordict import TensorDict
from torch import nn

from recap.config import PolicyConfig
from recap.data import keys, text
from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap.errors import ConfigError, SchemaError
from recap.nn import FeatureNormalizers, flow_matching_path, masked_chunk_mean, rename_on_load
from recap.nn.normalizer import DEFAULT_MIN_STD, NORMALIZATION_MODES
from recap.nn.rtc import guided_velocity, inpainting_weights
from recap.plugins import hookimpl
from recap.protocols.policy import Inpainting

#: indicator embedding rows
NEGATIVE, POSITIVE, DROPPED = 0, 1, 2
#: highest angular frequency of the sinusoidal flow-time features (tau in [0, 1]); small MLPs interpolate
#: poorly between the much higher frequencies transformers use
MAX_TIME_FREQUENCY = 50.0


@attrs.frozen
class FlowMLPConfig(PolicyConfig):
    """Settings of :class:`FlowMLPPolicy`.

    Attributes:
        hidden: width of the velocity MLP.
        depth: hidden layers of the velocity MLP.
        chunk_size: actions per chunk (H).
        num_steps: Euler steps when sampling (pi0: 10).
        noise_scale: scale of the initial noise when sampling; 0 starts every chunk from zero noise, which is
            deterministic and made a large difference on transfer cube (docs/results-history.md).
        uses_env_state: feed ``observation.environment_state`` (privileged object state, simulation only).
        camera: name of one camera to encode with a small conv net, or None for no images.
        image_size: the camera frame is resized to this square size before the conv encoder.
        task_buckets: rows of the hashed task-embedding table.
        embed_dim: width of the task, indicator, time and image embeddings.
        min_std: floor on the standard deviations that normalise state, environment state and actions (raw
            units). Joints that barely move in the demonstrations (std 0.005 rad) otherwise turn the small
            deviations of the robot's own rollouts into inputs and targets of 10+ standard deviations
            (``recap.nn.Normalizer``).
        normalization: ``mean_std`` or ``quantile`` (the store's 1st / 99th percentiles map to -1 / 1, pi0.5's
            choice; ``min_std`` then plays no part).
    """

    hidden: int = attrs.field(default=384, validator=attrs.validators.ge(1))
    depth: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    chunk_size: int = attrs.field(default=20, validator=attrs.validators.ge(1))
    num_steps: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    noise_scale: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    uses_env_state: bool = False
    camera: str | None = None
    image_size: int = attrs.field(default=64, validator=attrs.validators.ge(16))
    task_buckets: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    embed_dim: int = attrs.field(default=32, validator=attrs.validators.ge(2))
    min_std: float = attrs.field(default=DEFAULT_MIN_STD, validator=attrs.validators.gt(0.0))
    normalization: str = attrs.field(default="mean_std", validator=attrs.validators.in_(NORMALIZATION_MODES))


def read_texts(batch: TensorDict, key: str, size: int) -> list[str]:
    """The text entries ``key`` of a batch as ``size`` strings.

    A missing task is an error rather than "": an untrained task embedding would silently change the actions.
    """
    if key not in batch:
        raise SchemaError(
            f"FlowMLPPolicy needs the text key {key!r} (the task prompt) in its input; the batch has "
            f"{sorted(batch.keys())}. Set it with batch.set_non_tensor({key!r}, prompt)."
        )
    texts = text(batch, key)
    if len(texts) != size:
        raise SchemaError(f"batch text {key!r} has {len(texts)} entries for a batch of {size}")
    return texts


@functools.lru_cache(maxsize=4096)
def task_bucket(task: str, buckets: int) -> int:
    """A stable hash of the task prompt (Python's ``hash`` is salted per process, so use crc32)."""
    return zlib.crc32(task.encode("utf-8")) % buckets


class _ImageEncoder(nn.Module):
    """uint8 [B, H, W, 3] -> [B, out_dim]: three strided convs and a global average pool."""

    def __init__(self, size: int, out_dim: int) -> None:
        super().__init__()
        self.size = size
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=2, padding=2),
            nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(256, out_dim),
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if x.shape[-2:] != (self.size, self.size):
            x = nn.functional.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False
            )
        return self.net(x)


class FlowMLPPolicy(nn.Module):
    """A flow-matching MLP policy implementing ``recap.protocols.Policy``.

    Build with ``FlowMLPPolicy(config, spec, stats)``; ``stats`` (``NormStats`` with ``observation.state``,
    ``action`` and, when used, ``observation.environment_state``) may be None for identity normalisation.
    The statistics are buffers, so they travel with ``state_dict``.
    """

    def __init__(self, config: FlowMLPConfig, spec: RobotSpec, stats: NormStats | None = None) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.chunk_size = config.chunk_size
        self.action_dim = spec.action_dim
        if config.uses_env_state and spec.env_state_dim <= 0:
            raise ConfigError(
                "FlowMLPConfig.uses_env_state is set but the robot spec has env_state_dim = 0; "
                "record privileged object state or set uses_env_state = false"
            )
        if config.camera is not None and config.camera not in spec.camera_names:
            raise ConfigError(
                f"FlowMLPConfig.camera = {config.camera!r} is not a camera of the spec {list(spec.camera_names)}"
            )
        dims = {keys.STATE: spec.state_dim, keys.ACTION: spec.action_dim}
        if config.uses_env_state:
            dims[keys.ENV_STATE] = spec.env_state_dim
        self.norm = FeatureNormalizers(dims, stats, min_std=config.min_std, mode=config.normalization)
        rename_on_load(self, self.norm.legacy_flat_keys("norm_", "norm."))  # checkpoints of before recap.nn
        e = config.embed_dim
        self.task_embed = nn.Embedding(config.task_buckets, e)
        self.indicator_embed = nn.Embedding(3, e)
        self.image_encoder = _ImageEncoder(config.image_size, e) if config.camera else None
        self.input_cameras = (config.camera,) if config.camera else ()  # frames training must load
        ctx_dim = spec.state_dim + (spec.env_state_dim if config.uses_env_state else 0) + 2 * e
        ctx_dim += e if config.camera else 0
        self.context_dim = ctx_dim
        flat = self.chunk_size * self.action_dim
        layers: list[nn.Module] = [nn.Linear(ctx_dim + flat + e, config.hidden), nn.SiLU()]
        for _ in range(config.depth - 1):
            layers += [nn.Linear(config.hidden, config.hidden), nn.SiLU()]
        layers.append(nn.Linear(config.hidden, flat))
        self.velocity = nn.Sequential(*layers)
        self.register_buffer(
            "_freqs", torch.exp(torch.linspace(0.0, math.log(MAX_TIME_FREQUENCY), e // 2)), persistent=False
        )

    # -- network pieces ------------------------------------------------------------------------------------

    def _observation_features(self, obs: TensorDict) -> torch.Tensor:
        """Everything of the context except the indicator: [B, ctx_dim - embed_dim]."""
        size = obs.batch_size[0]
        device = self._freqs.device
        parts = [
            self.norm.normalize(keys.STATE, _get(obs, keys.STATE, self.spec.state_dim).to(device).float())
        ]
        if self.config.uses_env_state:
            env = _get(obs, keys.ENV_STATE, self.spec.env_state_dim).to(device).float()
            parts.append(self.norm.normalize(keys.ENV_STATE, env))
        buckets = [task_bucket(t, self.config.task_buckets) for t in read_texts(obs, keys.TASK, size)]
        parts.append(self.task_embed(torch.tensor(buckets, device=device)))
        if self.image_encoder is not None:
            key = keys.image_key(self.config.camera)
            if key not in obs:
                raise SchemaError(
                    f"FlowMLPPolicy needs camera frames {key!r}; the batch has {sorted(obs.keys())}"
                )
            parts.append(self.image_encoder(obs.get(key).to(device)))
        return torch.cat(parts, dim=-1)

    def _time_features(self, tau: torch.Tensor) -> torch.Tensor:
        angles = tau[:, None] * self._freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def _velocity(self, x: torch.Tensor, tau: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        size = x.shape[0]
        out = self.velocity(torch.cat([context, x.reshape(size, -1), self._time_features(tau)], dim=-1))
        return out.view(size, self.chunk_size, self.action_dim)

    def _indicator_tokens(self, indicator: torch.Tensor | bool | None, size: int) -> torch.Tensor:
        device = self._freqs.device
        if indicator is None:
            return torch.full((size,), DROPPED, dtype=torch.long, device=device)
        if isinstance(indicator, bool):
            return torch.full((size,), POSITIVE if indicator else NEGATIVE, dtype=torch.long, device=device)
        if indicator.shape != (size,):
            raise SchemaError(f"indicator must have shape [{size}], got {tuple(indicator.shape)}")
        return indicator.to(device=device, dtype=torch.bool).long()

    # -- Policy protocol -----------------------------------------------------------------------------------

    def per_sample_loss(
        self,
        batch: TensorDict,
        indicator: torch.Tensor | None,
        *,
        flow_draws: TensorDict | None = None,
    ) -> TensorDict:
        """Per-sample flow-matching MSE ``{"flow": [B]}``, averaged over action dims and valid chunk steps.

        ``batch["indicator_dropped"]`` (bool [B]) drops the indicator for those samples only.
        """
        size = batch.batch_size[0]
        device = self._freqs.device
        action = batch.get(keys.ACTION).to(device).float()
        if action.shape != (size, self.chunk_size, self.action_dim):
            raise SchemaError(
                f"FlowMLPPolicy expects {keys.ACTION!r} of shape [B, {self.chunk_size}, {self.action_dim}] "
                f"(chunk_size from its config, action_dim from the spec); got {tuple(action.shape)}"
            )
        tokens = self._indicator_tokens(indicator, size)
        if "indicator_dropped" in batch:
            tokens = torch.where(batch.get("indicator_dropped").to(device), DROPPED, tokens)
        context = torch.cat([self._observation_features(batch), self.indicator_embed(tokens)], dim=-1)
        x_tau, tau, target_velocity = flow_matching_path(self.norm.normalize(keys.ACTION, action), flow_draws)
        err = (self._velocity(x_tau, tau, context) - target_velocity).square().mean(-1)  # [B, H]
        is_pad = batch.get(keys.ACTION_IS_PAD) if keys.ACTION_IS_PAD in batch else None
        return TensorDict({"flow": masked_chunk_mean(err, is_pad)}, batch_size=[size])

    @torch.no_grad()
    def sample_actions(
        self,
        obs: TensorDict,
        indicator: torch.Tensor | bool | None = True,
        guidance: float = 1.0,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Euler-integrate the flow from tau = 1 to 0; returns raw actions ``[B, H, A]``.

        With ``indicator`` given and ``guidance`` not in {0, 1}: ``v = v_u + guidance * (v_c - v_u)``, the
        conditional and unconditional branches stacked into one forward pass per step.
        """
        return self.sample_flow(obs, indicator, guidance, generator=generator)

    @torch.no_grad()
    def sample_flow(
        self,
        obs: TensorDict,
        indicator: torch.Tensor | bool | None = True,
        guidance: float = 1.0,
        *,
        noise: torch.Tensor | None = None,
        inpainting: Inpainting | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``sample_actions`` from a given start ``noise`` (normalised units, not scaled by ``noise_scale``),
        optionally guided by real-time chunking (``recap.protocols.FlowPolicy``, ``recap.nn.rtc``)."""
        size = obs.batch_size[0]
        device = self._freqs.device
        features = self._observation_features(obs)
        cond = self._indicator_tokens(indicator, size)
        guided = indicator is not None and guidance not in (0.0, 1.0)
        if indicator is not None and guidance == 0.0:
            cond = self._indicator_tokens(None, size)
        if guided:
            tokens = torch.cat([cond, self._indicator_tokens(None, size)])
            features = torch.cat([features, features])
        else:
            tokens = cond
        context = torch.cat([features, self.indicator_embed(tokens)], dim=-1)
        shape = (size, self.chunk_size, self.action_dim)
        if noise is None:
            x = torch.randn(shape, generator=generator, device=device) * self.config.noise_scale
        elif tuple(noise.shape) != shape:
            raise SchemaError(
                f"noise must have shape {list(shape)} (batch, chunk, action), got {list(noise.shape)}"
            )
        else:
            x = noise.to(device=device, dtype=torch.float32)

        def velocity(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
            if not guided:
                return self._velocity(x, tau, context)
            v_c, v_u = self._velocity(torch.cat([x, x]), torch.cat([tau, tau]), context).chunk(2)
            return v_u + guidance * (v_c - v_u)

        if inpainting is not None:
            target = self.norm.normalize(keys.ACTION, inpainting.target.to(device).float())
            weights = inpainting_weights(self.chunk_size, inpainting.frozen, inpainting.guided)
        steps = self.config.num_steps
        for i in range(steps):
            level = 1.0 - i / steps
            tau = torch.full((size,), level, device=device)
            if inpainting is None:
                v = velocity(x, tau)
            else:
                v = guided_velocity(
                    lambda x_in, tau=tau: velocity(x_in, tau),
                    x,
                    level,
                    target,
                    weights,
                    inpainting.max_guidance,
                )
            x = x - v / steps
        return self.norm.unnormalize(keys.ACTION, x)


def _get(obs: TensorDict, key: str, dim: int) -> torch.Tensor:
    if key not in obs:
        raise SchemaError(f"FlowMLPPolicy needs {key!r} in its input; the batch has {sorted(obs.keys())}")
    value = obs.get(key)
    if value.shape[-1] != dim:
        raise SchemaError(f"{key!r} has last dimension {value.shape[-1]}, the robot spec says {dim}")
    return value


def build_flow_mlp(config: FlowMLPConfig, spec: RobotSpec, stats: NormStats | None) -> FlowMLPPolicy:
    """The registered factory of policy "mlp-flow"."""
    return FlowMLPPolicy(config, spec, stats)


@hookimpl
def register_policies(register) -> None:
    register("mlp-flow", build_flow_mlp, config=FlowMLPConfig)

"""The transport-free half of the policy server: read a request, run a batch of them, describe the policy.

Optional Recap request fields (flattened names; a nested ``recap`` map works too):

    recap/indicator            "positive" | "none" | "negative"   advantage indicator (default: the checkpoint's)
    recap/guidance             float                               CFG beta (default: the checkpoint's)
    recap/noise                float [H, A]                        the flow's initial noise (flow policies)
    recap/inpaint/target       float [H, A]                        real-time chunking target (raw actions)
    recap/inpaint/frozen       int                                 steps executing during the delay (d)
    recap/inpaint/guided       int                                 end of the guided steps (H - s)
    recap/inpaint/max_guidance float                               clip of the guidance weight (default 5)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from tensordict import NonTensorStack, TensorDict

from recap.data import keys
from recap.data.schema import spec_from_dict
from recap.data.spec import RobotSpec
from recap.deploy.adapter import ObservationAdapter, flatten
from recap.deploy.codec import ProtocolError
from recap.errors import ConfigError
from recap.protocols import DeploymentSettings, FlowPolicy, Inpainting, Policy

PREFIX = "recap/"
INDICATORS: dict[str, bool | None] = {"positive": True, "none": None, "negative": False}
INDICATOR_NAMES: dict[bool | None, str] = {value: name for name, value in INDICATORS.items()}
PROTOCOL_VERSION = 1


@attrs.frozen
class Request:
    """One validated inference request."""

    obs: TensorDict
    prompt: str
    indicator: bool | None
    guidance: float
    noise: torch.Tensor | None = None
    inpainting: Inpainting | None = None

    def batch_key(self) -> tuple[Any, ...]:
        """Requests with equal keys are sampled in one policy call."""
        inpaint = self.inpainting
        shape = None if inpaint is None else (inpaint.frozen, inpaint.guided, inpaint.max_guidance)
        return (self.indicator is None, self.guidance, self.noise is not None, shape)


class PolicyService:
    """Validates requests against a policy's spec and samples batches of them."""

    def __init__(
        self,
        policy: Policy,
        spec: RobotSpec,
        *,
        deployment: DeploymentSettings | None = None,
        adapter: ObservationAdapter | None = None,
        policy_id: str = "",
    ):
        self.policy, self.spec = policy, spec
        self.deployment = deployment or DeploymentSettings()
        self.adapter = adapter or ObservationAdapter()
        self.policy_id = policy_id
        self.horizon, self.action_dim = int(policy.chunk_size), int(policy.action_dim)
        self.flow = isinstance(policy, FlowPolicy)
        self.required_cameras = tuple(getattr(policy, "input_cameras", spec.camera_names))

    # -- requests ------------------------------------------------------------------------------------------

    def parse(self, message: Any) -> Request:
        """A ``Request`` from a decoded message; ``ProtocolError`` names the offending field."""
        fields = flatten(message)
        extra = {k[len(PREFIX) :]: v for k, v in fields.items() if k.startswith(PREFIX)}
        obs, prompt = self.adapter.to_observation(
            {k: v for k, v in fields.items() if not k.startswith(PREFIX)}, self.spec, self.required_cameras
        )
        known = {"indicator", "guidance", "noise", "inpaint/target", "inpaint/frozen", "inpaint/guided"}
        known.add("inpaint/max_guidance")
        for name in extra:
            if name not in known:
                raise ProtocolError(
                    f"unknown field {PREFIX + name!r}; recap fields: {sorted(PREFIX + k for k in known)}"
                )
        indicator = self.deployment.indicator
        if "indicator" in extra:
            if extra["indicator"] not in INDICATORS:
                raise ProtocolError(
                    f"field 'recap/indicator': expected one of {list(INDICATORS)}, got {extra['indicator']!r}"
                )
            indicator = INDICATORS[extra["indicator"]]
        guidance = self.deployment.guidance
        if "guidance" in extra:
            value = extra["guidance"]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.number))
                or not np.isfinite(value)
            ):
                raise ProtocolError(
                    f"field 'recap/guidance': expected a finite number (CFG beta), got {value!r}"
                )
            guidance = float(value)
        noise = self._chunk(extra, "noise") if "noise" in extra else None
        inpainting = self._inpainting(extra) if any(k.startswith("inpaint/") for k in extra) else None
        if (noise is not None or inpainting is not None) and not self.flow:
            raise ProtocolError(
                "fields 'recap/noise' and 'recap/inpaint/*' need a flow policy with sample_flow; this one has none"
            )
        return Request(obs, prompt, indicator, guidance, noise, inpainting)

    def _chunk(self, extra: Mapping[str, Any], name: str) -> torch.Tensor:
        value = extra[name]
        shape = (self.horizon, self.action_dim)
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.shape != shape:
            got = (
                f"{value.dtype} {list(value.shape)}"
                if isinstance(value, np.ndarray)
                else type(value).__name__
            )
            raise ProtocolError(
                f"field {PREFIX + name!r}: expected a float array of shape {list(shape)}, got {got}"
            )
        return torch.from_numpy(value.astype(np.float32))

    def _inpainting(self, extra: Mapping[str, Any]) -> Inpainting:
        if "inpaint/target" not in extra:
            raise ProtocolError("field 'recap/inpaint/target' is missing (real-time chunking needs it)")
        ints = {}
        for name in ("frozen", "guided"):
            value = extra.get(f"inpaint/{name}")
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ProtocolError(f"field 'recap/inpaint/{name}': expected an integer, got {value!r}")
            ints[name] = int(value)
        beta = extra.get("inpaint/max_guidance", 5.0)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)):
            raise ProtocolError(f"field 'recap/inpaint/max_guidance': expected a number, got {beta!r}")
        try:
            return Inpainting(
                self._chunk(extra, "inpaint/target")[None], ints["frozen"], ints["guided"], float(beta)
            )
        except ValueError as exc:
            raise ProtocolError(f"fields 'recap/inpaint/*': {exc}") from None

    # -- inference -----------------------------------------------------------------------------------------

    def infer(self, requests: Sequence[Request]) -> tuple[list[np.ndarray], float]:
        """Actions ``[H, A]`` float32 per request (same order) and the policy time in ms; one call per group."""
        out: list[np.ndarray | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(request.batch_key(), []).append(i)
        start = time.perf_counter()
        for members in groups.values():
            chunks = self._sample([requests[i] for i in members])
            for i, chunk in zip(members, chunks, strict=True):
                out[i] = chunk
        return [c for c in out if c is not None], (time.perf_counter() - start) * 1000.0

    def _sample(self, group: Sequence[Request]) -> np.ndarray:
        first = group[0]
        batch = torch.stack([r.obs for r in group])
        batch[keys.TASK] = NonTensorStack.from_list([r.prompt for r in group])
        indicator = None if first.indicator is None else torch.tensor([bool(r.indicator) for r in group])
        with torch.no_grad():
            if first.noise is None and first.inpainting is None:
                actions = self.policy.sample_actions(batch, indicator, first.guidance)
            else:
                inpainting = None
                if first.inpainting is not None:
                    target = torch.cat([r.inpainting.target for r in group if r.inpainting is not None])
                    inpainting = attrs.evolve(first.inpainting, target=target)
                noise = (
                    None
                    if first.noise is None
                    else torch.stack([r.noise for r in group if r.noise is not None])
                )
                assert isinstance(self.policy, FlowPolicy)
                actions = self.policy.sample_flow(
                    batch, indicator, first.guidance, noise=noise, inpainting=inpainting
                )
        return actions.float().cpu().numpy()

    # -- metadata ------------------------------------------------------------------------------------------

    def metadata(self, max_batch: int) -> dict[str, Any]:
        """What the server sends on connect: enough for a client to build observations and run chunks."""
        spec = self.spec
        return {
            "policy_id": self.policy_id,
            "action_dim": self.action_dim,
            "state_dim": spec.state_dim,
            "action_horizon": self.horizon,
            "control_rate_hz": spec.fps,
            "joint_names": list(spec.joint_names),
            "cameras": {
                field[len("images/") :]: [3, spec.camera(c).height, spec.camera(c).width]
                for field, c in self.adapter.camera_fields(spec).items()
            },
            "required_cameras": list(self.required_cameras),
            "env_state_dim": spec.env_state_dim,
            "recap": {
                "protocol": PROTOCOL_VERSION,
                "indicator": INDICATOR_NAMES[self.deployment.indicator],
                "guidance": self.deployment.guidance,
                "flow": self.flow,
                "max_batch": max_batch,
            },
        }


def load_service(
    directory: str | Path,
    *,
    adapter: ObservationAdapter | None = None,
    indicator: str | None = None,
    guidance: float | None = None,
    device: str = "cpu",
    registry: Any = None,
) -> PolicyService:
    """A service for the policy checkpoint in ``directory``; ``indicator``/``guidance`` override its defaults.

    The policy id is the directory name and the first 12 hex digits of its weights' SHA-256.
    """
    from recap.train.checkpoint import SPEC, WEIGHTS, load_policy

    directory = Path(directory)
    policy, deployment = load_policy(directory, registry)
    spec = spec_from_dict(json.loads((directory / SPEC).read_text()))
    if indicator is not None:
        if indicator not in INDICATORS:
            raise ConfigError(f"indicator must be one of {list(INDICATORS)}, got {indicator!r}")
        deployment = attrs.evolve(deployment, indicator=INDICATORS[indicator])
    if guidance is not None:
        deployment = attrs.evolve(deployment, guidance=float(guidance))
    digest = hashlib.sha256((directory / WEIGHTS).read_bytes()).hexdigest()[:12]
    return PolicyService(
        policy.to(device),
        spec,
        deployment=deployment,
        adapter=adapter,
        policy_id=f"{directory.resolve().name}-{digest}",
    )

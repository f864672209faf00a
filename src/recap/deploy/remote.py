"""A Policy that lives behind a policy server (ours or any openpi-protocol server).

``connect_policy("ws://gpu-box:8000")`` reads the server's metadata and returns a Policy-shaped client:
``sample_actions`` sends one request per batch element and stacks the returned chunks, so ``recap collect``,
``recap evaluate`` and the rollout runner drive it like a local policy. A recap server also takes the advantage
indicator, CFG beta, initial noise and real-time-chunking fields, so the client it returns for a flow policy
has ``sample_flow`` too. A lost connection raises ``PolicyUnavailableError`` (the runner holds position and
retries); the next call reconnects.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import torch
import websockets
from tensordict import TensorDict
from websockets.sync.client import ClientConnection, connect

from recap.data import keys, text
from recap.data.spec import RobotSpec
from recap.deploy import codec
from recap.deploy.adapter import ObservationAdapter
from recap.deploy.service import INDICATOR_NAMES, INDICATORS
from recap.errors import ConfigError, PolicyUnavailableError, RecapError
from recap.protocols import DeploymentSettings, Inpainting

log = logging.getLogger(__name__)

#: environment variable holding the API key, so it does not show in process listings
API_KEY_ENV = "RECAP_API_KEY"


class ServerError(RecapError, RuntimeError):
    """The server answered with an error (its text is the message)."""


def is_server_url(setting: object) -> bool:
    return isinstance(setting, str) and setting.startswith(("ws://", "wss://"))


class RemotePolicy:
    """The Policy protocol over the openpi WebSocket protocol (inference only; it cannot be trained).

    A request without a reply within ``reply_timeout_s`` counts as a lost server: the connection is dropped
    (so a late reply cannot be mistaken for the next one) and ``PolicyUnavailableError`` raised.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        adapter: ObservationAdapter | None = None,
        open_timeout_s: float = 10.0,
        reply_timeout_s: float | None = 30.0,
        metadata: dict[str, Any] | None = None,
        connection: ClientConnection | None = None,
    ):
        """Connect to ``url`` (or adopt an open ``connection`` whose ``metadata`` was already read)."""
        if not is_server_url(url):
            raise ConfigError(f"a policy server URL starts with ws:// or wss://, got {url!r}")
        self.url, self.adapter, self.open_timeout_s = url, adapter or ObservationAdapter(), open_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self._ws: ClientConnection | None = connection
        self.metadata = metadata if metadata is not None and connection is not None else self._connect()
        meta = self.metadata
        try:
            self.chunk_size, self.action_dim = int(meta["action_horizon"]), int(meta["action_dim"])
        except KeyError as exc:
            raise ConfigError(
                f"the server at {url} sent no {exc.args[0]!r} in its metadata; a recap server does, for other "
                "openpi servers add action_horizon and action_dim to the metadata they send"
            ) from None
        self.recap = meta.get("recap") if isinstance(meta.get("recap"), dict) else None
        self.spec = _spec_of(meta, self.action_dim)
        self.input_cameras = tuple(meta.get("required_cameras", ()))
        self.policy_id = str(meta.get("policy_id", urlsplit(url).netloc))

    @property
    def deployment(self) -> DeploymentSettings:
        """The server's default sampling settings (the served checkpoint's)."""
        if self.recap is None:
            return DeploymentSettings()
        return DeploymentSettings(INDICATORS[self.recap["indicator"]], float(self.recap["guidance"]))

    # -- connection ----------------------------------------------------------------------------------------

    def _connect(self) -> dict[str, Any]:
        headers = {"Authorization": f"Api-Key {self.api_key}"} if self.api_key else None
        try:
            ws = connect(
                self.url,
                compression=None,
                max_size=None,
                additional_headers=headers,
                open_timeout=self.open_timeout_s,
            )
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            if status == 401:
                raise ConfigError(
                    f"{self.url} refused the API key (set {API_KEY_ENV} or --api-key)"
                ) from None
            raise PolicyUnavailableError(f"{self.url} answered HTTP {status}") from None
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            raise PolicyUnavailableError(f"cannot reach the policy server at {self.url}: {exc}") from None
        ws.__enter__()  # held open across calls (closed by close()); entering marks that as intended
        metadata = codec.unpack(ws.recv())
        self._ws = ws
        return metadata

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def infer(self, request: dict[str, Any]) -> dict[str, Any]:
        """One raw protocol round trip (reconnecting first if the connection was lost)."""
        if self._ws is None:
            self._connect()
        assert self._ws is not None
        try:
            self._ws.send(codec.pack(request))
            reply = self._ws.recv(timeout=self.reply_timeout_s)
        except (OSError, TimeoutError, websockets.ConnectionClosed) as exc:  # a late reply is never used
            self.close()
            raise PolicyUnavailableError(f"lost the policy server at {self.url}: {exc}") from None
        if isinstance(reply, str):
            self.close()  # the server closes the connection after an error
            raise ServerError(f"the policy server at {self.url} failed:\n{reply}")
        return codec.unpack(reply)

    # -- Policy protocol -----------------------------------------------------------------------------------

    def sample_actions(
        self,
        obs: TensorDict,
        indicator: torch.Tensor | bool | None = True,
        guidance: float = 1.0,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Chunks ``[B, H, A]``, one request per batch element (the server batches across clients)."""
        return self._sample(obs, indicator, guidance, None, None)

    def per_sample_loss(
        self, batch: TensorDict, indicator: torch.Tensor | None, *, flow_draws=None
    ) -> TensorDict:
        raise ConfigError("a remote policy serves inference only; train the checkpoint it was served from")

    def _sample(
        self,
        obs: TensorDict,
        indicator: torch.Tensor | bool | None,
        guidance: float,
        noise: torch.Tensor | None,
        inpainting: Inpainting | None,
    ) -> torch.Tensor:
        size = obs.batch_size[0]
        prompts = text(obs, keys.TASK)
        chunks = []
        for i in range(size):
            request = self.adapter.to_request(obs[i], prompts[i], self.spec)
            if self.recap is not None:
                request["recap"] = self._recap_fields(i, indicator, guidance, noise, inpainting)
            actions = np.asarray(self.infer(request)["actions"], dtype=np.float32)
            if actions.shape != (self.chunk_size, self.action_dim):
                raise ServerError(
                    f"the server at {self.url} returned actions of shape {list(actions.shape)}; its metadata "
                    f"says [{self.chunk_size}, {self.action_dim}]"
                )
            chunks.append(torch.from_numpy(actions.copy()))
        return torch.stack(chunks)

    @staticmethod
    def _recap_fields(
        i: int,
        indicator: torch.Tensor | bool | None,
        guidance: float,
        noise: torch.Tensor | None,
        inpainting: Inpainting | None,
    ) -> dict[str, Any]:
        if isinstance(indicator, torch.Tensor):
            indicator = bool(indicator[i])
        fields: dict[str, Any] = {
            "indicator": INDICATOR_NAMES[indicator],
            "guidance": float(guidance),
        }
        if noise is not None:
            fields["noise"] = noise[i].float().cpu().numpy()
        if inpainting is not None:
            fields["inpaint"] = {
                "target": inpainting.target[i].float().cpu().numpy(),
                "frozen": inpainting.frozen,
                "guided": inpainting.guided,
                "max_guidance": inpainting.max_guidance,
            }
        return fields


class RemoteFlowPolicy(RemotePolicy):
    """A recap server's flow policy: also ``sample_flow`` (initial noise, real-time chunking)."""

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
        return self._sample(obs, indicator, guidance, noise, inpainting)


def connect_policy(
    url: str, *, api_key: str | None = None, adapter: ObservationAdapter | None = None
) -> RemotePolicy:
    """A client for the policy at ``url``; a recap server's flow policy gets ``sample_flow`` as well."""
    probe = RemotePolicy(url, api_key=api_key, adapter=adapter)
    if probe.recap is None or not probe.recap.get("flow"):
        return probe
    return RemoteFlowPolicy(
        url, api_key=probe.api_key, adapter=adapter, metadata=probe.metadata, connection=probe._ws
    )


def _spec_of(meta: dict[str, Any], action_dim: int) -> RobotSpec:
    """The robot layout the server expects, from its metadata (cameras as openpi names)."""
    from recap.data.spec import CameraSpec

    cameras = tuple(
        CameraSpec(name, int(shape[1]), int(shape[2])) for name, shape in meta.get("cameras", {}).items()
    )
    state_dim = int(meta.get("state_dim", action_dim))
    names = tuple(meta.get("joint_names", ()))
    return RobotSpec(
        cameras=cameras,
        state_dim=state_dim,
        action_dim=action_dim,
        fps=int(meta.get("control_rate_hz", 50)),
        env_state_dim=int(meta.get("env_state_dim", 0)),
        joint_names=names if len(names) == state_dim else (),
    )


def open_policy(setting: str | Path, registry: Any = None) -> tuple[Any, DeploymentSettings, str]:
    """(policy, deployment settings, version) for a ``policy`` setting: a server URL or a checkpoint directory.

    A server's policy comes with the served checkpoint's deployment settings and its policy id as version.
    """
    if is_server_url(setting):
        remote = connect_policy(str(setting))
        return remote, remote.deployment, remote.policy_id
    from recap.train.checkpoint import load_policy

    path = Path(setting)
    if str(setting).startswith(("http://", "https://")):
        raise ConfigError(f"policy {setting!r}: a policy server URL starts with ws:// (or wss://), not http")
    policy, deployment = load_policy(path, registry)
    return policy, deployment, path.resolve().name

"""Deploying a policy: an openpi-compatible policy server and a Policy-shaped client for one.

``recap serve POLICY_DIR`` runs :class:`PolicyServer`; ``connect_policy(url)`` returns a remote policy that
``recap collect``/``recap evaluate`` and the rollout runner use like a local one (see docs/deploy.md).
Layer: above ``recap.rollout`` and ``recap.train`` (it loads checkpoints), below ``recap.loop`` and the CLI.
"""

from recap.deploy.adapter import ObservationAdapter
from recap.deploy.codec import ProtocolError, pack, unpack
from recap.deploy.remote import (
    RemoteFlowPolicy,
    RemotePolicy,
    ServerError,
    connect_policy,
    is_server_url,
    open_policy,
)
from recap.deploy.server import PolicyServer, is_loopback, serving
from recap.deploy.service import PolicyService, Request

__all__ = [
    "ObservationAdapter",
    "PolicyServer",
    "PolicyService",
    "ProtocolError",
    "RemoteFlowPolicy",
    "RemotePolicy",
    "Request",
    "ServerError",
    "connect_policy",
    "is_loopback",
    "is_server_url",
    "open_policy",
    "pack",
    "serving",
    "unpack",
]

"""``recap serve POLICY_DIR``: serve a policy checkpoint to robots over openpi's WebSocket protocol.

    recap serve runs/pi1/policy                       # ws://127.0.0.1:8000, loopback only
    RECAP_API_KEY=secret recap serve runs/pi1/policy --host 0.0.0.0 --port 8000

Any openpi client (``openpi_client.websocket_client_policy.WebsocketClientPolicy``) can drive it; so can
``recap collect/evaluate --policy ws://HOST:PORT``. See docs/deploy.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from recap.errors import ConfigError


def serve(
    policy_dir: Path,
    /,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    max_batch: int = 8,
    indicator: Literal["positive", "none", "negative"] | None = None,
    guidance: float | None = None,
    camera: tuple[str, ...] = (),
    ignore: tuple[str, ...] = (),
    channels_last: bool = False,
    device: str = "cpu",
    threads: int | None = None,
) -> int:
    """Serve the policy checkpoint POLICY_DIR until interrupted (Ctrl-C).

    Args:
        policy_dir: policy checkpoint directory (written by policy training).
        host: address to bind; anything but loopback needs an API key.
        port: TCP port (0 picks a free one; the URL is printed).
        api_key: require ``Authorization: Api-Key <key>`` (default: the RECAP_API_KEY environment variable).
        max_batch: most concurrent requests sampled in one policy call.
        indicator: default advantage indicator of requests (default: the checkpoint's deployment setting).
        guidance: default CFG beta of requests (default: the checkpoint's deployment setting).
        camera: OPENPI=RECAP camera-name pairs where the client's names differ (e.g. cam_high=top).
        ignore: request fields to drop without error (a trailing "/" drops a prefix, e.g. images/cam_low).
        channels_last: images arrive [H, W, 3] instead of openpi's [3, H, W].
        device: torch device of the policy.
        threads: torch CPU threads for inference (default: torch's choice, one per core).
    """
    from recap.deploy import ObservationAdapter, PolicyServer
    from recap.deploy.service import load_service

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    pairs = {}
    for pair in camera:
        theirs, sep, ours = pair.partition("=")
        if not sep or not theirs or not ours:
            raise ConfigError(f"--camera {pair!r}: expected OPENPI_NAME=RECAP_NAME, e.g. cam_high=top")
        pairs[theirs] = ours
    adapter = ObservationAdapter(cameras=pairs, ignore=ignore, channels_first=not channels_last)
    service = load_service(policy_dir, adapter=adapter, indicator=indicator, guidance=guidance, device=device)
    key = api_key if api_key is not None else os.environ.get("RECAP_API_KEY") or None
    server = PolicyServer(service, host=host, port=port, api_key=key, max_batch=max_batch)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server.start()
    print(f"serving {service.policy_id} on {server.url} (health: GET /healthz)", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0

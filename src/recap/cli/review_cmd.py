"""``recap review STORE``: review and label a store's episodes in the browser (a local web app)."""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path
from typing import Annotated

import tyro

from recap.data.store import EpisodeStore
from recap.errors import ConfigError

_Store = Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="STORE")]
TOKEN_ENV = "RECAP_REVIEW_TOKEN"


def review(
    store: _Store,
    labels: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    reviewer: str | None = None,
) -> int:
    """Serve a web page listing the store's episodes, with video, value/advantage curves and labelling keys.

    Bound to 127.0.0.1 (the default) only this machine can reach it. Any other --host needs a token: the
    server prints a login link carrying it (set RECAP_REVIEW_TOKEN to choose the token yourself).

    Args:
        store: the episode store directory.
        labels: the label set whose value and advantage curves to show (default: the newest one).
        host: the address to listen on; anything but loopback requires the token.
        port: the port to listen on (0 picks a free one).
        reviewer: your name, recorded with every label (default: the OS user).
    """
    try:
        from recap.review.app import create_app
        from recap.review.security import is_loopback, new_token
        from recap.review.server import bind, serve_forever, url_of
    except ImportError as exc:
        raise ConfigError(
            f"recap review needs its web server packages ({exc}); pip install 'recap[review]'"
        ) from exc
    s = EpisodeStore.open(store)
    name = reviewer or getpass.getuser()
    token = None if is_loopback(host) else os.environ.get(TOKEN_ENV) or new_token()
    app = create_app(s, reviewer=name, label_set=labels, token=token)
    sock = bind(host, port)
    url = url_of(sock)
    if token is not None:
        url = url.replace(host, socket.gethostname(), 1) if host in ("0.0.0.0", "::") else url
        url = f"{url}/login?token={token}"
    review_state = app.state.review
    print(
        f"reviewing {store}: {len(s.episodes())} episodes, label set {review_state.label_set or 'none'}, "
        f"as reviewer {name!r}"
    )
    print(f"open {url}  (Ctrl-C stops the server)", flush=True)
    try:
        serve_forever(app, sock)
    finally:
        sock.close()
    return 0

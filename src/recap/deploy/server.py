"""An openpi-compatible WebSocket policy server with request batching.

Protocol (what ``openpi-client``'s ``WebsocketClientPolicy`` expects): per-message compression off, no message
size limit; on connect the server sends a msgpack map of metadata; then every binary msgpack request gets a
reply ``{"actions": [H, A], "policy_timing": {"infer_ms"}, "server_timing": {"infer_ms", "prev_total_ms"}}``.
On an error the server sends the error text (a traceback for server faults, the offending field for a bad
request) as a text frame and closes that connection with code 1011; other connections go on. ``GET /healthz``
answers 200. With an API key, the WebSocket handshake needs ``Authorization: Api-Key <key>`` (401 otherwise).

Requests that arrive while the policy is busy are queued and sampled together (up to ``max_batch``), one
policy call per group of equal sampling settings. Binds 127.0.0.1 by default; any other address needs a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import http
import ipaddress
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.server import Request, Response, ServerConnection, serve
from websockets.frames import CloseCode

from recap.deploy import codec
from recap.deploy.codec import ProtocolError
from recap.deploy.service import PolicyService, load_service
from recap.errors import ConfigError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
CLOSE_REASON = "Internal server error. Traceback included in previous frame."


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PolicyServer:
    """Serves a :class:`PolicyService` over WebSocket; ``run()`` blocks, ``start()``/``stop()`` use a thread."""

    def __init__(
        self,
        service: PolicyService,
        *,
        host: str = LOOPBACK,
        port: int = 8000,
        api_key: str | None = None,
        max_batch: int = 8,
    ):
        if not is_loopback(host) and not api_key:
            raise ConfigError(
                f"serving on {host!r} exposes the robot policy beyond this machine: set an API key "
                "(--api-key or the RECAP_API_KEY environment variable), or bind 127.0.0.1"
            )
        if max_batch < 1:
            raise ConfigError(f"max_batch must be >= 1, got {max_batch}")
        self.service, self.host, self.port = service, host, port
        self.api_key, self.max_batch = api_key, max_batch
        self.metadata = service.metadata(max_batch)
        self.batch_sizes: list[int] = []  # sizes of the batches run, for tests and benchmarks
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._queue: asyncio.Queue | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until ``stop()`` (or Ctrl-C); a failure to bind is raised."""
        asyncio.run(self._serve())
        if self._error is not None:
            raise ConfigError(f"cannot serve on {self.host}:{self.port}: {self._error}")

    def start(self, timeout_s: float = 30.0) -> PolicyServer:
        """Serve from a background thread; returns once the port is bound (``port=0`` picks a free one)."""
        self._started.clear()
        self._error = None
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve()), name="recap-policy-server", daemon=True
        )
        self._thread.start()
        if not self._started.wait(timeout_s) or self._error is not None:
            self._thread.join(timeout_s)
            self._thread = None
            raise ConfigError(
                f"cannot serve on {self.host}:{self.port}: {self._error or 'start-up timed out'}"
            )
        return self

    def stop(self) -> None:
        """Close every connection and the port (a later ``start`` serves again on the same port)."""
        if self._thread is None:
            return
        if self._thread.is_alive() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._thread = None

    @property
    def queued(self) -> int:
        """Requests waiting for the policy (not counting the batch it is sampling)."""
        return 0 if self._queue is None else self._queue.qsize()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C reaches the caller between joins)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        queue: asyncio.Queue = asyncio.Queue()
        self._queue = queue
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recap-policy")
        batcher = asyncio.create_task(self._batches(queue, executor))
        try:
            async with serve(
                lambda ws: self._connection(ws, queue),
                self.host,
                self.port,
                compression=None,
                max_size=None,
                process_request=self._check_request,
            ) as server:
                self.port = server.sockets[0].getsockname()[1]
                log.info("serving %s on %s", self.service.policy_id, self.url)
                self._started.set()
                await self._stop.wait()
        except OSError as exc:  # the port is taken or the address is not ours: reported by start()/run()
            self._error = exc
            self._started.set()
        finally:
            batcher.cancel()
            executor.shutdown(wait=True)

    # -- HTTP ----------------------------------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        if self.api_key:
            supplied = request.headers.get("Authorization", "") or ""
            if not hmac.compare_digest(supplied.encode(), f"Api-Key {self.api_key}".encode()):
                return connection.respond(
                    http.HTTPStatus.UNAUTHORIZED,
                    "missing or wrong API key: send 'Authorization: Api-Key <key>'\n",
                )
        return None

    # -- WebSocket -----------------------------------------------------------------------------------------

    async def _connection(self, ws: ServerConnection, queue: asyncio.Queue) -> None:
        await ws.send(codec.pack(self.metadata))
        prev_total_ms: float | None = None
        try:
            async for message in ws:
                start = time.monotonic()
                request = self.service.parse(codec.unpack(message))
                reply: asyncio.Future = asyncio.get_running_loop().create_future()
                await queue.put((request, reply))
                actions, policy_ms = await reply
                server_timing = {"infer_ms": (time.monotonic() - start) * 1000.0}
                if prev_total_ms is not None:
                    server_timing["prev_total_ms"] = prev_total_ms
                await ws.send(
                    codec.pack(
                        {
                            "actions": actions,
                            "policy_timing": {"infer_ms": policy_ms},
                            "server_timing": server_timing,
                        }
                    )
                )
                prev_total_ms = (time.monotonic() - start) * 1000.0
        except websockets.ConnectionClosed:
            return
        except ProtocolError as exc:
            log.warning("bad request from %s: %s", ws.remote_address, exc)
            await _fail(ws, f"invalid request: {exc}")
        except Exception:
            log.exception("inference failed for %s", ws.remote_address)
            await _fail(ws, traceback.format_exc())

    async def _batches(self, queue: asyncio.Queue, executor: ThreadPoolExecutor) -> None:
        """Take what is queued (up to max_batch), sample it in the worker thread, answer each request."""
        loop = asyncio.get_running_loop()
        while True:
            items = [await queue.get()]
            while len(items) < self.max_batch and not queue.empty():
                items.append(queue.get_nowait())
            self.batch_sizes.append(len(items))
            try:
                actions, policy_ms = await loop.run_in_executor(
                    executor, self.service.infer, [request for request, _ in items]
                )
            except Exception as exc:  # answered to every waiting connection, which reports it
                for _, reply in items:
                    if not reply.done():
                        reply.set_exception(exc)
                continue
            for (_, reply), chunk in zip(items, actions, strict=True):
                if not reply.done():
                    reply.set_result((chunk, policy_ms))


async def _fail(ws: ServerConnection, text: str) -> None:
    try:
        await ws.send(text)
        await ws.close(code=CloseCode.INTERNAL_ERROR, reason=CLOSE_REASON)
    except websockets.ConnectionClosed:
        pass


@contextlib.contextmanager
def serving(policy_dir: str | Path, *, max_batch: int = 8, registry: Any = None) -> Iterator[str]:
    """Serve a policy checkpoint on a free loopback port for the duration of the block; yields its URL.

    The loop collects through this when ``collect.serve`` is set: the path a robot would use.
    """
    with PolicyServer(load_service(policy_dir, registry=registry), port=0, max_batch=max_batch) as server:
        yield server.url

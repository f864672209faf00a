"""When a chunked policy is asked for its next chunk, and which of its actions run (per control tick).

A chunk sampled from the observation at tick t holds the actions for ticks t, t+1, ..., t+H-1. Three modes:

- ``sync``: after s executed actions (the execution horizon) request the next chunk and hold position until it
  arrives (d ticks); then execute it from its first action. Costs d ticks of standing still per chunk.
- ``naive``: request the next chunk after s actions but keep executing the current one; when it arrives
  (d ticks later) switch to it at index d, the action for the current tick. Chunks can disagree: boundary jumps.
- ``rtc``: like ``naive``, but the next chunk is sampled by guided inpainting (``recap.nn.rtc``) so its
  first d actions match the ones executing meanwhile and the rest leans towards the current chunk's plan.
  Needs a ``FlowPolicy``; other policies fall back to ``naive`` with a logged notice.

The delay d is either injected in control ticks (``Execution.delay_ticks``; the simulator, deterministic on a
loaded machine: d = ceil(latency x rate)) or measured on the wall clock (``delay_ticks=None``; hardware, where
``backend.step`` keeps the rate and inference runs in a background thread). Asynchronous modes need
d <= H - s, else the current chunk runs out before the next one arrives.

Past the last committed action the scheduler returns None and the runner holds position. A policy that
raises ``PolicyUnavailableError`` (a lost server) is retried with back-off in ticks (1, 2, 4, ... capped),
and each outage is logged with the episode.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

import attrs
import torch

from recap.errors import ConfigError, PolicyUnavailableError
from recap.protocols import Inpainting

log = logging.getLogger(__name__)

Mode = Literal["sync", "naive", "rtc"]
MODES: tuple[str, ...] = ("sync", "naive", "rtc")
#: measured delays remembered to predict the next one (wall-clock mode); the largest is used, as RTC does
DELAY_MEMORY = 5


@attrs.frozen
class Execution:
    """How chunks are executed (see the module docstring).

    Attributes:
        mode: "sync", "naive" or "rtc".
        delay_ticks: injected inference delay in control ticks; None measures it on the wall clock.
        max_guidance: RTC's clip on the guidance weight (beta).
        max_backoff_ticks: longest wait between reconnection attempts after the policy became unavailable.
    """

    mode: Mode = attrs.field(default="sync", validator=attrs.validators.in_(MODES))
    delay_ticks: int | None = attrs.field(
        default=0, validator=attrs.validators.optional(attrs.validators.ge(0))
    )
    max_guidance: float = attrs.field(default=5.0, validator=attrs.validators.ge(0.0))
    max_backoff_ticks: int = attrs.field(default=32, validator=attrs.validators.ge(1))


def delay_in_ticks(latency_s: float, fps: int) -> int:
    """d = ceil(latency x rate): the control ticks that pass while a chunk is computed."""
    return math.ceil(latency_s * fps - 1e-9)


@attrs.define
class ChunkTiming:
    """One chunk: the tick it was requested at, the tick it started executing at and at which index."""

    request_tick: int
    start_tick: int
    first_index: int
    latency_ms: float

    @property
    def delay_ticks(self) -> int:
        return self.start_tick - self.request_tick


@attrs.define
class ExecutionLog:
    """What execution looked like in one episode (kept with its ``EpisodeRecord``).

    ``held_ticks``: ticks without a committed action (the robot held position): sync waits, the first chunk's
    delay, outages. ``outages``: (first failed tick, tick of the next successful request or -1 if none).
    """

    mode: str
    execute: int
    horizon: int
    chunks: list[ChunkTiming] = attrs.field(factory=list)
    held_ticks: list[int] = attrs.field(factory=list)
    outages: list[tuple[int, int]] = attrs.field(factory=list)

    @property
    def delays_ticks(self) -> list[int]:
        return [c.delay_ticks for c in self.chunks]

    @property
    def latencies_ms(self) -> list[float]:
        return [c.latency_ms for c in self.chunks]


@attrs.define
class _Pending:
    request_tick: int
    warm: bool  # a chunk was executing when it was requested: switch to it mid-chunk
    result: torch.Tensor | None = None
    latency_ms: float = 0.0
    ready_tick: int | None = None  # injected delay
    future: Future | None = None  # wall-clock delay


InferFn = Callable[[object, Inpainting | None], torch.Tensor]


class ChunkScheduler:
    """Turns ``infer(obs, inpainting) -> chunk [H, A]`` into one action (or None: hold) per control tick."""

    def __init__(self, infer: InferFn, *, horizon: int, execute: int, execution: Execution, inpaints: bool):
        if not 1 <= execute <= horizon:
            raise ConfigError(
                f"chunk_execute must be between 1 and the policy's chunk size {horizon}, got {execute}"
            )
        d = execution.delay_ticks
        if execution.mode != "sync" and d is not None and d > horizon - execute:
            raise ConfigError(
                f"asynchronous execution needs the delay d <= H - s: d = {d} ticks, chunk length H = {horizon}, "
                f"executed steps s = {execute}; lower chunk_execute or the delay"
            )
        mode = execution.mode
        if mode == "rtc" and not inpaints:
            log.warning(
                "the policy has no sample_flow (FlowPolicy): real-time chunking falls back to naive async"
            )
            mode = "naive"
        self.mode, self.horizon, self.execute, self.execution = mode, horizon, execute, execution
        self._infer = infer
        self._executor: ThreadPoolExecutor | None = None
        self.reset()

    def reset(self) -> None:
        self.tick = 0
        self.log = ExecutionLog(self.mode, self.execute, self.horizon)
        self._chunk: torch.Tensor | None = None
        self._cursor = 0
        self._pending: _Pending | None = None
        self._retry_at = 0
        self._backoff = 1
        self._measured: list[int] = []

    def resync(self) -> None:
        """Drop the current chunk and any request in flight (the robot moved under the policy)."""
        self._chunk, self._pending = None, None

    def next_action(self, obs: object) -> torch.Tensor | None:
        """The action for this tick, or None when no committed action is left (hold position)."""
        now = self.tick
        self._collect(now)
        if self._pending is None and self._wants_request(now):
            self._request(obs, now)
            self._collect(now)  # a zero delay is ready at once
        action = None
        if self._chunk is not None and self._cursor < self.horizon:
            action = self._chunk[self._cursor]
            self._cursor += 1
        else:
            self.log.held_ticks.append(now)
        self.tick += 1
        return action

    # -- requests ------------------------------------------------------------------------------------------

    def _wants_request(self, now: int) -> bool:
        if now < self._retry_at:
            return False
        return self._chunk is None or self._cursor >= self.execute

    def _request(self, obs: object, now: int) -> None:
        warm = self._chunk is not None and self._cursor < self.horizon and self.mode != "sync"
        inpainting = self._inpainting() if warm and self.mode == "rtc" else None
        if self.mode == "sync":
            self._chunk = None  # the rest of the chunk is dropped; hold until the next one arrives
        pending = _Pending(request_tick=now, warm=warm)
        if self.execution.delay_ticks is None:
            pending.future = self._pool().submit(self._timed_infer, obs, inpainting)
        else:
            try:
                pending.result, pending.latency_ms = self._timed_infer(obs, inpainting)
            except PolicyUnavailableError as exc:
                self._lost(now, exc)
                return
            pending.ready_tick = now + self.execution.delay_ticks
        self._pending = pending

    def _inpainting(self) -> Inpainting:
        assert self._chunk is not None
        remaining = self._chunk[self._cursor :]
        guided = remaining.shape[0]
        target = torch.cat([remaining, remaining[-1:].expand(self.horizon - guided, -1)])
        return Inpainting(
            target=target[None], frozen=min(self._expected_delay(), guided), guided=guided,
            max_guidance=self.execution.max_guidance,
        )  # fmt: skip

    def _expected_delay(self) -> int:
        if self.execution.delay_ticks is not None:
            return self.execution.delay_ticks
        return max(self._measured[-DELAY_MEMORY:], default=0)

    def _timed_infer(self, obs: object, inpainting: Inpainting | None) -> tuple[torch.Tensor, float]:
        start = time.perf_counter()
        chunk = self._infer(obs, inpainting)
        return chunk, (time.perf_counter() - start) * 1000.0

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recap-inference")
        return self._executor

    # -- arrivals ------------------------------------------------------------------------------------------

    def _collect(self, now: int) -> None:
        pending = self._pending
        if pending is None:
            return
        if pending.future is not None:
            if not pending.future.done():
                return
            try:
                pending.result, pending.latency_ms = pending.future.result()
            except PolicyUnavailableError as exc:
                self._pending = None
                self._lost(now, exc)
                return
        elif pending.ready_tick is not None and now < pending.ready_tick:
            return
        self._pending = None
        self._recovered(pending.request_tick)
        elapsed = now - pending.request_tick
        self._measured.append(elapsed)
        first = elapsed if pending.warm else 0
        if first >= self.horizon:  # arrived too late to use any of it: ask again
            self._chunk = None
            return
        assert pending.result is not None
        self._chunk, self._cursor = pending.result, first
        self.log.chunks.append(ChunkTiming(pending.request_tick, now, first, pending.latency_ms))

    # -- outages -------------------------------------------------------------------------------------------

    def _lost(self, now: int, exc: Exception) -> None:
        if not self.log.outages or self.log.outages[-1][1] != -1:
            log.warning("policy unavailable at tick %d (%s); holding position and retrying", now, exc)
            self.log.outages.append((now, -1))
        self._retry_at = now + self._backoff
        self._backoff = min(2 * self._backoff, self.execution.max_backoff_ticks)

    def _recovered(self, request_tick: int) -> None:
        self._backoff = 1
        if self.log.outages and self.log.outages[-1][1] == -1:
            self.log.outages[-1] = (self.log.outages[-1][0], request_tick)
            log.warning("policy available again at tick %d", request_tick)

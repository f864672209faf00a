"""Asynchronous chunk execution in the rollout runner: sync, naive async, real-time chunking; injected delays."""

from __future__ import annotations

import logging
from itertools import pairwise

import pytest
import torch

from recap.errors import ConfigError
from recap.rollout import Execution, PolicyActor, delay_in_ticks, run_episode

from .clock import ClockBackend, ClockPolicy, InpaintingClockPolicy

H, S = 8, 4


def _run(policy, execution, time_limit=40):
    backend = ClockBackend(time_limit=time_limit)
    record = run_episode(backend, policy, task="clock", seed=0, chunk_execute=S, execution=execution)
    return record, torch.stack(backend.executed)[:, 1]


def test_delay_in_ticks_rounds_up():
    assert delay_in_ticks(0.0, 50) == 0 and delay_in_ticks(0.02, 50) == 1
    assert delay_in_ticks(0.021, 50) == 2 and delay_in_ticks(0.120, 50) == 6


@pytest.mark.parametrize("d", [0, 1, 3])
def test_sync_holds_d_ticks_per_chunk(d):
    policy = ClockPolicy(H)
    record, stamps = _run(policy, Execution("sync", delay_ticks=d))
    log = record.execution
    assert log.delays_ticks == [d] * len(log.chunks)
    # every chunk: d ticks of holding, then its first S actions from index 0
    period = d + S
    assert policy.requests == list(range(0, 40, period))[: len(policy.requests)]
    assert log.held_ticks == [t for t in range(40) if t % period < d]
    for start in policy.requests:
        run = stamps[start + d : start + d + S]
        assert run.tolist() == [float(start + i) for i in range(len(run))]


@pytest.mark.parametrize("mode", ["naive", "rtc"])
@pytest.mark.parametrize("d", [0, 2, H - S])
def test_async_executes_each_tick_once_in_order(mode, d):
    policy = InpaintingClockPolicy(H)
    record, stamps = _run(policy, Execution(mode, delay_ticks=d))
    log = record.execution
    assert log.held_ticks == list(range(d))  # only the first chunk's delay
    # the first chunk starts from its first action after the robot held still for d ticks ...
    switch = log.chunks[1].start_tick
    assert switch == d + S + d
    assert stamps[d:switch].tolist() == [float(t) for t in range(switch - d)]
    # ... every later chunk joins at index d: the action for tick t runs at tick t, once, in order
    assert stamps[switch:].tolist() == [float(t) for t in range(switch, 40)]
    assert policy.requests[0] == 0 and all(b - a == S for a, b in pairwise(policy.requests[1:]))
    assert [c.first_index for c in log.chunks][1:] == [d] * (len(log.chunks) - 1)


def test_rtc_passes_frozen_and_guided_steps():
    policy = InpaintingClockPolicy(H)
    d = 3
    _run(policy, Execution("rtc", delay_ticks=d))
    # the first chunk is sampled freely (nothing executes yet), every later one inpainted
    assert len(policy.inpaintings) == len(policy.requests) - 1 >= 3
    assert all(p.frozen == d and p.guided == H - S for p in policy.inpaintings)
    # the target is the previous chunk's remaining actions: for the first RTC request (at tick d + S, while
    # the first chunk, which started d ticks late, stands at index S) they are stamped S, S+1, ...
    assert policy.requests[1] == d + S
    target = policy.inpaintings[0].target[0, : H - S, 1]
    assert target.tolist() == [float(S + i) for i in range(H - S)]


def test_naive_does_not_inpaint_and_rtc_falls_back_with_a_notice(caplog):
    policy = InpaintingClockPolicy(H)
    _run(policy, Execution("naive", delay_ticks=2))
    assert all(p is None for p in policy.inpaintings)
    with caplog.at_level(logging.WARNING, logger="recap.rollout.chunking"):
        record, stamps = _run(ClockPolicy(H), Execution("rtc", delay_ticks=2))
    assert "falls back to naive" in caplog.text and record.execution.mode == "naive"
    switch = record.execution.chunks[1].start_tick
    assert stamps[switch:].tolist() == [float(t) for t in range(switch, 40)]


def test_async_delay_must_fit_the_chunk():
    with pytest.raises(
        ConfigError, match=r"d <= H - s: d = 5 ticks, chunk length H = 8, executed steps s = 4"
    ):
        _run(ClockPolicy(H), Execution("rtc", delay_ticks=5))
    _run(ClockPolicy(H), Execution("sync", delay_ticks=5))  # synchronous execution just waits longer


def test_wall_clock_delay_keeps_order():
    """Inference on a background thread: whatever the timing, no action runs twice or out of order."""
    actor = PolicyActor(ClockPolicy(H), chunk_execute=S, execution=Execution("naive", delay_ticks=None))

    def let_inference_finish_sometimes(tick):  # bounds the run's length, not its outcome
        pending = actor.scheduler._pending
        if tick % 5 == 0 and pending is not None and pending.future is not None:
            pending.future.result(timeout=60)

    backend = ClockBackend(time_limit=60, on_tick=let_inference_finish_sometimes)
    record = run_episode(backend, actor, task="clock", seed=0)
    stamps = torch.stack(backend.executed)[:, 1]
    log = record.execution
    assert len(log.chunks) >= 2
    held = set(log.held_ticks)
    executed = [s for t, s in enumerate(stamps.tolist()) if t not in held]
    assert all(b > a for a, b in pairwise(executed))  # never twice, never backwards
    after = [(t, s) for t, s in enumerate(stamps.tolist()) if t >= log.chunks[1].start_tick and t not in held]
    assert all(s == t for t, s in after)  # later chunks join at the measured delay

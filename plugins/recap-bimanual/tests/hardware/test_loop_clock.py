"""The control loop's schedule, on a fake clock: exact, so it says nothing about (and needs no) idle CPU.

Real-time figures (achieved rate and jitter on a real host) come from ``benchmarks/driver_loop.py``.
"""

from __future__ import annotations

import pytest
from recap_bimanual.hardware.safety import LoopClock

PERIOD = 0.02


class FakeTime:
    """Seconds that pass only when the loop sleeps or works; each reading moves 10 us (so a spin loop ends)."""

    READ_STEP = 1e-5

    def __init__(self) -> None:
        self.now = 1000.0
        self.reads = 0

    def clock(self) -> float:
        self.now += self.READ_STEP
        self.reads += 1
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, "the loop asked to sleep a negative time"
        self.now += seconds

    def work(self, seconds: float) -> None:
        self.now += seconds


def run(work_per_tick: dict[int, float], ticks: int) -> tuple[LoopClock, list[float], FakeTime]:
    """Tick ``ticks`` times at 50 Hz; after tick k the loop body takes ``work_per_tick.get(k, 3 ms)``."""
    fake = FakeTime()
    clock = LoopClock(50, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for k in range(ticks):
        starts.append(clock.wait())
        fake.work(work_per_tick.get(k, 0.003))
    return clock, starts, fake


def test_ticks_come_one_period_apart_and_lateness_is_recorded():
    clock, starts, fake = run({}, 100)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(g == pytest.approx(PERIOD, abs=5e-5) for g in gaps)  # neither early nor late
    stats = clock.stats()
    assert stats["ticks"] == 100 and stats["rate_hz"] == pytest.approx(50, abs=0.1)
    assert stats["overruns"] == 0 and len(clock.lateness) == 99
    assert all(0 <= late < 5e-5 for late in clock.lateness)  # on time: only the spin loop's last reading
    # it sleeps through most of a period and spins only the last 0.5 ms (50 readings here), not the whole 17 ms
    assert fake.reads < 100 * 60


def test_a_late_tick_keeps_the_grid_and_a_stall_resets_it_without_a_burst():
    # tick 10's body takes 15 ms too long (late, not a whole period); tick 30's stalls for 3.5 periods
    clock, starts, _ = run({10: PERIOD + 0.015, 30: 0.07}, 60)
    # tick 11 starts 15 ms late, is recorded as such, and tick 12 is back on the original grid
    assert clock.lateness[10] == pytest.approx(0.015, abs=5e-5)
    assert starts[12] - starts[10] == pytest.approx(2 * PERIOD, abs=5e-5)
    # tick 31 starts at once when the stall ends (an overrun); the ticks after it do not catch up in a burst
    # but resume one period apart from there
    assert clock.overruns == 1 and clock.lateness[30] == pytest.approx(0.07 - PERIOD, abs=5e-5)
    assert starts[31] - starts[30] == pytest.approx(0.07, abs=5e-5)
    assert all(
        b - a == pytest.approx(PERIOD, abs=5e-5) for a, b in zip(starts[31:], starts[32:], strict=False)
    )
    stats = clock.stats()
    assert stats["jitter_max_ms"] == pytest.approx(50, abs=0.1) and stats["rate_hz"] < 50


def test_reset_starts_a_new_schedule():
    fake = FakeTime()
    clock = LoopClock(50, clock=fake.clock, sleep=fake.sleep)
    clock.wait()
    clock.wait()
    fake.work(5.0)  # between episodes
    clock.reset()
    first = clock.wait()
    assert clock.overruns == 0 and clock.lateness == []  # the pause is not counted against the new episode
    assert clock.wait() - first == pytest.approx(PERIOD, abs=5e-5)

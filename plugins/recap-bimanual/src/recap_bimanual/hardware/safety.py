"""Safety pieces of the driver: goal rate limiting, the action watchdog, the loop clock and exit guards.

Rate limit (per joint j, per tick): g_t[j] = prev[j] + clip(a_t[j] - prev[j], -d_j, d_j), then g_t is clipped to
the calibrated range. ``prev`` is the last goal sent, or the measured position after a hold, so a policy or a
leader arm that jumps far away moves the follower there at most at d_j * fps (rad/s).
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable

import numpy as np

from recap.errors import ConfigError


def step_limits(max_step_rad: float | None, max_gripper_step: float | None) -> np.ndarray:
    """Per-element goal-change limits of the 14-D bimanual action (None: unlimited)."""
    arm = np.full(7, np.inf if max_step_rad is None else max_step_rad)
    arm[6] = np.inf if max_gripper_step is None else max_gripper_step
    return np.concatenate([arm, arm])


def limit_step(target: np.ndarray, previous: np.ndarray, max_step: np.ndarray) -> tuple[np.ndarray, bool]:
    """Move from ``previous`` towards ``target`` by at most ``max_step`` per element; also say whether it clipped."""
    delta = np.clip(target - previous, -max_step, max_step)
    out = previous + delta
    return out, bool(np.any(np.abs(out - target) > 1e-12))


class LoopClock:
    """Ticks at ``fps`` on the monotonic clock; records how late each tick started (jitter).

    Sleeps until 0.5 ms before a deadline, then spins: ``time.sleep`` alone wakes up to ~0.1-1 ms late. A tick
    that starts more than one period late resets the schedule (counted in ``overruns``) instead of bursting.
    """

    def __init__(
        self,
        fps: int,
        spin_s: float = 0.0005,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.period = 1.0 / fps
        self.spin_s = spin_s
        self._clock, self._sleep = clock, sleep  # injectable, so the schedule can be tested on a fake clock
        self.next: float | None = None
        self.lateness: list[float] = []
        self.overruns = 0
        self.ticks = 0
        self.first = self.last = 0.0

    def reset(self) -> None:
        self.next = None
        self.lateness.clear()
        self.overruns = 0
        self.ticks = 0

    def wait(self) -> float:
        """Block until the next tick; returns its start time."""
        now = self._clock()
        self.ticks += 1
        if self.next is None:
            self.next = self.first = self.last = now
            return now
        self.next += self.period
        remaining = self.next - now
        if remaining > self.spin_s:
            self._sleep(remaining - self.spin_s)
        while (now := self._clock()) < self.next:
            pass
        late = now - self.next
        self.last = now
        self.lateness.append(late)
        if late > self.period:
            self.overruns += 1
            self.next = now
        return now

    def stats(self) -> dict[str, float]:
        """Ticks, achieved rate (ticks per second between the first and last tick), lateness percentiles (ms)."""
        if not self.lateness:
            return {}
        lat = np.asarray(self.lateness) * 1e3
        rate = (self.ticks - 1) / (self.last - self.first) if self.last > self.first else float("nan")
        return {
            "ticks": self.ticks,
            "rate_hz": rate,
            "jitter_p90_ms": float(np.percentile(lat, 90)),
            "jitter_p50_ms": float(np.percentile(lat, 50)),
            "jitter_p99_ms": float(np.percentile(lat, 99)),
            "jitter_max_ms": float(lat.max()),
            "overruns": self.overruns,
        }


def set_realtime_priority(priority: int) -> tuple[int, int]:
    """Run the calling thread (and threads it starts later) under SCHED_FIFO at ``priority`` (1-99).

    On a loaded machine this is what keeps tick jitter well under a millisecond: an ordinary thread waits behind
    every other runnable process. Needs root or an ``rtprio`` limit (``/etc/security/limits.conf``:
    ``@robot - rtprio 90``). Linux only. Returns the previous (policy, priority) for :func:`restore_scheduling`.
    """
    if not 1 <= priority <= 99:
        raise ConfigError(f"realtime_priority must be 1..99 (0 disables it), got {priority}")
    previous = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return previous
    except PermissionError:
        raise ConfigError(
            f"not allowed to use SCHED_FIFO priority {priority}: add an rtprio limit for your user "
            "(/etc/security/limits.conf: '<user> - rtprio 90', then log in again) or set realtime_priority=0"
        ) from None


def restore_scheduling(previous: tuple[int, int]) -> None:
    os.sched_setscheduler(0, previous[0], os.sched_param(previous[1]))


class Watchdog:
    """Calls ``on_expire`` once when ``feed`` has not been called for ``timeout_s`` (checked every timeout/4)."""

    def __init__(self, timeout_s: float, on_expire: Callable[[], None]) -> None:
        self.timeout_s = timeout_s
        self.on_expire = on_expire
        self.last_feed = time.monotonic()
        self.expired = False
        self.trips = 0
        self.last_error: Exception | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.last_feed = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="action watchdog", daemon=True)
        self._thread.start()

    def feed(self) -> None:
        self.last_feed = time.monotonic()
        self.expired = False

    def _run(self) -> None:
        while not self._stop.wait(self.timeout_s / 4):
            if not self.expired and time.monotonic() - self.last_feed > self.timeout_s:
                self.expired = True
                self.trips += 1
                try:
                    self.on_expire()
                except Exception as exc:  # noqa: BLE001 - the watchdog thread must keep running
                    self.last_error = exc

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None


class ExitGuard:
    """Makes sure ``release`` runs when the program exits, crashes or gets SIGTERM/SIGHUP.

    Normal exceptions unwind through the robot's context manager; ``atexit`` covers the interpreter shutting
    down with the robot still open; SIGTERM/SIGHUP are turned into SystemExit so both of those run. (SIGKILL and
    power loss cannot be caught: then the motors keep their last goal, which the rate limit keeps close to where
    the arm already is.)
    """

    _installed_signals = False

    def __init__(self, release: Callable[[], None]) -> None:
        ref = weakref.WeakMethod(release) if hasattr(release, "__self__") else (lambda: release)
        self._ref = ref
        atexit.register(self._fire)
        if threading.current_thread() is threading.main_thread() and not ExitGuard._installed_signals:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) in (signal.SIG_DFL, None):
                    signal.signal(sig, _raise_system_exit)
            ExitGuard._installed_signals = True

    def _fire(self) -> None:
        release = self._ref()
        if release is not None:
            release()

    def disarm(self) -> None:
        atexit.unregister(self._fire)


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)

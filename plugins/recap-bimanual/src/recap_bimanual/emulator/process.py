"""An emulated arm served from a child process, so the emulator never competes with the driver for the GIL.

In one process, a loaded machine can leave the emulator's thread waiting for the GIL behind the driver's and
the cameras' threads for seconds; in its own process it waits only for a CPU. The benchmark
(benchmarks/driver_loop.py) and the hardware tests use it. Everything a test does to a thread-served
:class:`DynamixelEmulator` works here too, over a pipe: ``inject``, ``clear_faults``, ``counters()``,
``motor(i)`` / ``motors`` (attribute reads and method calls of an :class:`EmulatedMotor`, e.g.
``motor(1).get("Goal_Position")``, ``motor(9).move_by_hand(2700)``, ``.torque``) and ``with emu.lock:``
(the bus waits while the caller changes several motors at once).
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import threading
from typing import Any

import attrs

from recap_bimanual.hardware.arms import ARM_MODELS


def _motor_attr(emu: Any, motor_id: int, name: str) -> tuple[str, Any]:
    with emu.lock:
        value = getattr(emu.motor(motor_id), name)
    return ("method", None) if callable(value) else ("value", value)


def _motor_call(emu: Any, motor_id: int, name: str, *args: Any, **kwargs: Any) -> Any:
    with emu.lock:
        return getattr(emu.motor(motor_id), name)(*args, **kwargs)


_COMMANDS = {
    "inject": lambda emu, *a, **k: emu.inject(*a, **k),
    "clear_faults": lambda emu: emu.clear_faults(),
    "move_by_hand": lambda emu, motor_id, ticks: _motor_call(emu, motor_id, "move_by_hand", ticks),
    "counters": lambda emu: attrs.asdict(emu.counters),
    "motor_ids": lambda emu: sorted(emu.motors),
    "motor_attr": _motor_attr,
    "motor_call": _motor_call,
    "lock_acquire": lambda emu: emu.lock.acquire(),
    "lock_release": lambda emu: emu.lock.release(),
}


def _serve(model: str, tau_s: float, realtime_priority: int, conn: Any) -> None:
    from recap_bimanual.emulator.arms import emulated_arm

    if realtime_priority:  # the emulator stands in for hardware, which nothing else on the host delays
        from recap_bimanual.hardware.safety import set_realtime_priority

        set_realtime_priority(realtime_priority)

    with emulated_arm(ARM_MODELS[model], tau_s=tau_s) as emu:
        conn.send(emu.port)
        while (msg := conn.recv()) is not None:
            name, args, kwargs = msg
            try:
                if name not in _COMMANDS:
                    raise ValueError(f"unknown emulator command {name!r}; known: {sorted(_COMMANDS)}")
                conn.send(_COMMANDS[name](emu, *args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - report back, keep serving
                conn.send(exc)


class RemoteMotor:
    """An :class:`EmulatedMotor` in the emulator's process: reading an attribute or calling a method asks it."""

    def __init__(self, emulator: EmulatorProcess, motor_id: int) -> None:
        self._emulator, self._motor_id = emulator, motor_id

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        kind, value = self._emulator._call("motor_attr", self._motor_id, name)
        if kind == "method":
            return functools.partial(self._emulator._call, "motor_call", self._motor_id, name)
        return value


class _RemoteLock:
    def __init__(self, emulator: EmulatorProcess) -> None:
        self._emulator = emulator

    def __enter__(self) -> None:
        self._emulator._call("lock_acquire")

    def __exit__(self, *exc: object) -> None:
        self._emulator._call("lock_release")


class EmulatorProcess:
    """``with EmulatorProcess("vx300s") as emu: MotorBus(emu.port)...``

    ``start_method``: ``spawn`` (a fresh interpreter: the default, safe from any parent) or ``fork`` (starts in
    milliseconds; only from a process with no other threads running, e.g. a test fixture).
    """

    def __init__(
        self, model: str, tau_s: float = 0.03, realtime_priority: int = 0, *, start_method: str = "spawn"
    ) -> None:
        if model not in ARM_MODELS:
            raise ValueError(f"unknown arm model {model!r}; known: {sorted(ARM_MODELS)}")
        self.model, self.tau_s, self.realtime_priority = model, tau_s, realtime_priority
        self.start_method = start_method
        self.port = ""
        self.lock = _RemoteLock(self)
        self.motors: dict[int, RemoteMotor] = {}
        self._conn = None
        self._proc = None
        self._pipe_lock = threading.Lock()  # one request and its answer at a time, whichever thread asks

    def start(self) -> EmulatorProcess:
        ctx = mp.get_context(self.start_method)
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(self.model, self.tau_s, self.realtime_priority, child), daemon=True
        )
        self._proc.start()
        self._conn = parent
        self.port = parent.recv()
        self.motors = {i: RemoteMotor(self, i) for i in self._call("motor_ids")}
        return self

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._conn is None:
            raise RuntimeError(
                "the emulator process is not running; use it as a context manager or start() it"
            )
        with self._pipe_lock:
            self._conn.send((name, args, kwargs))
            out = self._conn.recv()
        if isinstance(out, Exception):
            raise out
        return out

    def inject(self, kind: str, **kwargs: Any) -> None:
        self._call("inject", kind, **kwargs)

    def clear_faults(self) -> None:
        self._call("clear_faults")

    def move_by_hand(self, motor_id: int, ticks: int) -> None:
        self._call("move_by_hand", motor_id, ticks)

    def counters(self) -> dict[str, Any]:
        """The bus counters (:class:`BusCounters` as a dict): packets, bytes, faults applied by kind."""
        return self._call("counters")

    def motor(self, motor_id: int) -> RemoteMotor:
        if motor_id not in self.motors:
            raise KeyError(f"no emulated motor with id {motor_id}; ids: {sorted(self.motors)}")
        return self.motors[motor_id]

    def stop(self) -> None:
        if self._proc is not None:
            self._conn.send(None)
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.kill()
            self._proc, self._conn = None, None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

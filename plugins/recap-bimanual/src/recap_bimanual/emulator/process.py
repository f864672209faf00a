"""An emulated arm served from a child process, so the emulator never competes with the driver for the GIL.

Use it for timing (benchmarks/driver_loop.py); tests use the in-process thread (:class:`DynamixelEmulator`),
which lets them poke motors directly. Commands travel over a pipe: ``inject``, ``move_by_hand``, ``counters``.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import attrs

from recap_bimanual.hardware.arms import ARM_MODELS


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
                if name == "inject":
                    emu.inject(*args, **kwargs)
                    conn.send(None)
                elif name == "move_by_hand":
                    with emu.lock:
                        emu.motor(args[0]).move_by_hand(args[1])
                    conn.send(None)
                elif name == "counters":
                    conn.send(attrs.asdict(emu.counters))
                else:
                    conn.send(ValueError(f"unknown emulator command {name!r}"))
            except Exception as exc:  # noqa: BLE001 - report back, keep serving
                conn.send(exc)


class EmulatorProcess:
    """``with EmulatorProcess("vx300s") as emu: MotorBus(emu.port)...``"""

    def __init__(self, model: str, tau_s: float = 0.03, realtime_priority: int = 0) -> None:
        if model not in ARM_MODELS:
            raise ValueError(f"unknown arm model {model!r}; known: {sorted(ARM_MODELS)}")
        self.model, self.tau_s, self.realtime_priority = model, tau_s, realtime_priority
        self.port = ""
        self._conn = None
        self._proc = None

    def start(self) -> EmulatorProcess:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(self.model, self.tau_s, self.realtime_priority, child), daemon=True
        )
        self._proc.start()
        self._conn = parent
        self.port = parent.recv()
        return self

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._conn.send((name, args, kwargs))
        out = self._conn.recv()
        if isinstance(out, Exception):
            raise out
        return out

    def inject(self, kind: str, **kwargs: Any) -> None:
        self._call("inject", kind, **kwargs)

    def move_by_hand(self, motor_id: int, ticks: int) -> None:
        self._call("move_by_hand", motor_id, ticks)

    def counters(self) -> dict[str, Any]:
        return self._call("counters")

    def stop(self) -> None:
        if self._proc is not None:
            self._conn.send(None)
            self._proc.join(timeout=5)
            self._proc = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""A Dynamixel Protocol 2.0 bus on a pseudo-terminal, served by a thread, with fault injection.

The driver (or the official SDK) opens ``emulator.port`` (the pty's slave path) like a USB serial adapter.
Instructions handled: PING (unicast and broadcast), READ, WRITE, REBOOT, SYNC READ, SYNC WRITE; anything else
gets an instruction-error status. Writes addressed to a motor's Secondary_ID are applied by it without a reply
(shadow motors). Faults (``inject``): ``drop`` (no reply), ``bad_crc`` (reply with a corrupted CRC), ``late``
(reply after a delay), ``overload`` (hardware error bit 5: torque off, alert bit in every status until
reboot), ``unplug`` (the device disappears: the pty's master side closes, so the port raises I/O errors).
"""

from __future__ import annotations

import contextlib
import enum
import os
import select
import threading
import time
import tty
from collections.abc import Iterable

import attrs

from recap_bimanual.emulator import protocol as p
from recap_bimanual.emulator.motor import EmulatedMotor
from recap_bimanual.hardware import control_table as ct


class FaultKind(enum.StrEnum):
    DROP = "drop"
    BAD_CRC = "bad_crc"
    LATE = "late"
    OVERLOAD = "overload"
    UNPLUG = "unplug"


@attrs.define
class _Fault:
    kind: FaultKind
    remaining: int | None  # None: persistent
    motor_id: int | None
    delay_s: float


@attrs.define
class BusCounters:
    """What the emulated bus saw: packets and bytes each way, faults actually applied."""

    instructions: int = 0
    statuses: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    faults_applied: dict[str, int] = attrs.field(factory=dict)


class DynamixelEmulator:
    """Motors on one emulated bus. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, motors: Iterable[EmulatedMotor]) -> None:
        self.motors: dict[int, EmulatedMotor] = {}
        for m in motors:
            if m.dxl_id in self.motors:
                raise ValueError(f"two emulated motors share id {m.dxl_id}; ids on one bus must be unique")
            self.motors[m.dxl_id] = m
        self.counters = BusCounters()
        self.lock = threading.RLock()
        self._faults: list[_Fault] = []
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: bytes pass through untouched
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._running = False
        self.unplugged = False

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> DynamixelEmulator:
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=f"dxl-emulator {self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join(timeout=2)
            self._thread = None
        for fd in (self._wake_r, self._wake_w, self._slave) + (() if self.unplugged else (self._master,)):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.unplugged = True

    def __enter__(self) -> DynamixelEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls -------------------------------------------------------------------------------------
    def inject(
        self,
        kind: str | FaultKind,
        *,
        count: int | None = 1,
        motor_id: int | None = None,
        delay_s: float = 0.02,
    ) -> None:
        """Arm a fault for the next ``count`` status packets (None: every one from now on).

        ``motor_id`` restricts it to one motor's replies. ``overload`` acts at once on ``motor_id``;
        ``unplug`` closes the port at once.
        """
        kind = FaultKind(kind)
        with self.lock:
            if kind is FaultKind.OVERLOAD:
                if motor_id not in self.motors:
                    raise ValueError(f"overload needs the id of an emulated motor, got {motor_id}")
                self.motors[motor_id].set_hardware_error(ct.HW_OVERLOAD)
                self._count(kind)
            elif kind is FaultKind.UNPLUG:
                self._count(kind)
                self.unplugged = True
                os.close(self._master)
            else:
                self._faults.append(_Fault(kind, count, motor_id, delay_s))

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def motor(self, dxl_id: int) -> EmulatedMotor:
        return self.motors[dxl_id]

    # -- serving -------------------------------------------------------------------------------------------
    def _serve(self) -> None:
        buf = bytearray()
        while self._running and not self.unplugged:
            try:
                ready, _, _ = select.select([self._master, self._wake_r], [], [], 0.5)
            except (OSError, ValueError):
                return  # the master was closed (unplugged)
            if self._wake_r in ready or self.unplugged:
                return
            if self._master not in ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            with self.lock:
                self.counters.bytes_in += len(data)
                buf += data
                while (pkt := p.take_packet(buf)) is not None:
                    self.counters.instructions += 1
                    self._dispatch(pkt)

    def _dispatch(self, pkt: p.Packet) -> None:
        bcast = pkt.dxl_id == p.BROADCAST_ID
        if not pkt.crc_ok:
            if not bcast and pkt.dxl_id in self.motors:
                self._reply(self.motors[pkt.dxl_id], p.ERR_CRC, b"", ping=True)
            return
        if pkt.inst == p.INST_PING:
            targets = sorted(self.motors) if bcast else [pkt.dxl_id] if pkt.dxl_id in self.motors else []
            for i in targets:
                m = self.motors[i]
                self._reply(m, m.alert, ct.to_bytes(m.model.number, 2) + bytes([m.table[6]]), ping=True)
        elif pkt.inst == p.INST_READ and not bcast:
            if pkt.dxl_id in self.motors and len(pkt.params) == 4:
                addr, length = _u16(pkt.params, 0), _u16(pkt.params, 2)
                m = self.motors[pkt.dxl_id]
                err, data = m.handle_read(addr, length)
                self._reply(m, err, data, read=True)
        elif pkt.inst == p.INST_WRITE and len(pkt.params) >= 3:
            addr = _u16(pkt.params, 0)
            for m in self._addressed(pkt.dxl_id):
                err = m.handle_write(addr, pkt.params[2:])
                if m.dxl_id == pkt.dxl_id:
                    self._reply(m, err, b"")
        elif pkt.inst == p.INST_REBOOT and pkt.dxl_id in self.motors:
            m = self.motors[pkt.dxl_id]
            m.reboot()
            self._reply(m, 0, b"")
        elif pkt.inst == p.INST_SYNC_READ and bcast and len(pkt.params) >= 4:
            addr, length = _u16(pkt.params, 0), _u16(pkt.params, 2)
            for i in pkt.params[4:]:
                if i in self.motors:
                    err, data = self.motors[i].handle_read(addr, length)
                    self._reply(self.motors[i], err, data, read=True)
        elif pkt.inst == p.INST_SYNC_WRITE and bcast and len(pkt.params) >= 4:
            addr, length = _u16(pkt.params, 0), _u16(pkt.params, 2)
            body = pkt.params[4:]
            for k in range(0, len(body) - length, length + 1):
                for m in self._addressed(body[k]):
                    m.handle_write(addr, body[k + 1 : k + 1 + length])
        elif not bcast and pkt.dxl_id in self.motors:
            self._reply(self.motors[pkt.dxl_id], p.ERR_INSTRUCTION, b"")

    def _addressed(self, dxl_id: int) -> list[EmulatedMotor]:
        if dxl_id == p.BROADCAST_ID:
            return list(self.motors.values())
        return [m for m in self.motors.values() if dxl_id in (m.dxl_id, m.secondary_id)]

    def _reply(
        self, motor: EmulatedMotor, error: int, params: bytes, *, ping: bool = False, read: bool = False
    ) -> None:
        level = motor.table[68]  # Status_Return_Level: 0 ping only, 1 ping + read, 2 all
        if not (ping or level == 2 or (level == 1 and read)):
            return
        packet = p.status(motor.dxl_id, error, params)
        fault = self._take_fault(motor.dxl_id)
        if fault is not None:
            self._count(fault.kind)
            if fault.kind is FaultKind.DROP:
                return
            if fault.kind is FaultKind.BAD_CRC:
                packet = packet[:-1] + bytes([packet[-1] ^ 0x5A])
            if fault.kind is FaultKind.LATE:
                time.sleep(fault.delay_s)
        if motor.return_delay_s:
            time.sleep(motor.return_delay_s)
        try:
            os.write(self._master, packet)
        except OSError:
            return
        self.counters.statuses += 1
        self.counters.bytes_out += len(packet)

    def _take_fault(self, dxl_id: int) -> _Fault | None:
        for fault in self._faults:
            if fault.motor_id is None or fault.motor_id == dxl_id:
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _count(self, kind: FaultKind) -> None:
        self.counters.faults_applied[kind.value] = self.counters.faults_applied.get(kind.value, 0) + 1


def _u16(data: bytes, offset: int) -> int:
    return data[offset] | (data[offset + 1] << 8)

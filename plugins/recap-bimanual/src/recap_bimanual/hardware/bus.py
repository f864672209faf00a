"""A Dynamixel Protocol 2.0 motor bus on ``dynamixel_sdk`` with bounded retries and fault accounting.

Every transaction is tried ``1 + retries`` times. A failure that a retry cures is *transient*: it is counted in
``counters`` (by kind: timeout, corrupt, port) and the caller never sees it. When every try fails the fault is
*persistent* and :class:`CommFault` is raised naming the bus, the motor id and the fault. Before a retry the bus
waits for the line to fall quiet for one reply timeout and drops what arrived: a status packet that comes after
its timeout would otherwise be read as the answer to the retry, and the retry's own as the answer to the next
request (a wrong joint reading).

The SDK's stock port handler busy-polls a non-blocking port and allows 34 ms per reply (2 x a 16 ms USB latency
timer + 2 ms). With the adapter's latency timer at 1 ms (see docs/hardware.md) that turns one lost packet into a
missed 20 ms tick, so :class:`LowLatencyPort` waits on the port with a short blocking read and uses the configured
latency for its reply timeout. ``reply_timeout_ms`` overrides that derived timeout explicitly, for a bus whose
other end can answer later than a motor does (an emulator on a loaded test machine, a slow USB hub).
"""

from __future__ import annotations

import contextlib
import termios
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import attrs
import dynamixel_sdk as sdk
import serial

from recap.errors import RecapError
from recap_bimanual.hardware import control_table as ct

T = TypeVar("T")


class CommFault(RecapError, RuntimeError):
    """Persistent communication failure with one motor (or the port itself)."""

    def __init__(self, bus: str, motor_id: int | None, fault: str) -> None:
        self.bus, self.motor_id, self.fault = bus, motor_id, fault
        who = f"motor id {motor_id}" if motor_id is not None else "the port"
        super().__init__(f"{bus}: {who}: {fault}")


class MotorError(RecapError, RuntimeError):
    """A motor refused an instruction (status error byte), e.g. writing EEPROM with torque on."""


_ERRNUM = {
    1: "result fail",
    2: "instruction error",
    3: "CRC error",
    4: "data range error",
    5: "data length error",
    6: "data limit error",
    7: "access error",
}
_RESULT_KIND = {
    sdk.COMM_RX_TIMEOUT: "timeout",
    sdk.COMM_RX_CORRUPT: "corrupt",
    sdk.COMM_TX_FAIL: "port",
    sdk.COMM_RX_FAIL: "timeout",
    sdk.COMM_PORT_BUSY: "port",
}
_KIND_TEXT = {
    "timeout": "no status packet (timeout)",
    "corrupt": "corrupt status packet (bad CRC or framing)",
    "port": "serial port error",
}


class LowLatencyPort(sdk.PortHandler):
    """PortHandler that blocks briefly in reads (no busy-poll) and counts bytes both ways."""

    def __init__(
        self, port_name: str, latency_ms: float = 1.0, reply_timeout_ms: float | None = None
    ) -> None:
        super().__init__(port_name)
        self.latency_ms = latency_ms
        self.reply_timeout_ms = 2.0 * latency_ms + 2.0 if reply_timeout_ms is None else reply_timeout_ms
        self.bytes_tx = 0
        self.bytes_rx = 0

    def setupPort(self, cflag_baud: int) -> bool:  # noqa: N802 (SDK naming)
        ok = super().setupPort(cflag_baud)
        self.ser.timeout = 0.0005  # read() waits up to 0.5 ms for the bytes asked for, releasing the GIL
        return ok

    def setPacketTimeout(self, packet_length: int) -> None:  # noqa: N802
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = self.tx_time_per_byte * packet_length + self.reply_timeout_ms

    def reply_timeout_s(self) -> float:
        """How long a status packet may take after its request (by default the SDK's 2 x latency + 2 ms)."""
        return self.reply_timeout_ms / 1000.0

    def drop_late_bytes(self) -> int:
        """Read and drop bytes until none has arrived for one reply timeout; returns how many were dropped."""
        dropped, quiet_since = 0, time.monotonic()
        while time.monotonic() - quiet_since < self.reply_timeout_s():
            data = self.readPort(max(1, self.ser.in_waiting))  # blocks up to the read timeout (0.5 ms)
            if data:
                dropped, quiet_since = dropped + len(data), time.monotonic()
        return dropped

    def readPort(self, length: int) -> bytes:  # noqa: N802
        data = self.ser.read(length)
        self.bytes_rx += len(data)
        return data

    def writePort(self, packet: list[int]) -> int:  # noqa: N802
        n = self.ser.write(bytes(packet))
        self.bytes_tx += n
        return n


@attrs.define
class BusCounters:
    """Transient faults recovered by a retry, by kind, and transactions done."""

    transactions: int = 0
    recovered: dict[str, int] = attrs.field(factory=dict)
    persistent: int = 0
    late_bytes: int = 0  # bytes of status packets that came after their timeout, dropped before a retry

    @property
    def recovered_total(self) -> int:
        return sum(self.recovered.values())


class _Failure(Exception):
    def __init__(self, motor_id: int | None, kind: str, detail: str = "") -> None:
        self.motor_id, self.kind, self.detail = motor_id, kind, detail


class MotorBus:
    """One serial port with motors on it. ``alerts`` holds ids whose last status had the hardware-alert bit."""

    def __init__(
        self,
        port: str,
        baud: int = 1_000_000,
        *,
        name: str = "bus",
        retries: int = 2,
        latency_ms: float = 1.0,
        reply_timeout_ms: float | None = None,
    ) -> None:
        if reply_timeout_ms is not None and reply_timeout_ms <= 0:
            raise ValueError(
                f"reply_timeout_ms must be positive (None derives it from latency_ms), got {reply_timeout_ms}"
            )
        if baud not in ct.BAUD_RATES.values():
            raise ValueError(
                f"baud {baud} is not a Dynamixel X-series rate; use one of {sorted(ct.BAUD_RATES.values())}"
            )
        self.name, self.baud, self.retries = name, baud, retries
        self.port = LowLatencyPort(port, latency_ms, reply_timeout_ms)
        self.packets = sdk.PacketHandler(2.0)
        self.counters = BusCounters()
        self.alerts: set[int] = set()
        self._sync_reads: dict[tuple[int, int, tuple[int, ...]], sdk.GroupSyncRead] = {}

    # -- port ----------------------------------------------------------------------------------------------
    def open(self) -> None:
        try:
            self.port.openPort()
            self.port.setBaudRate(self.baud)
        except (serial.SerialException, OSError) as exc:
            raise CommFault(
                self.name,
                None,
                f"cannot open {self.port.port_name}: {exc}. Check the cable, "
                "the udev rule (docs/hardware.md) and that no other program holds the port",
            ) from None

    def close(self) -> None:
        if self.port.is_open:
            with contextlib.suppress(serial.SerialException, OSError, termios.error):
                self.port.closePort()

    @property
    def is_open(self) -> bool:
        return bool(self.port.is_open)

    # -- retry core ----------------------------------------------------------------------------------------
    def _run(self, fn: Callable[[], T], motor_id: int | None) -> T:
        """``fn()`` with up to ``retries`` retries; failures a retry cured are counted by kind."""
        failures: list[_Failure] = []
        for _ in range(1 + self.retries):
            try:
                out = fn()
            except _Failure as f:
                failures.append(f)
            except (serial.SerialException, OSError, termios.error) as exc:
                failures.append(_Failure(motor_id, "port", f"{type(exc).__name__}: {exc}"))
            else:
                self.counters.transactions += 1
                for f in failures:
                    self.counters.recovered[f.kind] = self.counters.recovered.get(f.kind, 0) + 1
                return out
            self.port.is_using = False  # the SDK leaves the port "busy" when a transaction breaks off
            with contextlib.suppress(serial.SerialException, OSError, termios.error):
                self.counters.late_bytes += self.port.drop_late_bytes()  # a broken port: the retry reports it
        last = failures[-1]
        self.counters.persistent += 1
        text = _KIND_TEXT[last.kind] + (f": {last.detail}" if last.detail else "")
        raise CommFault(
            self.name,
            last.motor_id if last.motor_id is not None else motor_id,
            f"{text} after {1 + self.retries} tries",
        )

    def _check(self, motor_id: int | None, result: int, error: int, what: str) -> None:
        if result != sdk.COMM_SUCCESS:
            raise _Failure(motor_id, _RESULT_KIND.get(result, "port"), self.packets.getTxRxResult(result))
        self._note_error(motor_id, error, what)

    def _note_error(self, motor_id: int | None, error: int, what: str) -> None:
        if motor_id is not None:
            (self.alerts.add if error & 0x80 else self.alerts.discard)(motor_id)
        num = error & 0x7F
        if num == 3:  # the motor saw our packet corrupted: worth a retry
            raise _Failure(motor_id, "corrupt", "motor reported a CRC error")
        if num:
            raise MotorError(f"{self.name}: motor id {motor_id} refused {what}: {_ERRNUM.get(num, num)}")

    # -- instructions --------------------------------------------------------------------------------------
    def ping(self, motor_id: int) -> int:
        """The model number of ``motor_id``."""

        def go() -> int:
            model, result, error = self.packets.ping(self.port, motor_id)
            self._check(motor_id, result, error, "ping")
            return model

        return self._run(go, motor_id)

    def read(self, motor_id: int, field: str) -> int:
        f = ct.FIELDS[field]

        def go() -> int:
            data, result, error = self.packets.readTxRx(self.port, motor_id, f.address, f.size)
            self._check(motor_id, result, error, f"reading {field}")
            return ct.from_bytes(data, f.signed)

        return self._run(go, motor_id)

    def write(self, motor_id: int, field: str, value: int) -> None:
        f = ct.FIELDS[field]
        data = list(ct.to_bytes(value, f.size))

        def go() -> None:
            result, error = self.packets.writeTxRx(self.port, motor_id, f.address, f.size, data)
            self._check(motor_id, result, error, f"writing {field}={value}")

        self._run(go, motor_id)

    def reboot(self, motor_id: int) -> None:
        def go() -> None:
            result, error = self.packets.reboot(self.port, motor_id)
            self._check(motor_id, result, error, "reboot")

        self._run(go, motor_id)

    def sync_read(self, field: str, ids: Iterable[int]) -> dict[int, int]:
        """One SYNC READ packet for ``field`` of ``ids``; each motor answers in turn."""
        f = ct.FIELDS[field]
        ids = tuple(ids)
        key = (f.address, f.size, ids)
        if key not in self._sync_reads:
            group = sdk.GroupSyncRead(self.port, self.packets, f.address, f.size)
            for i in ids:
                group.addParam(i)
            self._sync_reads[key] = group
        group = self._sync_reads[key]

        def go() -> dict[int, int]:
            result = group.txPacket()
            if result != sdk.COMM_SUCCESS:
                raise _Failure(None, _RESULT_KIND.get(result, "port"), self.packets.getTxRxResult(result))
            out = {}
            for i in ids:  # the SDK's group drops each motor's error byte; read them ourselves
                data, result, error = self.packets.readRx(self.port, i, f.size)
                self._check(i, result, error, f"sync read of {field}")
                out[i] = ct.from_bytes(data, f.signed)
            return out

        return self._run(go, ids[0] if len(ids) == 1 else None)

    def sync_write(self, field: str, values: Mapping[int, int]) -> None:
        """One SYNC WRITE packet setting ``field`` on every motor in ``values`` (no status replies)."""
        f = ct.FIELDS[field]
        group = sdk.GroupSyncWrite(self.port, self.packets, f.address, f.size)
        for i, v in values.items():
            group.addParam(i, list(ct.to_bytes(v, f.size)))

        def go() -> None:
            result = group.txPacket()
            if result != sdk.COMM_SUCCESS:
                raise _Failure(None, "port", self.packets.getTxRxResult(result))

        self._run(go, None)

    def torque(self, ids: Iterable[int], on: bool) -> None:
        for i in ids:
            self.write(i, "Torque_Enable", int(on))

    def broadcast_torque_off(self) -> None:
        """Last-resort torque off for every motor on the bus, without waiting for replies (never raises)."""
        with contextlib.suppress(serial.SerialException, OSError, termios.error, AttributeError, TypeError):
            self.packets.write1ByteTxOnly(self.port, sdk.BROADCAST_ID, ct.FIELDS["Torque_Enable"].address, 0)
        self.port.is_using = False

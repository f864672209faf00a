"""The emulator speaks the real protocol: the official SDK client and our MotorBus pass the same checks."""

from __future__ import annotations

import time

import dynamixel_sdk as sdk
import pytest
from recap_bimanual.emulator import EMULATOR_BUS, DynamixelEmulator, EmulatedMotor
from recap_bimanual.hardware import control_table as ct
from recap_bimanual.hardware.bus import MotorBus, MotorError

#: how long the test waits for the emulator to catch up before declaring it stuck (never reached when it works)
EMULATOR_STUCK_S = 60.0


class CountingPort(sdk.PortHandler):
    """The stock PortHandler with two test-only changes.

    * Its reply timeout allows 100 ms of latency instead of 16 ms: the emulator is a thread of the test process,
      and on a loaded machine it waits for a CPU (the real robot answers in microseconds).
    * It counts the bytes it sends and receives, and ``clearPort`` (which the SDK calls before every request)
      reads the pending bytes instead of discarding them unseen, so a test can tell when every byte the
      emulator wrote has been consumed.
    """

    REPLY_LATENCY_MS = 100.0

    def __init__(self, port_name: str) -> None:
        super().__init__(port_name)
        self.bytes_tx = self.bytes_rx = 0

    def setPacketTimeout(self, packet_length):  # noqa: N802 (SDK naming)
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = self.tx_time_per_byte * packet_length + 2.0 * self.REPLY_LATENCY_MS + 2.0

    def writePort(self, packet):  # noqa: N802
        n = super().writePort(packet)
        self.bytes_tx += n
        return n

    def readPort(self, length):  # noqa: N802
        data = super().readPort(length)
        self.bytes_rx += len(data)
        return data

    def clearPort(self):  # noqa: N802
        while self.ser.in_waiting:
            self.readPort(self.ser.in_waiting)


class SdkClient:
    """The stock dynamixel_sdk objects: PortHandler, PacketHandler, GroupSyncRead, GroupSyncWrite."""

    def __init__(self, emulator: DynamixelEmulator) -> None:
        self.emulator = emulator
        self.port = CountingPort(emulator.port)
        self.ph = sdk.PacketHandler(2.0)
        assert self.port.openPort() and self.port.setBaudRate(1_000_000)

    def _retry(self, call):
        """The stock client has no retries; allow two on a timeout, which a loaded test machine can cause
        (the emulator thread waits for a CPU). Before each retry the late reply is drained, or it would be read
        as the answer to the retry, and the retry's reply as the answer to the next request. Any other result,
        and a third timeout, fail the test."""
        for _ in range(2):
            out = call()
            result = out if isinstance(out, int) else out[-2] if len(out) == 3 else out[0]
            if result != sdk.COMM_RX_TIMEOUT:
                return out
            self.drain_late_replies()
        return call()

    def drain_late_replies(self) -> None:
        """Wait until the emulator has read every byte sent and answered it, then consume every reply byte.

        Counting bytes both ways makes this exact, however late the replies come: nothing is left to be
        mistaken for the answer to a later request, and no answer is waited for by the clock.
        """
        port, emu = self.port, self.emulator
        deadline = time.monotonic() + EMULATOR_STUCK_S
        while emu.counters.bytes_in < port.bytes_tx:
            assert time.monotonic() < deadline, "the emulator stopped reading requests"
            time.sleep(0.001)
        with emu.lock:  # it reads, dispatches and replies under this lock: its replies are all written now
            sent = emu.counters.bytes_out
        while port.bytes_rx < sent:
            assert time.monotonic() < deadline, f"{sent - port.bytes_rx} reply bytes never arrived"
            if not port.readPort(sent - port.bytes_rx):
                time.sleep(0.001)

    def ping(self, i):
        model, result, error = self._retry(lambda: self.ph.ping(self.port, i))
        assert result == sdk.COMM_SUCCESS, self.ph.getTxRxResult(result)
        return model

    def read(self, i, field):
        f = ct.FIELDS[field]
        data, result, error = self._retry(lambda: self.ph.readTxRx(self.port, i, f.address, f.size))
        assert result == sdk.COMM_SUCCESS and error & 0x7F == 0, (result, error)  # bit 7: hardware alert
        return ct.from_bytes(data, f.signed)

    def write(self, i, field, value):
        f = ct.FIELDS[field]
        data = list(ct.to_bytes(value, f.size))
        result, error = self._retry(lambda: self.ph.writeTxRx(self.port, i, f.address, f.size, data))
        assert result == sdk.COMM_SUCCESS
        if error:
            raise MotorError(f"status error {error}")

    def sync_read(self, field, ids):
        f = ct.FIELDS[field]
        group = sdk.GroupSyncRead(self.port, self.ph, f.address, f.size)
        for i in ids:
            assert group.addParam(i)
        assert self._retry(group.txRxPacket) == sdk.COMM_SUCCESS
        return {
            i: ct.from_bytes(ct.to_bytes(group.getData(i, f.address, f.size), f.size), f.signed) for i in ids
        }

    def sync_write(self, field, values):
        f = ct.FIELDS[field]
        group = sdk.GroupSyncWrite(self.port, self.ph, f.address, f.size)
        for i, v in values.items():
            assert group.addParam(i, list(ct.to_bytes(v, f.size)))
        assert group.txPacket() == sdk.COMM_SUCCESS

    def close(self):
        self.port.closePort()


class OurClient:
    def __init__(self, port: str) -> None:
        self.bus = MotorBus(port, **EMULATOR_BUS)  # as the robot tests: see conftest.py
        self.bus.open()
        self.ping, self.read, self.write = self.bus.ping, self.bus.read, self.bus.write
        self.sync_read, self.sync_write = self.bus.sync_read, self.bus.sync_write

    def close(self):
        self.bus.close()


@pytest.fixture(params=["sdk", "ours"])
def bus(request):
    motors = [
        EmulatedMotor(1, "XM540-W270", tau_s=0.01),
        EmulatedMotor(2, "XM430-W350", tau_s=0.01),
        EmulatedMotor(3, "XL430-W250", tau_s=0.01),
        EmulatedMotor(4, "XM430-W350", tau_s=0.01),
    ]
    with DynamixelEmulator(motors) as emu:
        client = SdkClient(emu) if request.param == "sdk" else OurClient(emu.port)
        yield client, emu
        client.close()


def _settle(client, ids, field="Present_Position", target=None, timeout=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = client.sync_read(field, ids)
        if target is None or all(abs(values[i] - target[i]) <= 2 for i in ids):
            return values
        time.sleep(0.01)
    return values


def test_ping_reports_each_model(bus):
    client, _ = bus
    assert client.ping(1) == 1120 and client.ping(2) == 1020 and client.ping(3) == 1060


def test_read_write_and_motion(bus):
    client, emu = bus
    assert client.read(2, "Present_Position") == 2048
    client.write(2, "Torque_Enable", 1)
    client.write(2, "Goal_Position", 3000)
    assert client.read(2, "Goal_Position") == 3000
    assert _settle(client, [2], target={2: 3000})[2] == pytest.approx(3000, abs=2)
    assert emu.counters.instructions >= 4


def test_signed_values_and_byte_stuffing_survive_the_wire(bus):
    client, _ = bus
    # 0x00FDFFFF puts FF FF FD in the body: the emulator's reply is stuffed and the client must unstuff it.
    client.write(4, "Homing_Offset", 0x00FDFFFF)
    assert client.read(4, "Homing_Offset") == 0x00FDFFFF
    client.write(4, "Homing_Offset", -1000)
    assert client.read(4, "Homing_Offset") == -1000
    assert client.read(4, "Present_Position") == 2048 - 1000


def test_sync_write_then_sync_read(bus):
    client, _ = bus
    ids = [1, 2, 3, 4]
    client.sync_write("Torque_Enable", dict.fromkeys(ids, 1))
    goals = {1: 1000, 2: 1500, 3: 2500, 4: 3500}
    client.sync_write("Goal_Position", goals)
    got = _settle(client, ids, target=goals)
    assert all(abs(got[i] - goals[i]) <= 2 for i in ids)
    assert client.sync_read("Torque_Enable", ids) == dict.fromkeys(ids, 1)


def test_refusals_eeprom_with_torque_on_and_unsupported_mode(bus):
    client, _ = bus
    client.write(3, "Torque_Enable", 1)
    with pytest.raises(MotorError):
        client.write(3, "Operating_Mode", ct.MODE_EXTENDED_POSITION)  # EEPROM while torque is on
    client.write(3, "Torque_Enable", 0)
    client.write(3, "Operating_Mode", ct.MODE_EXTENDED_POSITION)
    assert client.read(3, "Operating_Mode") == ct.MODE_EXTENDED_POSITION
    with pytest.raises(MotorError):
        client.write(3, "Operating_Mode", ct.MODE_CURRENT_BASED_POSITION)  # an XL430 has no current control


def test_shadow_motor_follows_writes_to_its_secondary_id(bus):
    client, emu = bus
    client.write(4, "Secondary_ID", 2)
    client.write(4, "Drive_Mode", 1)  # mounted mirrored
    client.sync_write("Torque_Enable", {2: 1, 4: 1})
    client.write(2, "Goal_Position", 2548)  # one write, two motors move; only id 2 replies
    got = _settle(client, [2, 4], target={2: 2548, 4: 2548})
    assert got == pytest.approx({2: 2548, 4: 2548}, abs=2)
    assert emu.motor(4).shaft == pytest.approx(2048 - 500, abs=3)  # the mirrored shaft turned the other way


def test_reboot_clears_overload(bus):
    client, emu = bus
    client.write(1, "Torque_Enable", 1)
    emu.inject("overload", motor_id=1)
    assert client.read(1, "Hardware_Error_Status") == ct.HW_OVERLOAD
    assert client.read(1, "Torque_Enable") == 0
    if isinstance(client, OurClient):
        client.bus.reboot(1)
    else:
        assert client.ph.reboot(client.port, 1)[0] == sdk.COMM_SUCCESS
    assert client.read(1, "Hardware_Error_Status") == 0


def test_sdk_broadcast_ping_finds_every_motor():
    motors = [EmulatedMotor(i, m) for i, m in ((1, "XM540-W270"), (7, "XM430-W350"), (9, "XL430-W250"))]
    with DynamixelEmulator(motors) as emu:
        client = SdkClient(emu)
        found, result = client.ph.broadcastPing(client.port)
        client.close()
    assert result == sdk.COMM_SUCCESS
    assert found == {1: [1120, 45], 7: [1020, 45], 9: [1060, 45]}

"""One emulated Dynamixel X-series motor: a control table in memory plus first-order dynamics.

Dynamics (torque on, position modes): the internal shaft angle q (ticks) follows the goal g as
    dq/dt = (g - q) / tau,  so  q(t + dt) = g + (q(t) - g) * exp(-dt / tau),
integrated lazily whenever the table is read or written (time from a monotonic clock). With torque off the
shaft stays where it is unless something moves it by hand (``move_by_hand``: a leader arm the operator drives).
Reported position p = s * (q - 2048) + 2048 + h with s = -1 when Drive_Mode bit 0 (reverse) is set (the
range mirrored about its centre) and h the Homing_Offset;
a goal written in reported units maps back to q through the same relation.
"""

from __future__ import annotations

import math
import time

from recap_bimanual.emulator import protocol as p
from recap_bimanual.hardware import control_table as ct

_BY_ADDRESS = sorted(ct.FIELDS.values(), key=lambda f: f.address)


class EmulatedMotor:
    """A motor with its own control table; ``handle_*`` methods return (error byte, data)."""

    def __init__(
        self,
        dxl_id: int,
        model: str,
        *,
        position: int = ct.CENTER_TICK,
        tau_s: float = 0.03,
        clock=time.monotonic,
    ) -> None:
        self.model = ct.MODELS[model]
        self.clock = clock
        self.tau_s = tau_s
        self.table = bytearray(256)
        self._set("Model_Number", self.model.number)
        self._set("Firmware_Version", 45)
        self._set("Return_Delay_Time", 250)  # factory default: 500 us
        self._set("Baud_Rate", 3)
        self._set("Operating_Mode", ct.MODE_POSITION)
        self._set("Secondary_ID", 255)  # 255 = no secondary id
        self._set("Max_Position_Limit", 4095)
        self._set("Min_Position_Limit", 0)
        self._set("Current_Limit", 1193)
        self._set("Status_Return_Level", 2)
        self._set("Present_Input_Voltage", 120)
        self._set("Present_Temperature", 32)
        self._set("ID", dxl_id)
        self.shaft = float(position)  # internal angle q in ticks
        self.goal_shaft = float(position)
        self.last_update = clock()
        self.hw_error = 0
        self._velocity = 0.0

    # -- identity ----------------------------------------------------------------------------------------
    @property
    def dxl_id(self) -> int:
        return self.table[7]

    @property
    def secondary_id(self) -> int:
        return self.table[12]

    @property
    def torque(self) -> bool:
        return bool(self.table[64])

    @property
    def return_delay_s(self) -> float:
        return self.table[9] * 2e-6

    @property
    def alert(self) -> int:
        return p.ERR_ALERT if self.hw_error else 0

    # -- registers -----------------------------------------------------------------------------------------
    def _set(self, name: str, value: int) -> None:
        f = ct.FIELDS[name]
        self.table[f.address : f.address + f.size] = ct.to_bytes(value, f.size)

    def get(self, name: str) -> int:
        f = ct.FIELDS[name]
        self._integrate()
        self._refresh_present()
        return ct.from_bytes(self.table[f.address : f.address + f.size], f.signed)

    def _sign(self) -> int:
        return -1 if self.table[10] & 1 else 1

    def _homing(self) -> int:
        return ct.from_bytes(self.table[20:24], True)

    def reported_position(self) -> float:
        return self._sign() * (self.shaft - ct.CENTER_TICK) + ct.CENTER_TICK + self._homing()

    def _to_shaft(self, reported: float) -> float:
        return self._sign() * (reported - self._homing() - ct.CENTER_TICK) + ct.CENTER_TICK

    def _integrate(self) -> None:
        now = self.clock()
        dt = now - self.last_update
        self.last_update = now
        if self.torque and dt > 0:
            self.shaft = self.goal_shaft + (self.shaft - self.goal_shaft) * math.exp(-dt / self.tau_s)
        self._velocity = 0.0 if not self.torque else (self.goal_shaft - self.shaft) / self.tau_s

    def _refresh_present(self) -> None:
        self._set("Present_Position", round(self.reported_position()))
        # velocity unit: 0.229 rpm = 0.229 * 4096 / 60 ticks/s
        self._set("Present_Velocity", round(self._sign() * self._velocity / (0.229 * 4096 / 60)))
        self._set("Moving", int(abs(self.goal_shaft - self.shaft) > 10))
        self._set("Hardware_Error_Status", self.hw_error)
        self._set("Present_Current", 0 if not self.torque else int(min(1193, abs(self._velocity) * 0.05)))

    def move_by_hand(self, reported: int) -> None:
        """The operator moves a torque-off motor (a leader arm) to ``reported`` ticks."""
        self._integrate()
        self.shaft = self._to_shaft(reported)
        if not self.torque:
            self.goal_shaft = self.shaft

    def set_hardware_error(self, bits: int) -> None:
        """Raise hardware error bits: like the real motor, torque turns off until a reboot."""
        self._integrate()
        self.hw_error |= bits
        self.table[64] = 0

    def reboot(self) -> None:
        """Clear RAM state (torque off, errors cleared, goal = present)."""
        self._integrate()
        self.hw_error = 0
        self.table[64] = 0
        self.goal_shaft = self.shaft

    # -- instructions --------------------------------------------------------------------------------------
    def handle_read(self, address: int, length: int) -> tuple[int, bytes]:
        if address + length > len(self.table) or length == 0:
            return p.ERR_DATA_LENGTH | self.alert, b""
        self._integrate()
        self._refresh_present()
        return self.alert, bytes(self.table[address : address + length])

    def handle_write(self, address: int, data: bytes) -> int:
        """Apply a write field by field; the whole write is refused when any field refuses it."""
        self._integrate()
        end = address + len(data)
        touched = [f for f in _BY_ADDRESS if f.address < end and address < f.address + f.size]
        for f in touched:
            if not f.writable or f.address < address or f.address + f.size > end:
                return p.ERR_ACCESS | self.alert
            if f.eeprom and self.torque:
                return p.ERR_ACCESS | self.alert
            value = ct.from_bytes(data[f.address - address : f.address - address + f.size], f.signed)
            err = self._check(f.name, value)
            if err:
                return err | self.alert
        for f in touched:
            value = ct.from_bytes(data[f.address - address : f.address - address + f.size], f.signed)
            self._apply(f.name, value)
        return self.alert

    def _check(self, name: str, value: int) -> int:
        if name == "Operating_Mode" and value not in self.model.modes:
            return p.ERR_DATA_RANGE
        if name == "Torque_Enable" and value not in (0, 1):
            return p.ERR_DATA_RANGE
        if name == "Torque_Enable" and value == 1 and self.hw_error:
            return p.ERR_RESULT_FAIL  # a motor in hardware error stays off until rebooted
        if name == "Goal_Position" and self.table[11] == ct.MODE_POSITION:
            lo, hi = ct.from_bytes(self.table[52:56], False), ct.from_bytes(self.table[48:52], False)
            if not lo <= value <= hi:
                return p.ERR_DATA_LIMIT
        if name in ("Current_Limit", "Goal_Current") and not self.model.has_current:
            return p.ERR_ACCESS
        return 0

    def _apply(self, name: str, value: int) -> None:
        f = ct.FIELDS[name]
        if name == "Goal_Position":
            self.goal_shaft = self._to_shaft(value)
        if name == "Torque_Enable" and value == 1 and not self.torque:
            self.goal_shaft = self.shaft  # enabling torque holds the current position
        self.table[f.address : f.address + f.size] = ct.to_bytes(value, f.size)

"""X-series control tables (Protocol 2.0) for the fields the driver uses, and the motor models as data.

Addresses and sizes are those of the ROBOTIS e-manual for XM430-W350, XM540-W270 and XL430-W250 (firmware
v38+); the three share one layout for these fields. EEPROM fields (address < 64) are writable only with torque
off. Positions are 4096 ticks per turn, 2048 = the middle of the single-turn range.
"""

from __future__ import annotations

import math

import attrs


@attrs.frozen
class Field:
    """One control-table item: address, size in bytes, writable, signed."""

    name: str
    address: int
    size: int
    writable: bool = True
    signed: bool = False

    @property
    def eeprom(self) -> bool:
        return self.address < 64


_FIELDS = (
    Field("Model_Number", 0, 2, writable=False),
    Field("Firmware_Version", 6, 1, writable=False),
    Field("ID", 7, 1),
    Field("Baud_Rate", 8, 1),
    Field("Return_Delay_Time", 9, 1),
    Field("Drive_Mode", 10, 1),
    Field("Operating_Mode", 11, 1),
    Field("Secondary_ID", 12, 1),
    Field("Homing_Offset", 20, 4, signed=True),
    Field("Current_Limit", 38, 2),
    Field("Max_Position_Limit", 48, 4),
    Field("Min_Position_Limit", 52, 4),
    Field("Torque_Enable", 64, 1),
    Field("LED", 65, 1),
    Field("Status_Return_Level", 68, 1),
    Field("Hardware_Error_Status", 70, 1, writable=False),
    Field("Goal_Current", 102, 2, signed=True),
    Field("Profile_Velocity", 112, 4),
    Field("Goal_Position", 116, 4, signed=True),
    Field("Moving", 122, 1, writable=False),
    Field("Present_Current", 126, 2, writable=False, signed=True),
    Field("Present_Velocity", 128, 4, writable=False, signed=True),
    Field("Present_Position", 132, 4, writable=False, signed=True),
    Field("Present_Input_Voltage", 144, 2, writable=False),
    Field("Present_Temperature", 146, 1, writable=False),
)
FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}

# Operating_Mode values (address 11).
MODE_CURRENT = 0
MODE_VELOCITY = 1
MODE_POSITION = 3
MODE_EXTENDED_POSITION = 4
MODE_CURRENT_BASED_POSITION = 5
MODE_PWM = 16
MODE_NAMES = {
    0: "current",
    1: "velocity",
    3: "position",
    4: "extended position",
    5: "current-based position",
    16: "PWM",
}

# Hardware_Error_Status bits (address 70).
HW_ERROR_BITS = {
    0: "input voltage error",
    2: "overheating",
    3: "motor encoder error",
    4: "electrical shock",
    5: "overload",
}
HW_OVERLOAD = 1 << 5

TICKS_PER_TURN = 4096
CENTER_TICK = 2048
RAD_PER_TICK = 2 * math.pi / TICKS_PER_TURN

#: Baud_Rate register value -> bits per second.
BAUD_RATES = {0: 9_600, 1: 57_600, 2: 115_200, 3: 1_000_000, 4: 2_000_000, 5: 3_000_000, 6: 4_000_000}


@attrs.frozen
class MotorModel:
    """A Dynamixel model: its number (read by ping) and the operating modes it supports."""

    name: str
    number: int
    modes: tuple[int, ...]
    has_current: bool


MODELS: dict[str, MotorModel] = {
    m.name: m
    for m in (
        MotorModel("XM430-W350", 1020, (0, 1, 3, 4, 5, 16), has_current=True),
        MotorModel("XM540-W270", 1120, (0, 1, 3, 4, 5, 16), has_current=True),
        MotorModel("XL430-W250", 1060, (1, 3, 4, 16), has_current=False),
    )
}
MODELS_BY_NUMBER: dict[int, MotorModel] = {m.number: m for m in MODELS.values()}


def describe_hw_error(bits: int) -> str:
    """Human-readable names of the set Hardware_Error_Status bits, e.g. 'overload'."""
    names = [name for bit, name in HW_ERROR_BITS.items() if bits & (1 << bit)]
    return ", ".join(names) if names else f"unknown hardware error bits 0x{bits:02x}"


def to_bytes(value: int, size: int) -> bytes:
    """Little-endian two's-complement encoding of a register value."""
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def from_bytes(data: bytes | bytearray | list[int], signed: bool) -> int:
    return int.from_bytes(bytes(data), "little", signed=signed)

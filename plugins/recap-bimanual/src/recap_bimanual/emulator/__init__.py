"""A stateful Dynamixel Protocol 2.0 emulator on a pseudo-terminal, for testing the driver without hardware."""

from recap_bimanual.emulator.arms import EMULATOR_BUS, emulated_arm
from recap_bimanual.emulator.motor import EmulatedMotor
from recap_bimanual.emulator.server import BusCounters, DynamixelEmulator, FaultKind

__all__ = ["EMULATOR_BUS", "BusCounters", "DynamixelEmulator", "EmulatedMotor", "FaultKind", "emulated_arm"]

"""Emulated arms: one bus per arm, with the motor ids and models of an :class:`ArmSpec`."""

from __future__ import annotations

from recap_bimanual.emulator.motor import EmulatedMotor
from recap_bimanual.emulator.server import DynamixelEmulator
from recap_bimanual.hardware import control_table as ct
from recap_bimanual.hardware.arms import ArmSpec


def emulated_arm(spec: ArmSpec, *, tau_s: float = 0.03, position: int = ct.CENTER_TICK) -> DynamixelEmulator:
    """A (not yet started) emulator holding every motor of ``spec`` at ``position`` ticks (the zero pose)."""
    return DynamixelEmulator(
        EmulatedMotor(motor_id, model, position=position, tau_s=tau_s)
        for motor_id, model in spec.motor_models.items()
    )

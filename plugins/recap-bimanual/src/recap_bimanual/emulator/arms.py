"""Emulated arms: one bus per arm, with the motor ids and models of an :class:`ArmSpec`."""

from __future__ import annotations

from typing import Any

from recap_bimanual.emulator.motor import EmulatedMotor
from recap_bimanual.emulator.server import DynamixelEmulator
from recap_bimanual.hardware import control_table as ct
from recap_bimanual.hardware.arms import ArmSpec

# Bus settings (MotorBus / AlohaHardwareConfig / LeaderArmsConfig keywords) for a driver talking to an emulator
# served by a thread: when the host is loaded the scheduler can leave that thread unrun for hundreds of
# milliseconds, so a reply may wait 250 ms and a transaction fails only after 5 tries without an answer. A real
# motor answers within the ~4 ms the 1 ms latency timer gives; keep the production defaults for hardware.
EMULATOR_BUS: dict[str, Any] = {"reply_timeout_ms": 250.0, "retries": 4}


def emulated_arm(spec: ArmSpec, *, tau_s: float = 0.03, position: int = ct.CENTER_TICK) -> DynamixelEmulator:
    """A (not yet started) emulator holding every motor of ``spec`` at ``position`` ticks (the zero pose)."""
    return DynamixelEmulator(
        EmulatedMotor(motor_id, model, position=position, tau_s=tau_s)
        for motor_id, model in spec.motor_models.items()
    )

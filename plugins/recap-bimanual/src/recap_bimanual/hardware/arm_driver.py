"""One arm on its own bus: connect (ping + model check), configure, read joints, write goals, stop safely."""

from __future__ import annotations

import termios

import numpy as np

from recap.errors import RecapError
from recap_bimanual.hardware import control_table as ct
from recap_bimanual.hardware.arms import ArmSpec
from recap_bimanual.hardware.bus import CommFault, MotorBus
from recap_bimanual.hardware.calibration import ArmCalibration


class HardwareFault(RecapError, RuntimeError):
    """A motor reported hardware error bits (overload, overheating, ...); it has turned its torque off."""

    def __init__(self, arm: str, motor_id: int, bits: int) -> None:
        self.arm, self.motor_id, self.bits = arm, motor_id, bits
        super().__init__(
            f"{arm}: motor id {motor_id}: hardware error: {ct.describe_hw_error(bits)} "
            f"(Hardware_Error_Status=0x{bits:02x}); the motor has turned its torque off. Remove the "
            "cause (a blocked joint, a hot motor), then reboot the motor (power-cycle or bus.reboot)"
        )


class ArmDriver:
    """An arm (follower or leader) as 7 ALOHA values over a :class:`MotorBus`.

    ``shadow_tolerance_ticks``: a shadow motor whose position differs from its primary's by more than this
    means a slipped horn or a failed motor and is reported as a fault.
    """

    def __init__(
        self,
        name: str,
        spec: ArmSpec,
        calibration: ArmCalibration,
        bus: MotorBus,
        *,
        leader: bool = False,
        shadow_tolerance_ticks: int = 200,
    ) -> None:
        self.name, self.spec, self.cal, self.bus, self.leader = name, spec, calibration, bus, leader
        self.shadow_tolerance_ticks = shadow_tolerance_ticks
        self._read_ids = spec.primary_ids + tuple(s for s, _ in spec.shadow_pairs)
        self.last_ticks: np.ndarray | None = None
        self.torque_on = False

    # -- setup ---------------------------------------------------------------------------------------------
    def connect(self) -> None:
        self.bus.open()
        for motor_id, model in self.spec.motor_models.items():
            number = self.bus.ping(motor_id)
            if number != ct.MODELS[model].number:
                found = ct.MODELS_BY_NUMBER.get(number)
                raise RecapError(
                    f"{self.name}: motor id {motor_id} should be a {model} (model number "
                    f"{ct.MODELS[model].number}) but answered {found.name if found else number}; check "
                    f"the arm model ({self.spec.model}) and the motor ids"
                )
        self.configure()

    def _ensure(self, motor_id: int, field: str, value: int) -> None:
        """Write a register only when it differs (EEPROM has a limited number of writes)."""
        if self.bus.read(motor_id, field) != value:
            self.bus.write(motor_id, field, value)

    def configure(self) -> None:
        """Torque off, then the EEPROM settings: reply delay, modes, shadows, homing offsets, position limits."""
        ids = tuple(self.spec.motor_models)
        self.bus.torque(ids, False)
        self.torque_on = False
        lo, hi = self.cal.tick_limits()
        shadows = dict(self.spec.shadow_pairs)
        for k, joint in enumerate(self.spec.joints):
            for motor_id in (joint.motor_id, *joint.shadow_ids):
                self._ensure(motor_id, "Return_Delay_Time", 0)
                mode = joint.mode
                self._ensure(motor_id, "Operating_Mode", mode)
                self._ensure(motor_id, "Secondary_ID", shadows.get(motor_id, 255))
                self._ensure(motor_id, "Drive_Mode", 1 if motor_id in shadows else 0)
                self._ensure(motor_id, "Homing_Offset", self.cal.homing_offsets.get(motor_id, 0))
                if mode == ct.MODE_POSITION:
                    self._ensure(motor_id, "Min_Position_Limit", int(lo[k]))
                    self._ensure(motor_id, "Max_Position_Limit", int(hi[k]))
        grip = self.spec.joints[6]
        if grip.mode == ct.MODE_CURRENT_BASED_POSITION and self.spec.gripper_current_ma and not self.leader:
            self.bus.write(grip.motor_id, "Goal_Current", self.spec.gripper_current_ma)

    # -- cyclic I/O ----------------------------------------------------------------------------------------
    def read_ticks(self) -> np.ndarray:
        """Present positions of the 7 primary motors (one SYNC READ, shadows included for the check)."""
        values = self.bus.sync_read("Present_Position", self._read_ids)
        self.check_alerts()
        for shadow, primary in self.spec.shadow_pairs:
            if abs(values[shadow] - values[primary]) > self.shadow_tolerance_ticks:
                raise CommFault(
                    self.name,
                    shadow,
                    f"shadow motor disagrees with motor id {primary} by "
                    f"{abs(values[shadow] - values[primary])} ticks (slipped horn or failed motor)",
                )
        self.last_ticks = np.array([values[i] for i in self.spec.primary_ids], dtype=np.int64)
        return self.last_ticks

    def read(self) -> np.ndarray:
        """7 values: 6 joints (rad) + gripper (0..1)."""
        return self.cal.to_joints(self.read_ticks())

    def write(self, q: np.ndarray) -> None:
        """Goal positions for the 7 joints (clamped to the calibration) in one SYNC WRITE."""
        ticks = self.cal.to_ticks(self.cal.clamp(q))
        self.bus.sync_write(
            "Goal_Position", dict(zip(self.spec.primary_ids, (int(t) for t in ticks), strict=True))
        )

    def check_alerts(self) -> None:
        for motor_id in sorted(self.bus.alerts):
            bits = self.bus.read(motor_id, "Hardware_Error_Status")
            if bits:
                raise HardwareFault(self.name, motor_id, bits)

    def set_torque(self, on: bool) -> None:
        self.bus.torque(self.spec.primary_ids + tuple(s for s, _ in self.spec.shadow_pairs), on)
        self.torque_on = on

    def hold(self) -> np.ndarray:
        """Goal := present position (stops any motion without dropping the arm); returns the held ticks."""
        ticks = self.read_ticks()
        self.bus.sync_write(
            "Goal_Position", dict(zip(self.spec.primary_ids, (int(t) for t in ticks), strict=True))
        )
        return ticks

    def release(self) -> None:
        """Safe stop: hold where it is (fresh goal), then torque off. Never raises; falls back to a broadcast."""
        try:
            if self.torque_on:
                self.hold()
            self.set_torque(False)
        except (RecapError, OSError, termios.error):
            self.bus.broadcast_torque_off()
        self.torque_on = False

    def close(self) -> None:
        self.bus.close()

"""The motors of a hardware config on a Feetech STS bus, in SI joint units: the Feetech counterpart of
:class:`real.dynamixel.motor_bus.MotorBus`, with the same methods, so :class:`real.robot.Robot` drives either.

Joint values: ``joint = direction * (motor_angle - offset) * scale`` with the motor angle from Present_Position
(2048 counts = 0 rad). The firmware reports ``Present_Position = actual - Homing_Offset`` (mod 4096): each motor's
``homing_offset`` (config, position counts; 0 when unset) is written at configure, so the offset register moves a
joint's range clear of the encoder's wrap-around the way the firmware intends, and ``offset`` (rad) is what is left
on the host. Efforts: Present_Load (a signed fraction of the maximum torque) times the model's stall torque, in
N*m (N for a joint with ``scale`` in m/rad).

What differs from Dynamixel X servos: STS servos have no bus watchdog (a host that dies leaves them holding their
last goal: the host-side watchdog and the torque-off on every exit path are all there is), no current-based
position mode, and no hardware error register: a fault shows as error bits in every reply
(:class:`real.feetech.bus.ServoAlert`). EEPROM settings written at configure (return delay, mode, limits, homing
offset) are written with Lock at 1, so they take effect without wearing the flash and the servo's saved
calibration comes back at its next power-up.
"""

from __future__ import annotations

import time

import numpy as np

from real.feetech.bus import FeetechBus, ServoAlert
from real.feetech.control_table import MODELS, OperatingMode
from real.feetech.protocol import error_text
from real.motor_driver import MotorDriver, limit_ticks
from real.motor_report import BusStatus
from robot.description import ControlMode, HardwareConfig, Motor
from robot.joint_state import JointState

OPERATING_MODE = {ControlMode.position: OperatingMode.POSITION, ControlMode.velocity: OperatingMode.VELOCITY}
#: One sync read per cycle, Torque_Enable (40) to Present_Current (69, 2 bytes): the goals, the present position,
#: velocity and load, voltage and temperature.
STATE_START, STATE_LEN = 40, 31


def position_limit_ticks(motor: Motor) -> tuple[int, int]:
    """Present_Position counts of a position joint's limits, in order (after the homing offset the servo applies);
    WrapAroundError when they leave the single turn."""
    remedy = (
        f"With homing_offset {motor.homing_offset or 0}: calibrate the arm with LeRobot and import it (`s2r calibrate "
        "lerobot`: its homing_offset puts the range's middle at 2047)."
    )
    return limit_ticks(motor, MODELS[motor.model].register("goal_position"), remedy)


class FeetechMotorBus(MotorDriver):
    """Configure, read and command the motors of ``config`` through ``bus`` (an open :class:`FeetechBus`)."""

    alert = ServoAlert

    def __init__(self, config: HardwareConfig, bus: FeetechBus, fast_read: bool = True) -> None:
        """``fast_read`` is accepted for the Dynamixel bus's signature; STS servos have one sync read."""
        if config.bus.protocol != "feetech":
            raise ValueError(f"{config.name}: bus protocol {config.bus.protocol}, not feetech")
        for m in config.motors:
            if m.mode not in OPERATING_MODE:
                raise ValueError(f"{m.joint}: STS servos have no mode {m.mode.value!r}; use position or velocity")
        super().__init__(config, bus, MODELS)  # effort_raw: Present_Load, fractions of the maximum torque
        self._velocity = np.array([m.mode == ControlMode.velocity for m in self.motors])
        self._regs = MODELS[self.motors[0].model].registers
        self._state_reg = type(self._regs["present_position"])("present_state", STATE_START, STATE_LEN, "R")

    # -- configuration --------------------------------------------------------------------------------------
    def configure(self, bus_watchdog_s: float | None = None) -> None:
        """Check every motor answers as an STS3215, then torque off and, per motor: return delay 0, replies to
        every instruction, the operating mode, the homing offset, the position limits and the P coefficient (if
        configured). ``bus_watchdog_s`` is ignored: STS servos have no bus watchdog."""
        self.check_motors()
        for m in self.motors:
            w = lambda name, raw, m=m: self.bus.write(m.id, self._reg(m.id, name), raw)  # noqa: E731
            w("torque_enable", 0)
            w("lock", 1)  # EEPROM writes below take effect without being saved (LeRobot leaves Lock at 0)
            w("return_delay_time", 0)
            w("response_status_level", 1)
            w("operating_mode", int(OPERATING_MODE[m.mode]))
            w("homing_offset", m.homing_offset or 0)
            if m.mode != ControlMode.velocity:
                lo, hi = position_limit_ticks(m)
                w("min_position_limit", lo)
                w("max_position_limit", hi)
                if m.position_p_gain is not None:
                    w("p_coefficient", m.position_p_gain)
        self.bus.return_delay_s = 0.0

    def _ping(self, ident: int) -> int | str:
        try:
            return self.bus.ping(ident)
        except ServoAlert as e:  # its condition comes with every reply: nothing is written to it
            return f"in alert ({error_text(e.error)}): let it cool or power-cycle it"

    def read_motor_angles(self) -> np.ndarray:
        """Motor angles (rad) from Present_Position (2048 counts = 0; after the servo's homing offset, before the
        config's offset, direction and scale), config order."""
        reg = self._reg(self.ids[0], "present_position")
        raw = self.bus.sync_read(self.ids, reg, alert_ok=True)
        return np.array([reg.to_si(raw[i]) for i in self.ids])

    def clear_watchdog(self, ids: list[int], bus_watchdog_s: float) -> None:
        """Nothing to clear: STS servos have no bus watchdog (:attr:`status` never reports a trip)."""

    def torque_enabled(self) -> dict[int, int]:
        """Torque_Enable of every motor, read back (motor id -> register value, 1 on), a servo in alert included."""
        return self.bus.sync_read(self.ids, self._regs["torque_enable"], alert_ok=True)

    def health(self) -> tuple[dict[int, float], dict[int, float]]:
        """Every motor's Present_Temperature (degC) and Present_Voltage (V), by motor id."""
        temp_reg, volt_reg = self._regs["present_temperature"], self._regs["present_voltage"]
        temps = self.bus.sync_read(self.ids, temp_reg, alert_ok=True)
        volts = self.bus.sync_read(self.ids, volt_reg, alert_ok=True)
        return {i: temp_reg.to_si(v) for i, v in temps.items()}, {i: volt_reg.to_si(v) for i, v in volts.items()}

    # -- cycle ----------------------------------------------------------------------------------------------
    def _field(self, data: bytes, name: str) -> int:
        reg = self._regs[name]
        start = reg.address - STATE_START
        return reg.decode(data[start : start + reg.size])

    def read(self) -> JointState:
        """Joint positions, velocities and efforts in SI units and config order, with the host's monotonic time of
        the reply; updates :attr:`status` with goals that differ from the last ones sent. A reply with error bits
        raises :class:`ServoAlert` naming the motor and its condition."""
        raw = self.bus.sync_read(self.ids, self._state_reg)
        n = len(self.ids)
        pos, vel, eff = np.zeros(n), np.zeros(n), np.zeros(n)
        status = BusStatus()
        for k, i in enumerate(self.ids):
            data = raw[i].to_bytes(STATE_LEN, "little")
            pos[k] = self._regs["present_position"].to_si(self._field(data, "present_position"))
            vel[k] = self._regs["present_velocity"].to_si(self._field(data, "present_velocity"))
            eff[k] = self._regs["present_load"].to_si(self._field(data, "present_load"))
            goal = self._field(data, "goal_velocity" if self._velocity[k] else "goal_position")
            if i in self.last_sent and goal != self.last_sent[i]:
                status.goal_refused[i] = (goal, self.last_sent[i])
        self.status = status  # STS servos have no watchdog: only refused goals are reported
        return self._joint_state(pos, vel, eff, time.monotonic_ns())

    def write(self, targets: np.ndarray) -> dict[int, int]:
        """Send joint targets (config order: positions for position joints, velocities for velocity joints), one
        sync write per mode; returns the raw values sent."""
        targets = np.asarray(targets, dtype=float)
        if targets.shape != (len(self.ids),) or not np.all(np.isfinite(targets)):
            raise ValueError(f"expected {len(self.ids)} finite joint targets, got {targets}")
        positions, velocities = {}, {}
        for k, m in enumerate(self.motors):
            motor_value = targets[k] / (m.direction * m.scale)
            if self._velocity[k]:
                velocities[m.id] = self._regs["goal_velocity"].from_si(motor_value)
            else:
                positions[m.id] = self._regs["goal_position"].from_si(motor_value + m.offset)
        if positions:
            self.bus.sync_write(self._regs["goal_position"], positions)
        if velocities:
            self.bus.sync_write(self._regs["goal_velocity"], velocities)
        self.last_sent = {**positions, **velocities}
        return dict(self.last_sent)

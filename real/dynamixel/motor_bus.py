"""The motors of a hardware config on a Dynamixel bus, in SI joint units.

The one place where raw registers become joint values: ``joint = direction * (motor_angle - offset) * scale`` with
the motor angle from the position count (2048 = 0 rad); velocities likewise. Efforts are the motor's output torque
in N*m (N for a joint with ``scale`` in m/rad), with the joint's direction: from the present current (XM430,
XL330) times the model's torque per amp, or from the present load, a fraction of the stall torque (XL430, which has
no current sensing); the raw register values (A, or load fraction) stay in :attr:`MotorBus.effort_raw`. Joint
order is the config's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from real.dynamixel.bus import DynamixelBus, HardwareAlert
from real.dynamixel.control_table import MODELS, OperatingMode, Register, ServoModel
from real.motor_driver import POSITION_TICKS, MotorDriver, WrapAroundError, limit_ticks  # noqa: F401
from real.motor_report import BusStatus, TorqueReport  # noqa: F401  (TorqueReport: re-exported)
from robot.description import ControlMode, HardwareConfig, Motor
from robot.joint_state import JointState

OPERATING_MODE = {
    ControlMode.position: OperatingMode.POSITION,
    ControlMode.current_position: OperatingMode.CURRENT_BASED_POSITION,
    ControlMode.velocity: OperatingMode.VELOCITY,
}


def position_limit_ticks(motor: Motor) -> tuple[int, int]:
    """Raw position ticks of a position joint's lower and upper limits, in order; raises WrapAroundError when they
    leave the registers' single turn (the joint's range crosses the encoder's wrap-around)."""
    remedy = "Re-mount the horn by half a turn (or shrink the limits), then run `s2r calibrate motors` again."
    return limit_ticks(motor, MODELS[motor.model].register("goal_position"), remedy)


#: One sync read per cycle covers Bus Watchdog (98, 1 byte: 0xFF once tripped), Goal Velocity (104, 4), Goal
#: Position (116, 4), Present Current/Load (126, 2), Present Velocity (128, 4) and Present Position (132, 4): the
#: goals read back show whether the servos took the last sync write (a tripped bus watchdog refuses goals).
STATE_START, STATE_LEN = 98, 38
#: Bus Watchdog's value after a trip (-1 in the e-manual): goals are refused until the host writes 0.
WATCHDOG_TRIPPED = 0xFF


def _in_state(reg: Register) -> slice:
    """Where register ``reg`` lies in the state block read each cycle."""
    start = reg.address - STATE_START
    if start < 0 or start + reg.size > STATE_LEN:
        raise ValueError(f"{reg.name} (address {reg.address}) is outside the state block {STATE_START}+{STATE_LEN}")
    return slice(start, start + reg.size)


@dataclass(frozen=True)
class _StateLayout:
    """One motor's registers in the state block: (register, where it lies) for the effort (Present Current, or
    Present Load on models without current sensing), velocity, position, the goal its mode takes, and the bus
    watchdog."""

    effort: tuple[Register, slice]
    velocity: tuple[Register, slice]
    position: tuple[Register, slice]
    goal: tuple[Register, slice]
    watchdog: slice

    @classmethod
    def of(cls, model: ServoModel, mode: ControlMode) -> _StateLayout:
        def at(name: str) -> tuple[Register, slice]:
            reg = model.register(name)
            return reg, _in_state(reg)

        return cls(
            effort=at("present_current" if "present_current" in model.registers else "present_load"),
            velocity=at("present_velocity"),
            position=at("present_position"),
            goal=at("goal_velocity" if mode == ControlMode.velocity else "goal_position"),
            watchdog=_in_state(model.register("bus_watchdog")),
        )


def _decode(field: tuple[Register, slice], data: bytes) -> int:
    reg, where = field
    return reg.decode(data[where])


class MotorBus(MotorDriver):
    """Configure, read and command the motors of ``config`` through ``bus`` (an open :class:`DynamixelBus`)."""

    alert = HardwareAlert

    def __init__(self, config: HardwareConfig, bus: DynamixelBus, fast_read: bool = True) -> None:
        """``fast_read``: read state with Fast Sync Read (X-series firmware 45+); False uses Sync Read."""
        super().__init__(config, bus, MODELS)
        self.fast_read = fast_read
        self._state_reg = Register("present_state", STATE_START, STATE_LEN, "R")
        self._layout = [_StateLayout.of(self.models[m.id], m.mode) for m in self.motors]

    # -- configuration --------------------------------------------------------------------------------------
    def configure(self, bus_watchdog_s: float | None = None) -> None:
        """Check every motor answers with the configured model, then set torque off, clear a tripped bus watchdog
        (a previous run that stalled or crashed leaves it refusing goals), set return delay 0, status return level
        2, each motor's operating mode, position limits and P gain (if configured), and the bus watchdog (if
        given)."""
        self.check_motors()
        for m in self.motors:
            self.bus.write(m.id, self._reg(m.id, "torque_enable"), 0)
            self.bus.write(m.id, self._reg(m.id, "bus_watchdog"), 0)  # 0 clears a trip (e-manual, Bus Watchdog)
            self.bus.write(m.id, self._reg(m.id, "return_delay_time"), 0)
            self.bus.write(m.id, self._reg(m.id, "status_return_level"), 2)
            self.bus.write(m.id, self._reg(m.id, "operating_mode"), int(OPERATING_MODE[m.mode]))
            # Offsets live in the config and are applied here on the host, in one place: clear the servo's own.
            self.bus.write(m.id, self._reg(m.id, "homing_offset"), 0)
            if m.mode != ControlMode.velocity:
                lo, hi = position_limit_ticks(m)
                self.bus.write(m.id, self._reg(m.id, "min_position_limit"), lo)
                self.bus.write(m.id, self._reg(m.id, "max_position_limit"), hi)
                if m.position_p_gain is not None:
                    self.bus.write(m.id, self._reg(m.id, "position_p_gain"), m.position_p_gain)
            if bus_watchdog_s is not None:
                self.bus.write(
                    m.id, self._reg(m.id, "bus_watchdog"), self._reg(m.id, "bus_watchdog").from_si(bus_watchdog_s)
                )
        self.bus.return_delay_s = 0.0

    def _ping(self, ident: int) -> int | str:
        try:
            return self.bus.ping(ident)
        except HardwareAlert as e:
            bits = f" ({e})" if e.hardware_error else ""
            return f"in hardware alert{bits}: power-cycle or reboot it"

    def read_motor_angles(self) -> np.ndarray:
        """Raw motor angles (rad, Present Position with 2048 ticks = 0; no offset, direction or scale), config
        order: what homing measures the offsets from."""
        reg = self._reg(self.ids[0], "present_position")  # the same register on every X-series model
        raw = self.bus.sync_read(self.ids, reg)
        return np.array([self._reg(i, "present_position").to_si(raw[i]) for i in self.ids])

    def clear_watchdog(self, ids: list[int], bus_watchdog_s: float) -> None:
        """Clear a tripped bus watchdog on ``ids`` (write 0) and arm it again with ``bus_watchdog_s``."""
        for ident in ids:
            reg = self._reg(ident, "bus_watchdog")
            self.bus.write(ident, reg, 0)
            self.bus.write(ident, reg, reg.from_si(bus_watchdog_s))

    def health(self) -> tuple[dict[int, float], dict[int, float]]:
        """Every motor's Present Temperature (degC) and Present Input Voltage (V), by motor id."""
        temp_reg = self._reg(self.ids[0], "present_temperature")
        volt_reg = self._reg(self.ids[0], "present_input_voltage")
        temps = self.bus.sync_read(self.ids, temp_reg)
        volts = self.bus.sync_read(self.ids, volt_reg)
        return {i: temp_reg.to_si(v) for i, v in temps.items()}, {i: volt_reg.to_si(v) for i, v in volts.items()}

    # -- units ----------------------------------------------------------------------------------------------
    def _joint_to_ticks(self, m, joint_value: float) -> int:
        reg = self._reg(m.id, "goal_position")
        return reg.from_si(joint_value / (m.direction * m.scale) + m.offset)

    def read(self) -> JointState:
        """Joint positions (rad or m), velocities (rad/s or m/s) and efforts (N*m or N) in config order, with the
        host's monotonic time of the reply. The same read updates :attr:`status` (tripped bus
        watchdogs, goals that differ from the last ones sent)."""
        read = self.bus.fast_sync_read if self.fast_read else self.bus.sync_read
        raw = read(self.ids, self._state_reg)
        pos, vel, eff = np.zeros(len(self.ids)), np.zeros(len(self.ids)), np.zeros(len(self.ids))
        status = BusStatus()
        for k, (i, layout) in enumerate(zip(self.ids, self._layout, strict=True)):
            data = raw[i].to_bytes(STATE_LEN, "little")
            eff[k] = layout.effort[0].to_si(_decode(layout.effort, data))  # A, or load fraction
            vel[k] = layout.velocity[0].to_si(_decode(layout.velocity, data))
            pos[k] = layout.position[0].to_si(_decode(layout.position, data))
            if data[layout.watchdog][0] == WATCHDOG_TRIPPED:
                status.watchdog_tripped.append(i)
            goal = _decode(layout.goal, data)
            if i in self.last_sent and goal != self.last_sent[i]:
                status.goal_refused[i] = (goal, self.last_sent[i])
        self.status = status
        return self._joint_state(pos, vel, eff, time.monotonic_ns())

    def write(self, targets: np.ndarray) -> dict[int, int]:
        """Send joint targets (config order: positions for position-mode joints, velocities for velocity-mode
        joints) with one sync write per mode; returns the raw values sent."""
        targets = np.asarray(targets, dtype=float)
        if targets.shape != (len(self.ids),) or not np.all(np.isfinite(targets)):
            raise ValueError(f"expected {len(self.ids)} finite joint targets, got {targets}")
        positions, velocities = {}, {}
        for k, m in enumerate(self.motors):
            if m.mode != ControlMode.velocity:
                positions[m.id] = self._joint_to_ticks(m, targets[k])
            else:
                reg = self._reg(m.id, "goal_velocity")
                velocities[m.id] = reg.from_si(targets[k] / (m.direction * m.scale))
        if positions:
            self.bus.sync_write(self._reg(next(iter(positions)), "goal_position"), positions)
        if velocities:
            self.bus.sync_write(self._reg(next(iter(velocities)), "goal_velocity"), velocities)
        self.last_sent = {**positions, **velocities}
        return dict(self.last_sent)

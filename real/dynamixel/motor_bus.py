"""The motors of a hardware config on a Dynamixel bus, in SI joint units.

The one place where raw registers become joint values: ``joint = direction * (motor_angle - offset) * scale`` with
the motor angle from the position count (2048 = 0 rad); velocities likewise. Efforts are the present current in A
(XM430, XL330) or the present load as a fraction of full load (XL430, which has no current sensing), with the
joint's direction. Joint order is the config's.
"""

from __future__ import annotations

import time

import numpy as np

from real.dynamixel.bus import DynamixelBus, DynamixelError
from real.dynamixel.control_table import MODELS, OperatingMode, Register
from real.hardware_config import ControlMode, HardwareConfig, Motor
from sim.joint_state import JointState

OPERATING_MODE = {
    ControlMode.position: OperatingMode.POSITION,
    ControlMode.current_position: OperatingMode.CURRENT_BASED_POSITION,
    ControlMode.velocity: OperatingMode.VELOCITY,
}

#: Single-turn range of the position-limit registers (raw ticks; 2048 = motor angle 0).
POSITION_TICKS = (0, 4095)


class WrapAroundError(ValueError):
    """A joint whose range cannot be commanded in position mode; the message names it and what to do."""


def position_limit_ticks(motor: Motor) -> tuple[int, int]:
    """Raw position ticks of a position joint's lower and upper limits, in order; raises WrapAroundError when they
    leave the registers' single turn (the joint's range crosses the encoder's wrap-around)."""
    reg = MODELS[motor.model].register("goal_position")
    ticks = sorted(
        reg.from_si(v / (motor.direction * motor.scale) + motor.offset)
        for v in (motor.limits.lower, motor.limits.upper)
    )
    lo, hi = POSITION_TICKS
    if ticks[0] < lo or ticks[1] > hi:
        raise WrapAroundError(
            f"joint {motor.joint} (id {motor.id}): limits {motor.limits.lower}..{motor.limits.upper} with offset "
            f"{motor.offset:.4f} rad map to ticks {ticks[0]}..{ticks[1]}, outside the single turn {lo}..{hi}: the "
            "range crosses the encoder's wrap-around. Re-mount the horn by half a turn (or shrink the limits), then "
            "run `s2r calibrate motors` again."
        )
    return ticks[0], ticks[1]


#: Present current/load (126, 2 bytes), velocity (128, 4) and position (132, 4) are contiguous: one sync read.
STATE_START, STATE_LEN = 126, 10


class MotorBus:
    """Configure, read and command the motors of ``config`` through ``bus`` (an open :class:`DynamixelBus`)."""

    def __init__(self, config: HardwareConfig, bus: DynamixelBus, fast_read: bool = True) -> None:
        """``fast_read``: read state with Fast Sync Read (X-series firmware 45+); False uses Sync Read."""
        self.config, self.bus = config, bus
        self.fast_read = fast_read
        self.motors = list(config.motors)
        self.ids = [m.id for m in self.motors]
        self.models = {m.id: MODELS[m.model] for m in self.motors}
        self._dir = np.array([m.direction for m in self.motors], dtype=float)
        self._off = np.array([m.offset for m in self.motors], dtype=float)
        self._scale = np.array([m.scale for m in self.motors], dtype=float)
        self._state_reg = Register("present_state", STATE_START, STATE_LEN, "R")

    def _reg(self, ident: int, name: str) -> Register:
        return self.models[ident].register(name)

    # -- configuration --------------------------------------------------------------------------------------
    def configure(self, bus_watchdog_s: float | None = None) -> None:
        """Check every motor answers with the configured model, then set torque off, return delay 0, status
        return level 2, each motor's operating mode, position limits and P gain (if configured), and the bus
        watchdog (if given)."""
        self.check_motors()
        for m in self.motors:
            self.bus.write(m.id, self._reg(m.id, "torque_enable"), 0)
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

    def check_motors(self) -> None:
        """Raise DynamixelError, naming them, unless every motor answers a ping with its configured model."""
        missing, wrong = [], []
        for m in self.motors:
            try:
                number = self.bus.ping(m.id)
            except DynamixelError:
                missing.append(m.id)
                continue
            if number != self.models[m.id].model_number:
                wrong.append(f"id {m.id} ({m.joint}): model number {number}, config says {m.model}")
        if missing or wrong:
            raise DynamixelError(
                f"{self.config.name} on {self.bus.port}: "
                + "; ".join(([f"no answer from ids {missing}"] if missing else []) + wrong)
            )

    def read_motor_angles(self) -> np.ndarray:
        """Raw motor angles (rad, Present Position with 2048 ticks = 0; no offset, direction or scale), config
        order: what homing measures the offsets from."""
        reg = self._reg(self.ids[0], "present_position")  # the same register on every X-series model
        raw = self.bus.sync_read(self.ids, reg)
        return np.array([self._reg(i, "present_position").to_si(raw[i]) for i in self.ids])

    def set_torque(self, on: bool, best_effort: bool = False) -> list[str]:
        """Torque on or off on every motor. ``best_effort``: go on past a motor that fails (a hardware alert: it has
        already cut its own torque; or no answer) and return the failures, so one motor never keeps the others
        powered; otherwise the first failure raises."""
        failures = []
        for m in self.motors:
            try:
                self.bus.write(m.id, self._reg(m.id, "torque_enable"), int(on))
            except (DynamixelError, OSError) as e:
                if not best_effort:
                    raise
                failures.append(f"motor {m.id} ({m.joint}): {e}")
        return failures

    # -- units ----------------------------------------------------------------------------------------------
    def _joint_to_ticks(self, m, joint_value: float) -> int:
        reg = self._reg(m.id, "goal_position")
        return reg.from_si(joint_value / (m.direction * m.scale) + m.offset)

    def read(self) -> JointState:
        """Joint positions (rad or m), velocities (rad/s or m/s) and efforts (A, or load fraction) in config
        order, with the host's monotonic time of the reply."""
        read = self.bus.fast_sync_read if self.fast_read else self.bus.sync_read
        raw = read(self.ids, self._state_reg)
        pos, vel, eff = np.zeros(len(self.ids)), np.zeros(len(self.ids)), np.zeros(len(self.ids))
        for k, i in enumerate(self.ids):
            data = raw[i].to_bytes(STATE_LEN, "little")
            model = self.models[i]
            effort_reg = model.registers.get("present_current") or model.register("present_load")
            eff[k] = effort_reg.to_si(effort_reg.decode(data[0:2]))
            vel[k] = model.register("present_velocity").to_si(model.register("present_velocity").decode(data[2:6]))
            pos[k] = model.register("present_position").to_si(model.register("present_position").decode(data[6:10]))
        stamp = time.monotonic_ns()
        return JointState(
            position=self._dir * (pos - self._off) * self._scale,
            velocity=self._dir * vel * self._scale,
            effort=self._dir * eff,
            stamp_ns=stamp,
        )

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
        return {**positions, **velocities}

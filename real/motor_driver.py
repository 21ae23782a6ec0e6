"""What the motor drivers of both protocols share (:class:`real.dynamixel.motor_bus.MotorBus`,
:class:`real.feetech.motor_bus.FeetechMotorBus`): the joint <-> motor conversion, the model check at start, torque
on and off with read-back, and the goals last sent. Each protocol adds its registers, state read and configuration.

``joint = direction * (motor_angle - offset) * scale`` (rad, or m for a joint with ``scale`` in m/rad); efforts are
N*m (N) from the effort register times the model's N*m per unit."""

from __future__ import annotations

import numpy as np

from real.dynamixel.control_table import Register, ServoModel
from real.motor_report import BusStatus, TorqueReport
from real.serial_bus import BusError, PortError, SerialBus
from robot.description import HardwareConfig, Motor, torque_per_effort_unit
from robot.joint_state import JointState

#: Single-turn range of the position-limit registers of both protocols (raw counts; 2048 = motor angle 0).
POSITION_TICKS = (0, 4095)


class WrapAroundError(ValueError):
    """A joint whose range cannot be commanded in position mode; the message names it and what to do."""


def limit_ticks(motor: Motor, goal: Register, remedy: str) -> tuple[int, int]:
    """Raw position counts (of ``goal``, the goal position register) of a position joint's lower and upper limits,
    in order; WrapAroundError, ending with ``remedy``, when they leave the single turn (the joint's range crosses the
    encoder's wrap-around)."""
    ticks = sorted(
        goal.from_si(v / (motor.direction * motor.scale) + motor.offset)
        for v in (motor.limits.lower, motor.limits.upper)
    )
    lo, hi = POSITION_TICKS
    if ticks[0] < lo or ticks[1] > hi:
        raise WrapAroundError(
            f"joint {motor.joint} (id {motor.id}): limits {motor.limits.lower}..{motor.limits.upper} with offset "
            f"{motor.offset:.4f} rad map to ticks {ticks[0]}..{ticks[1]}, outside the single turn {lo}..{hi}: the "
            f"range crosses the encoder's wrap-around. {remedy}"
        )
    return ticks[0], ticks[1]


class MotorDriver:
    """The motors of ``config`` on an open ``bus``; ``models``: the protocol's servo models by name."""

    #: What a reply raises when it reports the servo's condition (the write it answers was still applied).
    alert: type[BusError] = BusError

    def __init__(self, config: HardwareConfig, bus: SerialBus, models: dict[str, ServoModel]) -> None:
        self.config, self.bus = config, bus
        self.motors = list(config.motors)
        self.ids = [m.id for m in self.motors]
        self.models = {m.id: models[m.model] for m in self.motors}
        self._dir = np.array([m.direction for m in self.motors], dtype=float)
        self._off = np.array([m.offset for m in self.motors], dtype=float)
        self._scale = np.array([m.scale for m in self.motors], dtype=float)
        # N*m per raw effort unit: per amp of present current, or the stall torque per unit of present load
        self._torque_per_raw = np.array([torque_per_effort_unit(m.model) for m in self.motors], dtype=float)
        self.effort_raw = np.zeros(len(self.motors))  # the last read's effort registers: A, or load fraction
        self.last_sent: dict[int, int] = {}  # motor id -> raw goal of the last write
        self.status = BusStatus()

    def _reg(self, ident: int, name: str) -> Register:
        return self.models[ident].register(name)

    def _ping(self, ident: int) -> int | str:
        """The model number servo ``ident`` answers a ping with, or why it cannot be used (a servo in alert);
        BusError when it does not answer."""
        return self.bus.ping(ident)

    def check_motors(self) -> None:
        """Raise BusError, naming them, unless every motor answers a ping with its configured model."""
        missing, wrong = [], []
        for m in self.motors:
            try:
                number = self._ping(m.id)
            except PortError:
                raise
            except BusError:
                missing.append(m.id)
                continue
            if isinstance(number, str):
                wrong.append(f"id {m.id} ({m.joint}): {number}")
            elif number != self.models[m.id].model_number:
                wrong.append(f"id {m.id} ({m.joint}): model number {number}, config says {m.model}")
        if missing or wrong:
            raise BusError(
                f"{self.config.name} on {self.bus.port}: "
                + "; ".join(([f"no answer from ids {missing}"] if missing else []) + wrong)
            )

    def torque_off(self, ids: list[int] | None = None) -> TorqueReport:
        """Torque off on every motor (or ``ids``), each read back: a motor counts as off only when its torque enable
        register reads 0. Goes on past any failure (a servo in alert still answers, with its data); never raises a
        bus error."""
        report = TorqueReport()
        for m in self.motors:
            if ids is not None and m.id not in ids:
                continue
            reg = self._reg(m.id, "torque_enable")
            try:
                try:
                    self.bus.write(m.id, reg, 0)
                except self.alert:
                    pass  # the write was applied; the servo reports its alert with every reply
                value = self.bus.read(m.id, reg, alert_ok=True)
            except BusError as e:
                report.unreachable[m.id] = str(e)
                report.port_failed |= isinstance(e, PortError)
                continue
            if value == 0:
                report.off.append(m.id)
            else:
                report.unreachable[m.id] = f"torque enable reads {value} after writing 0"
        return report

    def set_torque(self, on: bool) -> None:
        """Torque on or off on every motor; the first failure raises. (Turning torque off on the way out of a run is
        :meth:`torque_off`, which goes on past failures and reads the result back.)"""
        for m in self.motors:
            self.bus.write(m.id, self._reg(m.id, "torque_enable"), int(on))

    def torque_enabled(self) -> dict[int, int]:
        """Torque enable of every motor, read back (motor id -> register value, 1 on)."""
        return self.bus.sync_read(self.ids, self._reg(self.ids[0], "torque_enable"))

    def forget_goals(self) -> None:
        """Stop comparing read-back goals with the last ones sent (a servo may change its goal itself: torque on,
        a watchdog trip) until the next :meth:`write`."""
        self.last_sent = {}

    def _joint_state(self, pos: np.ndarray, vel: np.ndarray, eff: np.ndarray, stamp_ns: int) -> JointState:
        """Joint values from motor angles (rad), speeds (rad/s) and effort registers (their SI units)."""
        self.effort_raw = eff
        return JointState(
            position=self._dir * (pos - self._off) * self._scale,
            velocity=self._dir * vel * self._scale,
            effort=self._dir * eff * self._torque_per_raw / self._scale,
            stamp_ns=stamp_ns,
        )

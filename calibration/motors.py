"""Servo homing: offsets, directions and ranges of motion of a robot's position joints, saved into its config.

With torque off, an operator (a person at the console, or a scripted one in tests) holds the robot in two known
poses and then moves every joint through its range while the motors' raw positions are read:

1. the zero pose (every joint at 0: the URDF's zero): ``offset = motor angle`` there;
2. the config's rest pose (``arm.rest``): ``direction = sign(motor change / joint change)``, for joints that move
   at least :data:`MIN_DIRECTION_RAD` of motor angle between the poses (others keep the configured direction);
3. a sweep: the range each joint went through, less :data:`LIMIT_MARGIN_RAD` (of motor angle) at both ends, becomes
   its limits; a joint that moved less than :data:`MIN_SWEEP_RAD` keeps its configured limits.

Checks: every position limit must map inside the position registers' single turn (0..4095 ticks; a range that
crosses the encoder's wrap-around cannot be commanded in position mode), readings that jump by more than half a
turn between samples are a wrap-around and stop the calibration, and a motor that does not answer, or answers
with another model, stops it before anything is written. The config file is updated in place (its motor lines
``direction:``, ``offset:`` and ``limits:``), after a backup to ``CONFIG.bak``; it is re-validated after writing.
Velocity-mode joints (wheels) have no homing and are left as they are.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from calibration.config_edit import write_checked
from real.dynamixel.bus import DynamixelBus
from real.dynamixel.control_table import MODELS
from real.dynamixel.motor_bus import POSITION_TICKS, MotorBus, WrapAroundError, position_limit_ticks
from robot.description import ConfigError, ControlMode, HardwareConfig

MIN_DIRECTION_RAD = 0.3  # motor angle change between zero and rest pose needed to tell a direction
MIN_SWEEP_RAD = 0.2  # motor angle a joint must move in the sweep for its limits to be measured
LIMIT_MARGIN_RAD = 0.05  # kept inside each measured end stop (motor angle)
SWEEP_PERIOD_S = 0.02


class HomingError(WrapAroundError):
    """A motor that cannot be homed as configured; the message names the joint and what to do."""


class Operator(Protocol):
    """Who moves the robot: ``pose`` returns once the robot is held in the named pose; ``sweep`` returns when
    every joint has been moved through its range (readings are taken meanwhile)."""

    def pose(self, name: str, joints: dict[str, float]) -> None: ...

    def sweep(self, joints: list[str]) -> None: ...


class ConsoleOperator:
    """A person at the console: instructions printed, Enter when done."""

    def pose(self, name: str, joints: dict[str, float]) -> None:
        values = ", ".join(f"{j} {v:+.3f}" for j, v in joints.items())
        input(f"Hold the robot in its {name} pose ({values}) and press Enter... ")

    def sweep(self, joints: list[str]) -> None:
        input(f"Move each of {', '.join(joints)} slowly to both ends of its range, then press Enter... ")


@dataclass
class MotorCalibration:
    joint: str
    ident: int
    offset: float  # rad of motor angle
    direction: int
    direction_checked: bool
    lower: float  # joint units
    upper: float
    limits_measured: bool
    sweep_motor_range: tuple[float, float] = (0.0, 0.0)  # rad of motor angle seen in the sweep
    homing_offset: int | None = None  # Feetech: the Homing_Offset register value (counts); None: not set here


@dataclass
class HomingResult:
    robot: str
    motors: list[MotorCalibration]
    warnings: list[str] = field(default_factory=list)


def home_motors(config: HardwareConfig, bus: DynamixelBus, operator: Operator) -> HomingResult:
    """Run the homing procedure of the module docstring on ``config``'s position joints through ``bus`` (open);
    torque is turned off first and left off. Nothing is written to the config here: see :func:`save`."""
    if config.arm is None:
        raise HomingError(f"{config.name}: homing needs an arm with a rest pose (arm.rest); wheels need none")
    if config.bus.protocol != "dynamixel2":
        raise HomingError(
            f"{config.name}: this homing is for Dynamixel arms; calibrate a Feetech arm with LeRobot and import it "
            "(`s2r calibrate lerobot`)"
        )
    motors = [m for m in config.motors if m.mode != ControlMode.velocity]
    servos = MotorBus(config.model_copy(update={"motors": motors}), bus)
    servos.check_motors()
    servos.set_torque(False)
    for m in motors:
        bus.write(m.id, MODELS[m.model].register("homing_offset"), 0)  # offsets live in the config
    zero = {m.joint: 0.0 for m in motors}
    operator.pose("zero", zero)
    at_zero = servos.read_motor_angles()
    rest = {m.joint: float(config.arm.rest[m.joint]) for m in motors}
    operator.pose("rest", rest)
    at_rest = servos.read_motor_angles()

    samples: list[np.ndarray] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                samples.append(servos.read_motor_angles())
                time.sleep(SWEEP_PERIOD_S)
        except BaseException as exc:  # reported after the sweep
            failure.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        operator.sweep([m.joint for m in motors])
    finally:
        done.set()
        thread.join(timeout=2)
    if failure:
        raise HomingError(f"{config.name}: reading positions during the sweep failed: {failure[0]}")
    if len(samples) < 2:
        raise HomingError(f"{config.name}: fewer than two readings during the sweep; sweep for longer")
    sweep = np.array(samples)
    jumps = np.abs(np.diff(sweep, axis=0))
    reg = MODELS[motors[0].model].register("present_position")
    turn = [reg.to_si(t) for t in POSITION_TICKS]  # motor angles at the ends of the single turn
    outside = (sweep < turn[0]) | (sweep > turn[1])
    wrapped = [m.joint for k, m in enumerate(motors) if outside[:, k].any() or jumps[:, k].max() > np.pi]
    if wrapped:
        raise HomingError(
            f"{config.name}: {', '.join(wrapped)} crossed the encoder's wrap-around (left the single turn "
            f"{POSITION_TICKS[0]}..{POSITION_TICKS[1]} ticks, or jumped by more than half a turn between readings): "
            "its range cannot be commanded in position mode; re-mount the horn by half a turn"
        )

    result = HomingResult(config.name, [])
    for k, m in enumerate(motors):
        offset = float(at_zero[k])
        motor_change = at_rest[k] - at_zero[k]
        joint_change = rest[m.joint] / m.scale  # motor angle the rest pose needs at direction +1
        checked = abs(motor_change) >= MIN_DIRECTION_RAD and abs(joint_change) >= MIN_DIRECTION_RAD
        direction = int(np.sign(motor_change * joint_change)) if checked else m.direction
        if checked and abs(abs(motor_change) - abs(joint_change)) > 0.25 * abs(joint_change):
            result.warnings.append(
                f"{m.joint}: moved {abs(motor_change):.2f} rad of motor angle between zero and rest, expected "
                f"{abs(joint_change):.2f}: check the poses (or the joint's scale)"
            )
        if not checked:
            result.warnings.append(f"{m.joint}: rest pose too close to zero to check the direction; kept {direction}")
        lo_m, hi_m = float(sweep[:, k].min()), float(sweep[:, k].max())
        measured = hi_m - lo_m >= MIN_SWEEP_RAD
        if measured:
            ends = sorted(
                direction * (v - offset) * m.scale for v in (lo_m + LIMIT_MARGIN_RAD, hi_m - LIMIT_MARGIN_RAD)
            )
            lower, upper = round(ends[0], 4), round(ends[1], 4)
        else:
            lower, upper = m.limits.lower, m.limits.upper
            result.warnings.append(f"{m.joint}: moved {hi_m - lo_m:.2f} rad in the sweep; kept the configured limits")
        cal = MotorCalibration(
            m.joint, m.id, round(offset, 4), direction, checked, lower, upper, measured, (lo_m, hi_m)
        )
        limits = m.limits.model_copy(update={"lower": lower, "upper": upper})
        updated = m.model_copy(update={"offset": cal.offset, "direction": direction, "limits": limits})
        position_limit_ticks(updated)  # the range must be commandable in position mode
        result.motors.append(cal)
    return result


_NUMBER = r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"


def save(result: HomingResult, path: str | Path) -> Path:
    """Write the homing result into the hardware config file at ``path``: on each calibrated motor's flow mapping
    (``- {id: N, ...}``) replace ``direction:``, ``offset:`` and ``limits: {lower:, upper:}``; comments and
    everything else stay. The previous file is kept as ``path.bak``; the new one must load and match."""
    path = Path(path)
    text = path.read_text()
    for cal in result.motors:
        start = re.search(rf"^\s*-\s*\{{\s*id:\s*{cal.ident}\s*,", text, flags=re.MULTILINE)
        if start is None:
            raise ConfigError(f"{path}: no motor line '- {{id: {cal.ident}, ...}}' to update (flow style expected)")
        end = text.find("}}", start.end())
        end = text.find("}", start.end()) if end < 0 else end + 2
        block = text[start.start() : end]
        new = block
        fields = [("direction", str(cal.direction)), ("offset", f"{cal.offset}")]
        if cal.homing_offset is not None:
            fields.append(("homing_offset", str(cal.homing_offset)))
        for key, value in fields:
            if re.search(rf"\b{key}:\s*{_NUMBER}", new):
                new = re.sub(rf"\b{key}:\s*{_NUMBER}", f"{key}: {value}", new, count=1)
            else:
                new = new.replace(f"id: {cal.ident},", f"id: {cal.ident}, {key}: {value},", 1)
        new = re.sub(rf"\blower:\s*{_NUMBER}", f"lower: {cal.lower}", new, count=1)
        new = re.sub(rf"\bupper:\s*{_NUMBER}", f"upper: {cal.upper}", new, count=1)
        text = text[: start.start()] + new + text[end:]
    expected = {c.ident: (c.direction, c.offset, c.lower, c.upper) for c in result.motors}
    homing = {c.ident: c.homing_offset for c in result.motors if c.homing_offset is not None}

    def matches(config: HardwareConfig) -> bool:
        got = {m.id: (m.direction, m.offset, m.limits.lower, m.limits.upper) for m in config.motors}
        offsets = {m.id: m.homing_offset for m in config.motors}
        return all(got.get(i) == v for i, v in expected.items()) and all(offsets.get(i) == v for i, v in homing.items())

    return write_checked(path, text, matches, "the homed motors' values")

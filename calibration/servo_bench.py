"""Record servo test-bench logs for :mod:`calibration.servo_sysid`: one Dynamixel X servo swinging a pendulum through
goal trajectories, in the JSON format of the shared XL330 recordings (``s2r calibrate bench``).

The bench: a mass ``mass`` (kg) at ``length`` (m) on the servo's horn, hanging at rest before each recording. Its
rest angle, read with torque off, is the log's zero (gravity's zero in the sysid model). The servo runs the
firmware's position P loop at the log's gain (I and D 0, no profile), as the sysid model assumes; each cycle writes
the goal and reads back, in one transaction, Present PWM (the log's ``load``: the sysid reads the firmware's law from
it), velocity, position, input voltage and temperature.

Trajectory families, so that a fit can be validated on one it did not see (goal angles from the rest angle, rad;
each also says when torque is on):

- ``sin_sin``: a product of two sines, 1.2 rad at most, one period in 1.7 s inside one in 6.7 s;
- ``up_and_down``: a raised-cosine lift to 1.5 rad and back, 3 s each way;
- ``lift_and_drop``: a smooth lift to -pi/2 (horizontal) over 2 s, then torque off: the pendulum falls and swings
  freely, which shows the friction of an unpowered gearbox (the protocol of Duclusaud et al., BAM, ICRA 2025);
- ``chirp``: a sine of 0.8 rad whose frequency rises linearly from 0 to 2 Hz over the recording.

Nothing reaches the servo without passing :class:`BenchLimits` (goals within +-``limit`` of rest and at most
``max_speed`` apart per second); every exit path, an error or a stop included, turns torque off and reads it back,
and writes what was recorded (``complete`` false and ``stopped`` saying why when it ended early).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from real.dynamixel.bus import DynamixelBus
from real.dynamixel.control_table import MODEL_BY_NUMBER, OperatingMode, Register, ServoModel
from real.serial_bus import BusError
from real.stop_signals import Stopped

#: Registers read each cycle, in one read from Present PWM (124) to Present Temperature (146, 1 byte).
STATE_START, STATE_LEN = 124, 23
#: How far the horn may move (rad) between two readings 0.2 s apart, torque off, for the pendulum to count as at rest.
REST_TOLERANCE = 0.01
#: The firmware's position P gain register's range (e-manual: Position P Gain 0-16,383).
KP_RANGE = (1, 16383)


def _sin_sin(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return 1.2 * np.sin(2 * np.pi * t / 1.7) * np.sin(2 * np.pi * t / 6.7), np.ones_like(t, dtype=bool)


def _up_and_down(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return 1.5 * 0.5 * (1 - np.cos(np.pi * np.clip(t, 0.0, 6.0) / 3.0)), np.ones_like(t, dtype=bool)


def _lift_and_drop(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.clip(t / 2.0, 0.0, 1.0)
    return -np.pi / 2 * (3 * s**2 - 2 * s**3), t < 2.0


def _chirp(t: np.ndarray, duration: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    return 0.8 * np.sin(np.pi * 2.0 / duration * t**2), np.ones_like(t, dtype=bool)


#: Trajectory family -> (goal angle from rest in rad, torque on) at times t (s from the start).
TRAJECTORIES: dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "sin_sin": _sin_sin,
    "up_and_down": _up_and_down,
    "lift_and_drop": _lift_and_drop,
    "chirp": _chirp,
}
#: Seconds each recording lasts, as the shared logs.
DURATION_S = 6.0


class BenchError(RuntimeError):
    """A bench that cannot be recorded (a bad request, the wrong servo, a pendulum not at rest); the message says
    which and what to do."""


@dataclass(frozen=True)
class BenchLimits:
    """The bench's safety filter: a goal (rad from rest) is clamped to +-``limit`` and moves at most ``max_speed``
    (rad/s) from the last one sent; a non-finite goal holds the last one."""

    limit: float = 1.75
    max_speed: float = 8.0

    def filter(self, goal: float, last: float, dt: float) -> float:
        if not math.isfinite(goal):
            return last
        step = self.max_speed * max(dt, 0.0)
        return float(np.clip(np.clip(goal, last - step, last + step), -self.limit, self.limit))


@dataclass
class BenchResult:
    """One recording: the log as written (the JSON document), where, whether it ran to the end (else why it
    stopped) and whether the servo read back torque off afterwards."""

    log: dict[str, Any]
    path: Path
    complete: bool
    stopped: str = ""
    torque_off_read_back: bool = False
    cycles_late: int = 0
    warnings: list[str] = field(default_factory=list)


def _model(bus: DynamixelBus, ident: int) -> ServoModel:
    number = bus.ping(ident)
    model = MODEL_BY_NUMBER.get(number)
    if model is None or "present_pwm" not in model.registers:
        known = sorted(m.name for m in MODEL_BY_NUMBER.values())
        raise BenchError(f"servo {ident} is model number {number}, not one of the X-series servos {known}")
    return model


def _torque_off(bus: DynamixelBus, ident: int, model: ServoModel) -> bool:
    """Torque off, read back (False when the servo did not confirm it)."""
    reg = model.register("torque_enable")
    try:
        bus.write(ident, reg, 0)
        return bus.read(ident, reg, alert_ok=True) == 0
    except BusError:
        return False


def _configure(bus: DynamixelBus, ident: int, model: ServoModel, kp: int) -> None:
    """Position mode, the P loop at ``kp`` and nothing else (torque must be off: the mode is in EEPROM)."""
    for name, raw in (
        ("operating_mode", int(OperatingMode.POSITION)),
        ("position_p_gain", kp),
        ("position_i_gain", 0),
        ("position_d_gain", 0),
        ("profile_velocity", 0),
        ("profile_acceleration", 0),
    ):
        bus.write(ident, model.register(name), raw)


def rest_angle(
    bus: DynamixelBus, ident: int, model: ServoModel, timeout_s: float = 10.0, every_s: float = 0.2
) -> float:
    """The motor angle (rad) of the pendulum once it hangs still, torque off: two readings ``every_s`` apart within
    :data:`REST_TOLERANCE`; BenchError when it is still moving after ``timeout_s``."""
    reg = model.register("present_position")
    first = reg.to_si(bus.read(ident, reg))
    deadline = time.monotonic() + timeout_s
    while True:
        time.sleep(every_s)
        second = reg.to_si(bus.read(ident, reg))
        if abs(second - first) <= REST_TOLERANCE:
            return second
        if time.monotonic() > deadline:
            raise BenchError(
                f"servo {ident}: the pendulum is still moving after {timeout_s:.0f} s with torque off ({first:+.3f} ->"
                f" {second:+.3f} rad in {every_s} s); steady it, then record"
            )
        first = second


def _entry(model: ServoModel, state: bytes, t: float, zero: float, goal: float, torque_on: bool) -> dict[str, Any]:
    """One log entry from the state block read at ``t`` (s), in the shared logs' fields: angles from ``zero``
    (rad), speed (rad/s), ``load`` the Present PWM register as read (unsigned), input volts, temperature (C)."""

    def raw(name: str) -> int:
        reg = model.register(name)
        return reg.decode(state[reg.address - STATE_START : reg.address - STATE_START + reg.size])

    def si(name: str) -> float:
        return model.register(name).to_si(raw(name))

    return {
        "timestamp": round(t, 6),
        "position": si("present_position") - zero,
        "speed": si("present_velocity"),
        "load": raw("present_pwm") % (1 << 16),
        "input_volts": si("present_input_voltage"),
        "temp": si("present_temperature"),
        "goal_position": goal,
        "torque_enable": torque_on,
    }


def record(
    bus: DynamixelBus,
    ident: int,
    trajectory: str,
    kp: int,
    mass: float,
    length: float,
    out: str | Path,
    rate_hz: float = 100.0,
    duration_s: float = DURATION_S,
    limits: BenchLimits | None = None,
    zero: float | None = None,
    vin: float = 7.4,
) -> BenchResult:
    """Record ``trajectory`` at P gain ``kp`` on servo ``ident`` of ``bus`` into ``out`` (JSON), at ``rate_hz``
    cycles per second for ``duration_s``, from the pendulum hanging still. ``zero``: the motor angle (rad) of the
    pendulum hanging straight down (None: where it rests now; give the first recording's to the next ones, as
    friction may hold the pendulum off it after a swing); ``vin``: the nominal supply (V) written beside the
    measured one. Raises :class:`BenchError` on a bad request before anything moves; once recording, a bus error
    or a stop (:class:`real.stop_signals.Stopped`) ends it with torque off and a partial log written (``stopped``
    says why), and KeyboardInterrupt does the same, then propagates."""
    if trajectory not in TRAJECTORIES:
        raise BenchError(f"unknown trajectory {trajectory!r}; expected one of {sorted(TRAJECTORIES)}")
    if not KP_RANGE[0] <= kp <= KP_RANGE[1]:
        raise BenchError(f"kp {kp} is outside the Position P Gain register's range {KP_RANGE[0]}..{KP_RANGE[1]}")
    if not (mass > 0 and length > 0 and rate_hz > 0 and duration_s > 0):
        raise BenchError("mass, length, rate and duration must be positive")
    limits = limits or BenchLimits()
    model = _model(bus, ident)
    if not _torque_off(bus, ident, model):
        raise BenchError(f"servo {ident} did not read back torque off before configuring; check its power")
    _configure(bus, ident, model, kp)
    rest = rest_angle(bus, ident, model)
    zero = rest if zero is None else zero
    meta = {"mass": mass, "length": length, "kp": kp, "vin": vin, "motor": model.name, "trajectory": trajectory}
    entries: list[dict[str, Any]] = []
    result = BenchResult({}, Path(out), complete=False)
    goal_reg, state_reg = model.register("goal_position"), Register("bench_state", STATE_START, STATE_LEN, "R")
    torque_reg = model.register("torque_enable")
    period, last_goal, torque_on = 1.0 / rate_hz, 0.0, False
    try:
        start = time.monotonic()
        for k in range(int(round(duration_s * rate_hz))):
            due = start + k * period
            late = time.monotonic() - due
            if late > period:
                result.cycles_late += 1
            elif late < 0:
                time.sleep(-late)
            t = time.monotonic() - start
            wanted, on = TRAJECTORIES[trajectory](np.array([t]))
            goal = limits.filter(float(wanted[0]), last_goal, period) if on[0] else last_goal
            if bool(on[0]) != torque_on:
                bus.write(ident, torque_reg, int(on[0]))
                torque_on = bool(on[0])
            if torque_on:
                bus.write(ident, goal_reg, goal_reg.from_si(goal + zero))
                last_goal = goal
            state = bus.read(ident, state_reg).to_bytes(STATE_LEN, "little")
            entries.append(_entry(model, state, time.monotonic() - start, zero, goal, torque_on))
        else:
            result.complete = True
    except (BusError, OSError) as exc:
        result.stopped = f"the bus failed after {len(entries)} samples: {exc}"
    except Stopped as exc:
        result.stopped = f"stopped after {len(entries)} samples ({exc})"
    except KeyboardInterrupt:
        result.stopped = f"interrupted after {len(entries)} samples"
        raise
    finally:
        for _attempt in range(2):  # a stop signal arriving while this runs interrupts it once: it runs again
            try:
                result.torque_off_read_back = _torque_off(bus, ident, model)
                meta |= {"zero_rad": zero, "rest_rad": rest, "complete": result.complete, "stopped": result.stopped}
                result.log = meta | {"entries": entries}
                result.path.parent.mkdir(parents=True, exist_ok=True)
                result.path.write_text(json.dumps(result.log))
                break
            except Stopped as exc:
                result.stopped = result.stopped or f"stopped while turning torque off ({exc})"
    if result.cycles_late:
        result.warnings.append(f"{result.cycles_late} cycles started over one period late: lower --rate")
    return result

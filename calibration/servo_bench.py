"""Record servo test-bench logs for :mod:`calibration.servo_sysid`: one Dynamixel X servo swinging a pendulum through
goal trajectories (:mod:`calibration.bench_trajectories`), in the JSON format of the shared XL330 recordings
(``s2r calibrate bench``).

The bench: a mass ``mass`` (kg) at ``length`` (m) on the servo's horn, hanging still before each recording. Its rest
angle, read with torque off, is the logs' zero (gravity's zero in the sysid model) unless one is given. The servo
runs the firmware's position P loop at the log's gain (I and D 0, no profile), as the sysid model assumes; each
cycle writes the goal, then reads back in one READ Present PWM (the log's ``load``: the sysid reads the firmware's
law from it), velocity, position, input voltage and temperature.

Before anything moves: the servo must answer as an X-series model, read back torque off, hang still, rest within
:data:`MAX_ZERO_OFFSET` of the zero, and reach every goal of the family inside its position limits (a horn mounted
near the encoder's wrap-around cannot), and the output folder must be writable. Nothing reaches the servo without
passing :class:`BenchLimits`, measured from where the pendulum rests; the goal is written before torque comes on.
Every exit path (the end, a bus error, a lost servo, a stop signal, any other error) turns torque off and reads it
back, and writes what was recorded: a log that ended early goes to ``NAME.json.partial`` (``complete`` false,
``stopped`` saying why), which a ``*.json`` glob for the sysid does not take.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calibration.bench_trajectories import TRAJECTORIES, goal_range
from real.dynamixel.bus import DynamixelBus
from real.dynamixel.control_table import MODEL_BY_NUMBER, OperatingMode, Register, ServoModel
from real.serial_bus import BusError
from real.stop_signals import Stopped, StopSignals

#: Registers read each cycle, in one read from Present PWM (124) to Present Temperature (146, 1 byte).
STATE_START, STATE_LEN = 124, 23
#: The pendulum is at rest when this many position readings, 0.1 s apart with torque off, lie within
#: :data:`REST_TOLERANCE` (rad) of each other (two readings could match on both sides of a swing's turning point).
REST_READINGS, REST_EVERY_S, REST_TOLERANCE = 4, 0.1, 0.01
#: How far (rad) the resting pendulum may be from a zero given for it (farther: the zero is wrong, or the pendulum
#: is held off it).
MAX_ZERO_OFFSET = 0.3
#: The firmware's position P gain register's range (e-manual: Position P Gain 0-16,383).
KP_RANGE = (1, 16383)
#: Seconds each recording lasts, as the shared logs.
DURATION_S = 6.0
#: Appended to the file name of a log that ended early.
PARTIAL_SUFFIX = ".partial"


class BenchError(RuntimeError):
    """A bench that cannot be recorded (a bad request, the wrong servo, a pendulum not at rest, a goal out of the
    servo's reach); the message says which and what to do."""


@dataclass(frozen=True)
class BenchLimits:
    """The bench's safety filter: a goal (rad from the zero) is clamped to +-``limit`` and moves at most
    ``max_speed`` (rad/s) from the last one sent; a non-finite goal holds the last one."""

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
    stopped), whether the servo read back torque off afterwards, and the cycles skipped for starting late."""

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
    if model is None:
        known = sorted(m.name for m in MODEL_BY_NUMBER.values())
        raise BenchError(f"servo {ident} is model number {number}, not one of the X-series servos {known}")
    return model


def _torque_off(bus: DynamixelBus, ident: int, model: ServoModel) -> bool:
    """Torque off, read back (False when the servo did not confirm it). A servo in hardware alert refuses the
    write's status but still reads back."""
    reg = model.register("torque_enable")
    with contextlib.suppress(BusError):
        bus.write(ident, reg, 0)
    try:
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


def rest_angle(bus: DynamixelBus, ident: int, model: ServoModel, timeout_s: float = 10.0) -> float:
    """The motor angle (rad) of the pendulum once it hangs still, torque off (:data:`REST_READINGS`); BenchError
    when it is still moving after ``timeout_s``."""
    reg = model.register("present_position")
    readings = [reg.to_si(bus.read(ident, reg))]
    deadline = time.monotonic() + timeout_s
    while len(readings) < REST_READINGS or np.ptp(readings[-REST_READINGS:]) > REST_TOLERANCE:
        if time.monotonic() > deadline:
            last = readings[-REST_READINGS:]
            raise BenchError(
                f"servo {ident}: the pendulum is still moving after {timeout_s:.0f} s with torque off (readings "
                f"{min(last):+.3f} to {max(last):+.3f} rad over {REST_EVERY_S * (len(last) - 1):.1f} s); steady it"
            )
        time.sleep(REST_EVERY_S)
        readings.append(reg.to_si(bus.read(ident, reg)))
    return readings[-1]


def _check_reach(
    bus: DynamixelBus, ident: int, model: ServoModel, trajectory: str, duration: float, limit: float, zero: float
) -> None:
    """BenchError unless every goal of ``trajectory`` (from ``zero``) lies inside the servo's position limits."""
    goal_reg = model.register("goal_position")
    lo, hi = (bus.read(ident, model.register(n)) for n in ("min_position_limit", "max_position_limit"))
    low, high = goal_range(trajectory, duration, limit)
    need = (goal_reg.from_si(zero + low), goal_reg.from_si(zero + high))
    if need[0] < lo or need[1] > hi:
        raise BenchError(
            f"servo {ident}: {trajectory} needs goals {zero + low:+.2f} to {zero + high:+.2f} rad (positions "
            f"{need[0]}..{need[1]}), outside its position limits {lo}..{hi}: mount the horn so that the pendulum "
            "hangs near the middle of the servo's turn (position 2048)"
        )


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


@dataclass(frozen=True)
class _Run:
    """What one recording drives: the servo, the family, the timing, the limits and the angles (rad)."""

    bus: DynamixelBus
    ident: int
    model: ServoModel
    trajectory: str
    duration_s: float
    rate_hz: float
    limits: BenchLimits
    zero: float
    rest: float


def _drive(run: _Run, entries: list[dict[str, Any]], result: BenchResult) -> None:
    """The recording's cycles: each writes the goal through the limits (before torque comes on), switches torque
    as the family says, reads the state back and logs it. Cycles starting a period or more late are skipped."""
    bus, ident, model = run.bus, run.ident, run.model
    goal_reg, torque_reg = model.register("goal_position"), model.register("torque_enable")
    state_reg = Register("bench_state", STATE_START, STATE_LEN, "R")
    period, cycles = 1.0 / run.rate_hz, int(round(run.duration_s * run.rate_hz))
    goal, sent_at, torque_on = run.rest - run.zero, None, False
    start, k = time.monotonic(), 0
    while k < cycles:
        late = time.monotonic() - (start + k * period)
        if late < 0:
            time.sleep(-late)
        elif late >= period:
            missed = int(late / period)
            result.cycles_late += missed
            k += missed
            if k >= cycles:
                break
        t = time.monotonic() - start
        wanted, on = TRAJECTORIES[run.trajectory](np.array([t]), run.duration_s)
        if on[0]:
            goal = run.limits.filter(float(wanted[0]), goal, period if sent_at is None else min(t - sent_at, period))
            bus.write(ident, goal_reg, goal_reg.from_si(goal + run.zero))
            sent_at = t
        if bool(on[0]) != torque_on:
            bus.write(ident, torque_reg, int(on[0]))
            torque_on = bool(on[0])
        state = bus.read(ident, state_reg).to_bytes(STATE_LEN, "little")
        entries.append(_entry(model, state, time.monotonic() - start, run.zero, goal, torque_on))
        k += 1


def _finish(run: _Run, result: BenchResult, meta: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    """Torque off, read back; the log written (a log that ended early under :data:`PARTIAL_SUFFIX`)."""
    result.torque_off_read_back = _torque_off(run.bus, run.ident, run.model)
    result.log = meta | {"complete": result.complete, "stopped": result.stopped, "entries": entries}
    if not result.complete and not result.path.name.endswith(PARTIAL_SUFFIX):
        result.path = result.path.with_name(result.path.name + PARTIAL_SUFFIX)
    result.path.write_text(json.dumps(result.log))


def _check_request(trajectory: str, kp: int, values: dict[str, float | None], out: Path) -> None:
    if trajectory not in TRAJECTORIES:
        raise BenchError(f"unknown trajectory {trajectory!r}; expected one of {sorted(TRAJECTORIES)}")
    if not KP_RANGE[0] <= kp <= KP_RANGE[1]:
        raise BenchError(f"kp {kp} is outside the Position P Gain register's range {KP_RANGE[0]}..{KP_RANGE[1]}")
    for name, value in values.items():
        if value is not None and not (math.isfinite(value) and (name == "zero" or value > 0)):
            raise BenchError(f"{name} must be a finite{'' if name == 'zero' else ' positive'} number, got {value}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(out.parent, os.W_OK):
        raise BenchError(f"cannot write logs into {out.parent}")


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
    signals: StopSignals | None = None,
) -> BenchResult:
    """Record ``trajectory`` at P gain ``kp`` on servo ``ident`` of ``bus`` into ``out`` (JSON), at ``rate_hz``
    cycles per second for ``duration_s``, from the pendulum hanging still. ``zero``: the motor angle (rad) of the
    pendulum hanging straight down (None: where it rests now; give the first recording's to the next ones, as
    friction may hold the pendulum a little off it after a swing); ``vin``: the nominal supply (V) written beside
    the measured one; ``signals``: the stop handlers, held off while torque goes off and the log is written.

    Raises :class:`BenchError` on a bad request before anything moves. Once recording, a bus error or a stop
    (:class:`real.stop_signals.Stopped`) ends it early (``stopped`` says why); any other error does the same, then
    propagates. Every end turns torque off, reads it back and writes the log."""
    limits = limits or BenchLimits()
    out = Path(out)
    _check_request(trajectory, kp, {"mass": mass, "length": length, "rate": rate_hz, "duration": duration_s,
                                    "zero": zero}, out)  # fmt: skip
    model = _model(bus, ident)
    if not _torque_off(bus, ident, model):
        raise BenchError(f"servo {ident} did not read back torque off before configuring; check its power")
    _configure(bus, ident, model, kp)
    rest = rest_angle(bus, ident, model)
    zero = rest if zero is None else zero
    if abs(rest - zero) > MAX_ZERO_OFFSET:
        raise BenchError(
            f"servo {ident}: the pendulum rests at {rest:+.3f} rad, {rest - zero:+.3f} from the zero given"
        )
    _check_reach(bus, ident, model, trajectory, duration_s, limits.limit, zero)
    run = _Run(bus, ident, model, trajectory, duration_s, rate_hz, limits, zero, rest)
    meta = {"mass": mass, "length": length, "kp": kp, "vin": vin, "motor": model.name, "trajectory": trajectory}
    meta |= {"zero_rad": zero, "rest_rad": rest}
    entries: list[dict[str, Any]] = []
    result = BenchResult({}, out, complete=False)
    try:
        _drive(run, entries, result)
        result.complete = True
    except (BusError, OSError) as exc:
        result.stopped = f"the bus failed after {len(entries)} samples: {exc}"
    except Stopped as exc:
        result.stopped = f"stopped after {len(entries)} samples ({exc})"
    except BaseException as exc:
        result.stopped = f"failed after {len(entries)} samples: {exc!r}"
        raise
    finally:
        try:
            with signals.holding() if signals is not None else contextlib.nullcontext():
                _finish(run, result, meta, entries)
        except Stopped as exc:  # arrived while finishing, raised once the log was written
            result.stopped = result.stopped or f"stopped as the log ended ({exc})"
        except KeyboardInterrupt:  # no stop handlers: finish again, then let it through
            _finish(run, result, meta, entries)
            raise
    if result.cycles_late:
        result.warnings.append(f"{result.cycles_late} cycles skipped for starting a period late: lower --rate")
    return result

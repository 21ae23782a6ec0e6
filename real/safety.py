"""The safety filter between a policy and the motor bus: nothing reaches a motor without passing it.

Per cycle, on joint targets in SI units and in the config's joint order (rad or m for position joints, rad/s for
velocity joints such as wheels):

- a non-finite target (NaN, inf) is no command for that joint: a position joint holds its last safe target, a
  velocity joint brakes to rest (target 0, within its change limit per cycle);
- position joints are clamped to their limits, and their change per cycle to ``safety.max_step`` and to what the
  joint's velocity limit allows in one control period;
- velocity joints are clamped to their velocity limit, and their change per cycle to ``safety.max_step`` (their
  acceleration limit);
- Cartesian limits (``safety.workspace``, arms): a target whose forward kinematics puts the elbow, the wrist or
  the end effector below ``min_z`` or farther than ``max_radius`` from the yaw axis is not sent: the pitch joints
  go the largest fraction that stays inside of their step toward it on a straight line (0: they hold), the yaw
  joint and the gripper move on (neither changes height or radius). From a start pose already outside, steps that
  do not make the violation worse pass, so the arm can always move back in;
- host watchdog: a cycle that starts more than ``safety.watchdog_s`` late holds the last safe target (velocity
  joints brake by one step); more than ``safety.max_overruns`` late cycles in a row stop the run
  (:class:`SafetyStop`);
- servo hardware errors (overload, overheating, voltage, encoder, electrical shock) and servo health readings
  outside ``safety.max_temperature_c`` and the input voltage range stop the run with a message naming the motor.

Every intervention is reported as a :class:`SafetyEvent` for the log. Written here rather than taken from a
library: ros2_control's limiters are C++ plugins inside a controller manager, and the Python robot-learning
stacks (LeRobot) clamp positions only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from real.dynamixel.control_table import decode_hardware_error
from robot.description import ControlMode, HardwareConfig
from robot.kinematics import (
    ArmKinematics,
    describe_workspace_violation,
    rest_pose_workspace_problem,
    workspace_violation,
)

#: Bisection steps for the largest fraction of a step that stays in the workspace (resolution 2**-12 of the step).
_WORKSPACE_BISECTIONS = 12
#: Slack (m) when comparing workspace violations, for rounding in the forward kinematics.
_WORKSPACE_EPS = 1e-12


class SafetyStop(RuntimeError):
    """The run must stop: park and disable torque. The message says why."""


@dataclass(frozen=True)
class SafetyEvent:
    """One intervention of the filter. ``kind``: non_finite, position_limit, step_limit, velocity_limit,
    workspace_limit, watchdog_hold, watchdog_stop or servo_error; ``joints``: the joints concerned."""

    kind: str
    joints: tuple[str, ...] = ()
    detail: str = ""
    stamp_ns: int = field(default_factory=time.monotonic_ns)


class SafetyFilter:
    """Filters joint targets cycle by cycle; :meth:`reset` before the first cycle with the measured state."""

    def __init__(self, config: HardwareConfig) -> None:
        self.config = config
        self.joints = list(config.joint_names)
        motors = config.motors
        self.velocity_joint = np.array([m.mode == ControlMode.velocity for m in motors])
        self.lower = np.array([m.limits.lower for m in motors], dtype=float)
        self.upper = np.array([m.limits.upper for m in motors], dtype=float)
        self.velocity = np.array([m.limits.velocity for m in motors], dtype=float)
        self.period = 1.0 / config.control.rate_hz
        safety = config.safety
        # position joints: what max_step allows and what the joint can travel in one period, whichever is less;
        # velocity joints: max_step (rad/s per cycle) is their acceleration limit
        self.max_change = np.where(
            self.velocity_joint, safety.max_step, np.minimum(safety.max_step, self.velocity * self.period)
        )
        self.watchdog_s = safety.watchdog_s
        self.max_overruns = safety.max_overruns
        self.max_temperature_c = safety.max_temperature_c
        self.input_voltage_v = config.input_voltage_v
        self.workspace = safety.workspace
        self.kin: ArmKinematics | None = None
        self._pitch = np.zeros(len(self.joints), dtype=bool)  # joints that change height and radius
        if self.workspace is not None:
            self.kin = ArmKinematics(config)
            problem = rest_pose_workspace_problem(config, self.kin)
            if problem:
                raise ValueError(problem)
            self._pitch[1:4] = True  # ArmKinematics: yaw, then three pitch joints, in config order
        self.last: np.ndarray | None = None
        self._violation = 0.0  # workspace violation of self.last (m)
        self.overruns = 0

    def reset(self, measured_position: np.ndarray) -> None:
        """Start from the measured joint positions (velocity joints start at rest)."""
        pos = np.asarray(measured_position, dtype=float)
        if pos.shape != (len(self.joints),) or not np.all(np.isfinite(pos)):
            raise SafetyStop(f"cannot start the safety filter from the measured state {pos}")
        self.last = np.where(self.velocity_joint, 0.0, np.clip(pos, self.lower, self.upper))
        self._violation = self.workspace_violation(self.last)  # a start outside may move back in, never further out
        self.overruns = 0

    def hold(self) -> np.ndarray:
        """The last safe target (velocity joints: the last safe velocity)."""
        if self.last is None:
            raise RuntimeError("SafetyFilter.reset() must be called before the first cycle")
        return self.last.copy()

    def idle(self) -> np.ndarray:
        """The targets that mean "no command this cycle": position joints at their last safe target, velocity
        joints at 0 (which :meth:`filter` ramps down within their change limit). Unlike NaN targets, which do
        the same, these raise no ``non_finite`` event."""
        return np.where(self.velocity_joint, 0.0, self.hold())

    def filter(self, targets: np.ndarray, late_s: float = 0.0) -> tuple[np.ndarray, list[SafetyEvent]]:
        """The safe targets for this cycle and what was changed. ``late_s``: how late this cycle started (s)."""
        if self.last is None:
            raise RuntimeError("SafetyFilter.reset() must be called before the first cycle")
        events: list[SafetyEvent] = []
        if late_s > self.watchdog_s:
            self.overruns += 1
            if self.overruns >= self.max_overruns:
                events.append(SafetyEvent("watchdog_stop", detail=f"{self.overruns} late cycles in a row"))
                raise SafetyStop(
                    f"host watchdog: {self.overruns} consecutive cycles started more than {self.watchdog_s * 1e3:.0f}"
                    f" ms late (last {late_s * 1e3:.0f} ms)"
                )
            detail = f"cycle {late_s * 1e3:.0f} ms late: holding, velocity joints braking"
            events.append(SafetyEvent("watchdog_hold", detail=detail))
            self.last = self.last + np.clip(self.idle() - self.last, -self.max_change, self.max_change)
            return self.last.copy(), events
        self.overruns = 0
        t = np.array(targets, dtype=float, copy=True).ravel()
        if t.shape != self.last.shape:
            raise ValueError(f"{t.size} targets for {len(self.joints)} joints ({self.joints})")
        bad = ~np.isfinite(t)
        if bad.any():
            t[bad] = self.idle()[bad]
            events.append(
                SafetyEvent(
                    "non_finite", self._names(bad), "position joints hold the last safe target, velocity joints brake"
                )
            )
        pos = ~self.velocity_joint
        clamped = np.clip(t, self.lower, self.upper)
        hit = pos & (clamped != t)
        if hit.any():
            events.append(SafetyEvent("position_limit", self._names(hit)))
        t = np.where(pos, clamped, t)
        vel = self.velocity_joint
        clamped = np.clip(t, -self.velocity, self.velocity)
        hit = vel & (clamped != t)
        if hit.any():
            events.append(SafetyEvent("velocity_limit", self._names(hit)))
        t = np.where(vel, clamped, t)
        step = np.clip(t - self.last, -self.max_change, self.max_change)
        hit = np.abs(step - (t - self.last)) > 1e-12
        if hit.any():
            events.append(SafetyEvent("step_limit", self._names(hit)))
        new = self.last + step
        if self.kin is not None:
            new = self._keep_in_workspace(t, new, events)
        self.last = new
        return self.last.copy(), events

    def workspace_violation(self, q: np.ndarray) -> float:
        """How far joint positions ``q`` put the arm outside ``safety.workspace`` (m, summed over the checked
        points, below ``min_z`` and beyond ``max_radius``); 0 inside, or without a workspace."""
        if self.kin is None:
            return 0.0
        return workspace_violation(self.kin, self.workspace, q)

    def _keep_in_workspace(self, target: np.ndarray, new: np.ndarray, events: list[SafetyEvent]) -> np.ndarray:
        """``new`` (the step-limited ``target``) when it does not make the workspace violation worse than the last
        target's. Otherwise the pitch joints go the largest fraction that does not of the longest step toward
        ``target`` on a straight line within their change limits (clipping each joint's step separately bends the
        path, and can dip the tool below a target that is itself inside); 0: they hold."""
        allowed = self._violation + _WORKSPACE_EPS
        violation = self.workspace_violation(new)
        if violation <= allowed:
            self._violation = violation
            return new
        start = np.where(self._pitch, self.last, new)  # yaw and gripper take their whole step
        delta = np.where(self._pitch, target - self.last, 0.0)
        with np.errstate(divide="ignore"):
            scale = min(1.0, float(np.min(self.max_change[self._pitch] / np.abs(delta[self._pitch]))))
        delta *= scale
        fraction = self._inside_fraction(start, delta, allowed)
        sent = start + fraction * delta
        events.append(
            SafetyEvent(
                "workspace_limit",
                self._names(self._pitch & (delta != 0)),
                f"{self._describe(new)}: sent {fraction * scale:.0%} of the way to the target, on a straight line",
            )
        )
        self._violation = self.workspace_violation(sent)
        return sent

    def _inside_fraction(self, start: np.ndarray, delta: np.ndarray, allowed: float) -> float:
        """The largest fraction of ``delta`` from ``start`` (found by bisection) whose end has a workspace
        violation of at most ``allowed`` (m); 0 when there is none."""
        if self.workspace_violation(start + delta) <= allowed:
            return 1.0
        lo, hi = 0.0, 1.0
        for _ in range(_WORKSPACE_BISECTIONS):
            mid = 0.5 * (lo + hi)
            if self.workspace_violation(start + mid * delta) <= allowed:
                lo = mid
            else:
                hi = mid
        return lo

    def _describe(self, q: np.ndarray) -> str:
        """Which checked points of pose ``q`` are outside the workspace, and where (m)."""
        return describe_workspace_violation(self.kin, self.workspace, q)

    def check_hardware_errors(self, errors: dict[int, int]) -> None:
        """Raise :class:`SafetyStop` naming each motor (id and joint) with a hardware error and its error bits.
        ``errors``: motor id -> Hardware Error Status register value."""
        found = []
        for ident, value in sorted(errors.items()):
            if value:
                bits = decode_hardware_error(value) or [f"0x{value:02x}"]
                found.append(f"{self.config.motor_label(ident)}: {', '.join(bits)}")
        if found:
            raise SafetyStop("servo hardware error: " + "; ".join(found))

    def check_health(self, temperature_c: dict[int, float], voltage_v: dict[int, float]) -> None:
        """Raise :class:`SafetyStop` naming every motor (id and joint) whose temperature (degC) is above
        ``safety.max_temperature_c`` or whose input voltage (V) is outside the robot's range
        (:attr:`HardwareConfig.input_voltage_v`), with the reading and the threshold; a non-finite reading counts
        as out of range. ``temperature_c``, ``voltage_v``: motor id -> Present Temperature, Present Input Voltage."""
        limit = self.max_temperature_c
        low, high = self.input_voltage_v
        found: list[tuple[int, str]] = []
        for ident, value in temperature_c.items():
            if not math.isfinite(value):
                found.append((ident, f"temperature reading {value}"))
            elif value > limit:
                found.append((ident, f"{value:g} °C above the {limit:g} °C limit"))
        for ident, value in voltage_v.items():
            if not math.isfinite(value):
                found.append((ident, f"input voltage reading {value}"))
            elif value < low:
                found.append((ident, f"{value:g} V below the {low:g} V minimum"))
            elif value > high:
                found.append((ident, f"{value:g} V above the {high:g} V maximum"))
        if found:
            found.sort(key=lambda item: item[0])
            raise SafetyStop("servo health: " + "; ".join(f"{self.config.motor_label(i)}: {what}" for i, what in found))

    def _names(self, mask: np.ndarray) -> tuple[str, ...]:
        return tuple(j for j, m in zip(self.joints, mask, strict=True) if m)

"""The safety filter between a policy and the motor bus: nothing reaches a motor without passing it.

Per cycle, on joint targets in SI units and in the config's joint order (rad or m for position joints, rad/s for
velocity joints such as wheels):

- non-finite targets (NaN, inf) are replaced by the last safe target of that joint;
- position joints are clamped to their limits, and their change per cycle to ``safety.max_step`` and to what the
  joint's velocity limit allows in one control period;
- velocity joints are clamped to their velocity limit, and their change per cycle to ``safety.max_step``;
- host watchdog: a cycle that starts more than ``safety.watchdog_s`` late holds the last safe target; more than
  ``safety.max_overruns`` late cycles in a row stop the run (:class:`SafetyStop`);
- servo hardware errors (overload, overheating, voltage, encoder, electrical shock) stop the run with a message
  naming the motor and the error.

Every intervention is reported as a :class:`SafetyEvent` for the log. Written here rather than taken from a
library: ros2_control's limiters are C++ plugins inside a controller manager, and the Python robot-learning
stacks (LeRobot) clamp positions only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from real.dynamixel.control_table import decode_hardware_error
from real.hardware_config import ControlMode, HardwareConfig


class SafetyStop(RuntimeError):
    """The run must stop: park and disable torque. The message says why."""


@dataclass(frozen=True)
class SafetyEvent:
    """One intervention of the filter. ``kind``: non_finite, position_limit, step_limit, velocity_limit,
    watchdog_hold, watchdog_stop or servo_error; ``joints``: the joints concerned."""

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
        # position joints: what max_step allows and what the joint can travel in one period, whichever is less
        self.max_change = np.where(
            self.velocity_joint, safety.max_step, np.minimum(safety.max_step, self.velocity * self.period)
        )
        self.watchdog_s = safety.watchdog_s
        self.max_overruns = safety.max_overruns
        self.last: np.ndarray | None = None
        self.overruns = 0

    def reset(self, measured_position: np.ndarray) -> None:
        """Start from the measured joint positions (velocity joints start at rest)."""
        pos = np.asarray(measured_position, dtype=float)
        if pos.shape != (len(self.joints),) or not np.all(np.isfinite(pos)):
            raise SafetyStop(f"cannot start the safety filter from the measured state {pos}")
        self.last = np.where(self.velocity_joint, 0.0, np.clip(pos, self.lower, self.upper))
        self.overruns = 0

    def hold(self) -> np.ndarray:
        """The last safe target (velocity joints: the last safe velocity)."""
        if self.last is None:
            raise RuntimeError("SafetyFilter.reset() must be called before the first cycle")
        return self.last.copy()

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
            events.append(SafetyEvent("watchdog_hold", detail=f"cycle {late_s * 1e3:.0f} ms late: holding"))
            return self.hold(), events
        self.overruns = 0
        t = np.array(targets, dtype=float, copy=True).ravel()
        if t.shape != self.last.shape:
            raise ValueError(f"{t.size} targets for {len(self.joints)} joints ({self.joints})")
        bad = ~np.isfinite(t)
        if bad.any():
            t[bad] = self.last[bad]
            events.append(SafetyEvent("non_finite", self._names(bad), "replaced by the last safe target"))
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
        self.last = self.last + step
        return self.last.copy(), events

    def check_hardware_errors(self, errors: dict[int, int]) -> None:
        """Raise :class:`SafetyStop` naming each motor (id and joint) with a hardware error and its error bits.
        ``errors``: motor id -> Hardware Error Status register value."""
        by_id = {m.id: m.joint for m in self.config.motors}
        found = []
        for ident, value in sorted(errors.items()):
            if value:
                bits = decode_hardware_error(value) or [f"0x{value:02x}"]
                found.append(f"motor {ident} ({by_id.get(ident, '?')}): {', '.join(bits)}")
        if found:
            raise SafetyStop("servo hardware error: " + "; ".join(found))

    def _names(self, mask: np.ndarray) -> tuple[str, ...]:
        return tuple(j for j, m in zip(self.joints, mask, strict=True) if m)

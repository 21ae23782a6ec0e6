"""Torque off in servo system identification: what a fitted model predicts for a pendulum released with torque off
(the friction of an unpowered gearbox that only its load drives), and whether the fit logs show such a swing, so
that the report can say when that friction was extrapolated from logs with torque on rather than fitted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from calibration.servo_sysid import ServoLog, phase_seconds
from sim.voltage_servo import DEFAULT_DT, PendulumLoad, VoltageServoParams, simulate

#: A released pendulum is at rest once it is stuck for good, or once its energy stays under what holding it still
#: at this angle from the bottom takes (rad); it swings through the bottom when it goes from beyond this on one side
#: to beyond it on the other.
REST_BAND = 0.05


def released_pendulum(
    params: VoltageServoParams, load: PendulumLoad, start: float = -np.pi / 2, duration: float = 6.0
) -> dict[str, Any]:
    """What ``params`` predict for ``load`` released at rest from ``start`` (rad; -pi/2: horizontal) with torque
    off: the friction of an unpowered gearbox that only the load drives, which logs with torque on never show.
    Returns ``rest_s`` (s until it is at rest, see :data:`REST_BAND`; None if not within ``duration``), ``rest_rad``
    (where it is at the end) and ``crossings`` (swings through the bottom); all None and ``diverged`` True when the
    simulation diverged (a step too large for the parameters)."""
    steps = int(round(duration / DEFAULT_DT)) + 1
    with np.errstate(all="ignore"):
        q = simulate(
            params.vector()[:, None],
            np.zeros((steps, 1)),
            np.zeros((steps, 1)),
            q0=np.array([start]),
            kp=np.zeros(1),
            vin=np.zeros(1),
            load_inertia=np.array([load.inertia]),
            load_gravity=np.array([load.gravity_torque]),
        )[:, 0]
    out: dict[str, Any] = {"start_rad": round(float(start), 4), "duration_s": duration}
    if not np.all(np.isfinite(q)):
        return out | {"rest_s": None, "rest_rad": None, "crossings": None, "diverged": True}
    speed = np.append(np.diff(q) / DEFAULT_DT, 0.0)  # the integrator's own speeds (q advances by dt * speed)
    energy = 0.5 * (load.inertia + params.armature) * speed**2 + load.gravity_torque * (1 - np.cos(q))
    settled = energy < load.gravity_torque * (1 - np.cos(REST_BAND))
    moving = np.flatnonzero(speed != 0.0)
    # stuck for good from here (nothing drives it once it sticks), wherever friction holds it; a stop shorter than
    # half a second before the end may be a turning point
    stuck_from = int(moving[-1]) + 1 if moving.size else 0
    stuck_from = stuck_from if stuck_from <= steps - int(round(0.5 / DEFAULT_DT)) else steps
    rest = min(int(np.argmax(settled)) if settled.any() else steps, stuck_from)
    swinging = q[np.abs(q) >= REST_BAND]
    return out | {
        "rest_s": None if rest >= steps else round(rest * DEFAULT_DT, 3),
        "rest_rad": round(float(q[-1]), 4),
        "crossings": int(np.count_nonzero(np.diff(np.signbit(swinging)))),
        "diverged": False,
    }


#: Seconds of a swing with torque off (the pendulum moving more than the rest band) that the fit logs need before
#: the report counts the unpowered gearbox's friction as fitted.
MIN_TORQUE_OFF_SWING_S = 1.0


def released_text(name: str, released: dict[str, Any]) -> str:
    if released.get("diverged"):
        return f"{name}: the simulation diverges"
    rest = (
        f"still moves after {released['duration_s']:.0f} s"
        if released["rest_s"] is None
        else f"at rest in {released['rest_s']:.1f} s"
    )
    return f"{name}: {rest}, {released['crossings']} swings through the bottom"


def coverage(
    params: VoltageServoParams, fit_logs: Sequence[ServoLog]
) -> tuple[float, float, dict[str, dict[str, Any]], str | None]:
    """Seconds of torque off in the fit logs, and of them those in logs where the pendulum moved with torque off;
    what ``params`` predict for each of their loads released from horizontal with torque off
    (:func:`released_pendulum`); and a warning when the logs swing with torque off for under
    :data:`MIN_TORQUE_OFF_SWING_S`."""
    torque_off_s = swinging_s = 0.0
    for log in fit_logs:
        off = ~log.torque_enable.astype(bool)
        seconds = phase_seconds(log, off)
        torque_off_s += seconds
        if off.any() and np.ptp(log.position[off]) > REST_BAND:
            swinging_s += seconds
    loads = {f"{log.load.mass} kg at {log.load.length} m": log.load for log in fit_logs}
    released = {name: released_pendulum(params, load) for name, load in sorted(loads.items())}
    if swinging_s >= MIN_TORQUE_OFF_SWING_S:
        return torque_off_s, swinging_s, released, None
    predicted = "; ".join(released_text(name, r) for name, r in released.items())
    return (
        torque_off_s,
        swinging_s,
        released,
        f"the fit logs swing with torque off for {swinging_s:.1f} s (under {MIN_TORQUE_OFF_SWING_S:.0f} s): the "
        "friction of an unpowered gearbox driven by its load alone is extrapolated from logs with torque on, not "
        f"fitted (released from horizontal with torque off, this model predicts {predicted}); fit with logs that "
        "also turn torque off (a lift and drop: s2r calibrate bench) to identify it",
    )

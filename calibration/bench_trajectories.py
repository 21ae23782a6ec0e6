"""Goal trajectories of the servo test bench (:mod:`calibration.servo_bench`), in families that differ in kind, so
that a fit can be validated on a family it did not see. Each gives, at times ``t`` (s from the start) of a recording
lasting ``duration`` s, the goal angle from the pendulum's rest (rad) and whether torque is on:

- ``sin_sin``: a product of two sines, 1.2 rad at most, one period in 1.7 s inside one in 6.7 s;
- ``up_and_down``: a raised-cosine lift to 1.5 rad and back, half the recording each way;
- ``lift_and_drop``: a smooth lift to -pi/2 (horizontal) over 2 s, then torque off: the pendulum falls and swings
  freely, which shows the friction of an unpowered gearbox (the protocol of Duclusaud et al., BAM, ICRA 2025);
- ``chirp``: a sine of 0.6 rad whose frequency rises linearly from 0 to 2 Hz over the recording (7.5 rad/s at
  most, inside the bench's speed limit).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Trajectory = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]


def _sin_sin(t: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    return 1.2 * np.sin(2 * np.pi * t / 1.7) * np.sin(2 * np.pi * t / 6.7), np.ones_like(t, dtype=bool)


def _up_and_down(t: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    phase = np.clip(t / duration, 0.0, 1.0)
    return 1.5 * 0.5 * (1 - np.cos(2 * np.pi * phase)), np.ones_like(t, dtype=bool)


def _lift_and_drop(t: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    s = np.clip(t / 2.0, 0.0, 1.0)
    return -np.pi / 2 * (3 * s**2 - 2 * s**3), t < 2.0


def _chirp(t: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    return 0.6 * np.sin(np.pi * 2.0 / duration * t**2), np.ones_like(t, dtype=bool)


#: Family name -> trajectory.
TRAJECTORIES: dict[str, Trajectory] = {
    "sin_sin": _sin_sin,
    "up_and_down": _up_and_down,
    "lift_and_drop": _lift_and_drop,
    "chirp": _chirp,
}


def goal_range(name: str, duration: float, limit: float) -> tuple[float, float]:
    """The lowest and highest goal (rad from rest) family ``name`` asks for in ``duration`` s, within +-``limit``."""
    goal, _ = TRAJECTORIES[name](np.linspace(0.0, duration, 2001), duration)
    goal = np.clip(goal, -limit, limit)
    return float(min(goal.min(), 0.0)), float(max(goal.max(), 0.0))

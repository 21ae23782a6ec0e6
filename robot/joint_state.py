"""The joint reading both backends produce: the simulated robot and the hardware robot."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JointState:
    """Joint readings in the robot config's joint order, SI units.

    position: rad (m for prismatic joints). velocity: rad/s (m/s). effort: N*m (N): the simulator's joint torque; on
    hardware the servo's output torque estimated from its present current or load (:mod:`real.dynamixel.motor_bus`).
    stamp_ns: host ``time.monotonic_ns()`` when read on hardware; simulated time in ns in the simulator.
    """

    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    stamp_ns: int

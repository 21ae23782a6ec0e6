"""Servos as the simulator sees them: a position (or velocity) loop with gains, limits and command latency.

PyBullet's joint motor is a velocity constraint solved with the contacts; with a finite maximum force, gains and
a joint velocity cap it behaves like a servo's position loop rather than an ideal actuator. On top of that this
module adds what the bus adds on a real robot: a command reaches the motor ``latency`` seconds after it was sent.

The parameters are plain floats per joint so that randomization and system identification can set them. With a
fitted voltage model (:mod:`sim.voltage_servo`) the position joints are DC motors behind the firmware's P loop
instead (see :class:`sim.pybullet_robot.PyBulletRobot`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from sim.voltage_servo import VoltageServoParams


@dataclass
class ServoParams:
    """Per-joint servo parameters, arrays in the robot's joint order.

    position_gain, velocity_gain: PyBullet motor gains (dimensionless; the motor drives the joint velocity toward
    ``position_gain * error / dt``-like targets). max_torque: N*m (N for prismatic joints). max_velocity: rad/s
    (m/s). damping: joint viscous damping, N*m*s/rad. latency: command delay, s (one value for the whole bus).
    """

    position_gain: np.ndarray
    velocity_gain: np.ndarray
    max_torque: np.ndarray
    max_velocity: np.ndarray
    damping: np.ndarray
    latency: float = 0.0
    #: A fitted DC motor model (``s2r sysid`` on test-bench logs) for position joints instead of PyBullet's
    #: position motor; with it, ``kp_register`` (per joint, the Position P Gain register) and ``supply_v`` (V).
    voltage: VoltageServoParams | None = None
    kp_register: np.ndarray | None = None
    supply_v: float = 12.0

    def __post_init__(self) -> None:
        n = len(self.max_torque)
        if self.voltage is not None:
            if self.kp_register is None or np.shape(self.kp_register) != (n,):
                raise ValueError(f"ServoParams.kp_register: a voltage model needs one P gain per joint ({n})")
            self.kp_register = np.asarray(self.kp_register, dtype=float)
            if not self.supply_v > 0:
                raise ValueError(f"ServoParams.supply_v: expected > 0 V, got {self.supply_v}")
        for name in ("position_gain", "velocity_gain", "max_torque", "max_velocity", "damping"):
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != (n,):
                raise ValueError(f"ServoParams.{name}: expected shape ({n},), got {arr.shape}")
            if np.any(arr < 0) or not np.all(np.isfinite(arr)):
                raise ValueError(f"ServoParams.{name}: expected finite non-negative values, got {arr}")
            setattr(self, name, arr)
        if not (0.0 <= self.latency < 1.0):
            raise ValueError(f"ServoParams.latency: expected 0 <= latency < 1 s, got {self.latency}")


@dataclass
class CommandDelay:
    """A FIFO of commands that become due ``latency`` seconds after they were sent (sim time)."""

    latency: float
    _queue: deque[tuple[float, np.ndarray]] = field(default_factory=deque)

    def push(self, now: float, command: np.ndarray) -> None:
        self._queue.append((now + self.latency, np.array(command, dtype=float)))

    def pop_due(self, now: float) -> np.ndarray | None:
        """The newest command due at ``now`` (older due ones are superseded), or None."""
        due = None
        # A tiny tolerance so that a command due exactly at a physics tick is applied at that tick.
        while self._queue and self._queue[0][0] <= now + 1e-9:
            due = self._queue.popleft()[1]
        return due

    def clear(self) -> None:
        self._queue.clear()

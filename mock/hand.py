"""A simulated operator's hand on a leader arm: the plant of a mock leader's servo emulator. The hand moves the arm
whatever the servos' torque (a leader's is off): each joint sweeps slowly around a pose, so that teleoperation on
mock hardware has something to follow."""

from __future__ import annotations

import math

import numpy as np

from robot.description import HardwareConfig


class HandPlant:
    """Joint ``k`` of ``config`` follows ``center[k] + amplitude * sin(2 pi t / period_s + k)`` (rad, or the joint's
    units), kept inside the joint's limits; the servos report it as their position (after the config's direction,
    offset and scale) and its rate of change as their velocity."""

    def __init__(self, config: HardwareConfig, center: np.ndarray, amplitude: float = 0.3, period_s: float = 6.0):
        self.config = config
        self.center = np.asarray(center, dtype=float)
        self.amplitude, self.period_s = amplitude, period_s
        self.t = 0.0
        self.lower = np.array([m.limits.lower for m in config.motors])
        self.upper = np.array([m.limits.upper for m in config.motors])

    def joints(self, t: float) -> np.ndarray:
        """Where the hand holds the joints at time ``t`` (s)."""
        phase = 2 * math.pi * t / self.period_s + np.arange(len(self.center))
        return np.clip(self.center + self.amplitude * np.sin(phase), self.lower, self.upper)

    def step(self, dt: float, servos: dict) -> None:
        before, self.t = self.joints(self.t), self.t + dt
        now = self.joints(self.t)
        for k, m in enumerate(self.config.motors):
            servo = servos[m.id]
            servo.position = now[k] / (m.direction * m.scale) + m.offset
            servo.velocity = (now[k] - before[k]) / (m.direction * m.scale) / dt if dt > 0 else 0.0

"""A servo emulator plant for calibration tests: a person holds the robot's joints where the test says."""

from __future__ import annotations

import numpy as np

from robot.description import HardwareConfig


class HeldArm:
    """The emulator's plant: the robot of ``config`` (the true one: its horns' offsets and directions) is held at
    ``joints`` (joint units, config order) with torque off."""

    def __init__(self, config: HardwareConfig) -> None:
        self.config = config
        self.joints = np.zeros(len(config.motors))

    def step(self, dt: float, servos) -> None:
        for k, m in enumerate(self.config.motors):
            servos[m.id].position = self.joints[k] / (m.direction * m.scale) + m.offset
            servos[m.id].velocity = 0.0

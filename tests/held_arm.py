"""A servo emulator plant for calibration tests: a person holds the robot's joints where the test says."""

from __future__ import annotations

import time
from collections.abc import Callable

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


class ScriptedOperator:
    """Poses the held arm (with a small hand error) and sweeps its joints through ``sweep`` (joint units) over about
    a second."""

    def __init__(
        self, plant: HeldArm, sweep: dict[str, tuple[float, float]], hand_error: float = 0.005, seed: int = 0
    ) -> None:
        self.plant, self.ranges, self.hand_error = plant, sweep, hand_error
        self.rng = np.random.default_rng(seed)
        self.names = [m.joint for m in plant.config.motors]

    def pose(self, name: str, joints: dict[str, float]) -> None:
        target = np.array([joints.get(j, 0.0) for j in self.names])
        self.plant.joints = target + self.rng.uniform(-self.hand_error, self.hand_error, len(target))
        time.sleep(0.1)

    def sweep(self, joints: list[str]) -> None:
        for s in np.linspace(0.0, 1.0, 60):
            pose = self.plant.joints.copy()
            for k, j in enumerate(self.names):
                if j in self.ranges:
                    lo, hi = self.ranges[j]
                    pose[k] = lo + (hi - lo) * (0.5 - 0.5 * np.cos(2 * np.pi * s))  # lo -> hi -> lo
            self.plant.joints = pose
            time.sleep(0.02)

    def console(self, rest: dict[str, float], prompts: list[str]) -> Callable[[str], str]:
        """A stand-in for ``input``: the person at the console of ``s2r calibrate motors`` does what each prompt
        asks (holds the arm, poses it at zero and at ``rest``, sweeps it); the prompts are kept in ``prompts``."""

        def answer(prompt: str) -> str:
            prompts.append(prompt)
            if "torque goes off" in prompt:
                pass  # holding the arm
            elif "zero pose" in prompt:
                self.pose("zero", {})
            elif "rest pose" in prompt:
                self.pose("rest", rest)
            else:
                self.sweep([])
            return ""

        return answer

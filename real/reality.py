"""A simulated reality for mock robots: one PyBullet task world, in a domain of your choosing, that the real driver
code meets through the servo emulator (motors) and librealsense's software device (camera).

The world is the task env's own (robot, table and object, or room and obstacles), built with its domain pinned
from a domain file or dict (any parameter name the sim accepts: the env's randomization at strength 0 plus these
pins), so a deployment on a mock robot is a sim-to-"real" transfer experiment through the whole hardware layer. The
servo emulator steps its physics in real time as packets arrive (:class:`~real.dynamixel.pybullet_plant.
PyBulletPlant` on the env's robot); the simulated camera renders it. A lock serializes the two threads.

The reality also knows what a real robot cannot: the privileged state (object pose, goal, scan), which a state
policy needs and an evaluation uses, and the episode's outcome, judged by the task env's own rules.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from real.dynamixel.emulator import EmulatedServo
from real.dynamixel.pybullet_plant import PyBulletPlant
from sim.randomization.config import load_domain


class Reality:
    """The world of ``task`` with ``domain`` pinned (``randomization``: what is not pinned, default "none")."""

    def __init__(
        self,
        task: str,
        domain: str | Path | dict[str, Any] | None = None,
        randomization: str = "none",
        seed: int = 0,
    ) -> None:
        from policies.train import task_env  # noqa: PLC0415 - gym envs load only for a mock robot

        self.task = task
        self.domain = load_domain(domain) if domain is not None else {}
        self.env = task_env(task, randomization)
        self.core = self.env.unwrapped
        self.lock = threading.RLock()
        self.episode_seed = seed
        self.info: dict[str, Any] = {}
        self._reset_world(seed)
        self.plant = PyBulletPlant(self.core.config, self.core.robot)
        self.core.robot.set_torque(np.zeros(len(self.core.config.motors)))  # servos power up with torque off

    def _reset_world(self, seed: int) -> None:
        _, self.info = self.env.reset(seed=seed, options={"domain": self.domain} if self.domain else None)
        self.episode_seed = seed

    def new_episode(self, seed: int) -> dict[str, Any]:
        """Rebuild the scene for another episode (new object pose or goal; the domain stays); the robot is placed
        at its start pose with torque off, as after a power cycle. Returns the env's reset info."""
        with self.lock:
            self._reset_world(seed)
            self.plant.attach(self.core.robot)
            self.core.robot.set_torque(np.zeros(len(self.core.config.motors)))
            return self.info

    # -- the servo emulator's plant ------------------------------------------------------------------------------
    def step(self, dt: float, servos: dict[int, EmulatedServo]) -> None:
        with self.lock:
            self.plant.step(dt, servos)

    # -- what only a simulation knows ------------------------------------------------------------------------------
    def privileged(self) -> np.ndarray:
        """The task's privileged state vector now (what a state policy takes beside proprioception)."""
        with self.lock:
            if self.task == "grasp":
                proprio = self.core.task.proprio(self.core.robot.read())
                n = self.core.task.n_joints
                return self.core._privileged(proprio[2 * n : 2 * n + 3].astype(float))[0].astype(np.float32)
            return self.core._privileged()[0].astype(np.float32)

    def outcome(self) -> tuple[bool, bool]:
        """(success, failure) of the world now, by the task env's rules."""
        with self.lock:
            return self.core.outcome()

    def close(self) -> None:
        with self.lock:
            self.env.close()

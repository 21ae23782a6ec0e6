"""Keyboard teleoperation for an arm without a leader arm: keys jog the tool in Cartesian steps and open or close the
gripper; the joint targets come from the grasp task's own inverse kinematics (:meth:`robot.tasks.grasp.GraspTask.
action_to_targets`: the tool's workspace box and reachable pitches), and :func:`real.teleop.teleoperate` sends them
through the follower's safety filter like a leader arm's joints.

Keys (one step each, the task's 2 cm): ``w`` / ``s`` tool forward / back (x), ``a`` / ``d`` left / right (y), ``r`` /
``f`` up / down (z), ``c`` close the gripper, ``o`` open it, ``q`` quit. A key held down repeats at the terminal's
rate; every key read in a control cycle counts, each axis clipped to one step per cycle.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

import numpy as np

from robot.description import HardwareConfig
from robot.joint_state import JointState
from robot.tasks.grasp import GraspTask

#: key -> (action index, sign): the grasp action's tool displacement (x, y, z in steps) and gripper command.
KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0),
    "s": (0, -1.0),
    "a": (1, 1.0),
    "d": (1, -1.0),
    "r": (2, 1.0),
    "f": (2, -1.0),
}
#: key -> gripper command (-1 open, 1 closed), held until the other key.
GRIPPER_KEYS = {"o": -1.0, "c": 1.0}
QUIT_KEY = "q"


class KeyboardLeader:
    """Joint targets for the arm of ``config`` from the keys read on file descriptor ``fd`` (a terminal in cbreak
    mode, or a pipe); ``follower``: the follower's joints now, where the tool target starts (read at the first
    cycle, once the follower is active). Same interface as :class:`real.teleop.LeaderArm`."""

    def __init__(self, config: HardwareConfig, fd: int, follower: Callable[[], JointState]) -> None:
        self.config, self.fd, self.follower = config, fd, follower
        self.task = GraspTask(config)
        self.gripper = -1.0
        self.quit = False
        self.keys_read = 0
        self._started = False

    def open(self) -> None:
        """Nothing to open: the keys come from ``fd``."""

    def close(self) -> None:
        """The caller owns ``fd``."""

    def __enter__(self) -> KeyboardLeader:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _keys(self) -> str:
        """Every key waiting on ``fd`` now (never blocks)."""
        out = b""
        while select.select([self.fd], [], [], 0.0)[0]:
            chunk = os.read(self.fd, 64)
            if not chunk:  # the other end closed: no more keys
                break
            out += chunk
        return out.decode("ascii", errors="ignore").lower()

    def read(self, attempts: int = 1) -> JointState:
        """This cycle's joint targets (config order; velocities and efforts zero), from the keys pressed since the
        last cycle; ``attempts`` is the leader arm's, unused."""
        if not self._started:
            now = self.follower()
            self.task.reset(now)
            self.gripper = 1.0 if self._closing(now.position[self.task.gripper_index]) > 0.5 else -1.0
            self._started = True
        action = np.zeros(4)
        for key in self._keys():
            self.keys_read += 1
            if key in KEYS:
                index, sign = KEYS[key]
                action[index] += sign
            elif key in GRIPPER_KEYS:
                self.gripper = GRIPPER_KEYS[key]
            elif key == QUIT_KEY:
                self.quit = True
        action[:3] = np.clip(action[:3], -1.0, 1.0)
        action[3] = self.gripper
        q = self.task.action_to_targets(action)
        zeros = np.zeros_like(q)
        return JointState(q, zeros, zeros, time.monotonic_ns())

    def _closing(self, position: float) -> float:
        """How far ``position`` is from open (0) to closed (1)."""
        a = self.config.arm
        return (float(position) - a.gripper_open) / (a.gripper_closed - a.gripper_open)

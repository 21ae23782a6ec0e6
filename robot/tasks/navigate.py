"""Navigation task code shared by the simulated and the hardware differential-drive base.

The goal is given in the frame the robot starts the episode in (x forward, y left, m). The task tracks the
robot's pose in that frame by wheel odometry, on both backends, so the policy sees the goal relative to where
the wheels say the robot is: the same estimate, with the same drift, in simulation and on hardware.

Action (2,), each in [-1, 1]: linear velocity (fraction of ``max_linear``) and angular velocity (fraction of
``max_angular``), turned into wheel velocity targets (rad/s) by the base's kinematics.
"""

from __future__ import annotations

import math

import numpy as np

from robot.description import HardwareConfig
from robot.joint_state import JointState

#: A goal is reached within this distance (m), in simulation, on a mock base (true pose) and on a real one (wheel
#: odometry).
GOAL_TOLERANCE = 0.15


class DiffDriveKinematics:
    """Unicycle <-> wheel velocities for wheel radius ``r`` (m) and track ``b`` (m)."""

    def __init__(self, wheel_radius: float, track: float) -> None:
        self.r, self.b = wheel_radius, track

    def wheel_velocities(self, v: float, w: float) -> tuple[float, float]:
        """Left and right wheel speeds (rad/s) for body velocity ``v`` (m/s) and yaw rate ``w`` (rad/s)."""
        return (v - w * self.b / 2) / self.r, (v + w * self.b / 2) / self.r

    def body_velocity(self, left: float, right: float) -> tuple[float, float]:
        """Body velocity (m/s) and yaw rate (rad/s) from wheel speeds (rad/s)."""
        return self.r * (left + right) / 2, self.r * (right - left) / self.b


class NavigateTask:
    """Observation and action mapping of the navigation task for the base in ``config`` (a
    :class:`~robot.tasks.base.Task`)."""

    robot_kind = "diff_drive"
    action_dim = 2
    proprio_dim = 7
    episode_steps = 300  # 30 s at the base's 10 Hz control rate
    scene_dims = 2  # the goal in the robot's frame

    def __init__(self, config: HardwareConfig) -> None:
        if config.base is None:
            raise ValueError(f"{config.name}: the navigation task needs a diff_drive base")
        self.config = config
        base = config.base
        self.kin = DiffDriveKinematics(base.wheel_radius, base.track)
        self.left = config.joint_names.index(base.left_wheel)
        self.right = config.joint_names.index(base.right_wheel)
        self.pose = np.zeros(3)  # odometry x, y (m), yaw (rad) in the start frame
        self.travelled = 0.0  # odometry path length this episode (m)
        self.goal = np.zeros(2)
        self._last_wheels: np.ndarray | None = None

    def start_pose(self) -> None:
        """A base starts an episode where it stands: no joint pose to drive to (see GraspTask.start_pose)."""
        return None

    def reset(self, joints: JointState, goal: np.ndarray | None = None) -> None:
        """Start an episode at the odometry origin with ``goal`` (x, y in m, start frame; None: the origin)."""
        self.pose = np.zeros(3)
        self.travelled = 0.0
        self.goal = np.zeros(2) if goal is None else np.asarray(goal, dtype=float).copy()
        self._last_wheels = joints.position[[self.left, self.right]].astype(float)

    def update(self, joints: JointState) -> None:
        """Integrate odometry from the wheel angles since the last reading.

        Each interval is taken as an arc of constant curvature (exact chord, midpoint heading).
        """
        wheels = joints.position[[self.left, self.right]].astype(float)
        d_left, d_right = wheels - self._last_wheels
        self._last_wheels = wheels
        ds, dth = self.kin.body_velocity(d_left, d_right)  # per reading: m, rad
        mid = self.pose[2] + dth / 2
        chord = ds * (math.sin(dth / 2) / (dth / 2) if abs(dth) > 1e-9 else 1.0)
        self.pose += [chord * math.cos(mid), chord * math.sin(mid), dth]
        self.travelled += abs(chord)
        self.pose[2] = (self.pose[2] + math.pi) % (2 * math.pi) - math.pi

    def goal_in_robot_frame(self) -> np.ndarray:
        """Goal (x forward, y left; m) relative to the odometry pose."""
        dx, dy = self.goal - self.pose[:2]
        c, s = math.cos(self.pose[2]), math.sin(self.pose[2])
        return np.array([c * dx + s * dy, -s * dx + c * dy])

    def action_to_targets(self, action: np.ndarray) -> np.ndarray:
        """Wheel velocity targets (rad/s, config joint order) for a policy action."""
        a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        base = self.config.base
        left, right = self.kin.wheel_velocities(a[0] * base.max_linear, a[1] * base.max_angular)
        targets = np.zeros(len(self.config.joint_names))
        targets[self.left], targets[self.right] = left, right
        return targets

    def proprio(self, joints: JointState) -> np.ndarray:
        """Wheel speeds (2, rad/s), odometry v (m/s) and w (rad/s), goal distance (m), cos and sin of bearing."""
        wl, wr = joints.velocity[self.left], joints.velocity[self.right]
        v, w = self.kin.body_velocity(wl, wr)
        g = self.goal_in_robot_frame()
        dist = float(np.hypot(*g))
        bearing = math.atan2(g[1], g[0])
        return np.array([wl, wr, v, w, dist, math.cos(bearing), math.sin(bearing)], dtype=np.float32)


TASK = NavigateTask

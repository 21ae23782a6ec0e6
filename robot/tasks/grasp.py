"""Grasp task code shared by the simulated and the hardware arm.

What a policy sees and what its action means, written once: the observation is assembled from joint readings
(and camera frames, by the caller), and an action becomes joint targets through the arm's kinematics. The
same object runs inside ``s2r/Grasp-v0`` and on the real OpenManipulator-X.

Action (4,), each in [-1, 1]: tool displacement dx, dy, dz (scaled by ``max_step`` m per control cycle, in the
arm base frame) and the gripper command (-1 fully open, +1 fully closed). The tool points straight down when
it can; near the edge of the workspace it tilts up (smaller pitch) to stay reachable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot.description import HardwareConfig
from robot.joint_state import JointState
from robot.kinematics import ArmKinematics, UnreachableError


@dataclass(frozen=True)
class Workspace:
    """Box the tool target is kept in, arm base frame, m."""

    low: tuple[float, float, float] = (0.08, -0.16, 0.004)
    high: tuple[float, float, float] = (0.26, 0.16, 0.16)


#: Tool pitches tried in order (rad below horizontal): straight down first, then tilted toward the horizon.
PITCHES = tuple(math.pi / 2 - k * math.radians(7.5) for k in range(7))


class GraspTask:
    """Observation and action mapping of the grasp task for the arm in ``config`` (a
    :class:`~robot.tasks.base.Task`)."""

    robot_kind = "arm"
    action_dim = 4
    episode_steps = 60  # 6 s at the arm's 10 Hz control rate
    scene_dims = 3  # the object's position

    def __init__(self, config: HardwareConfig, max_step: float = 0.02, workspace: Workspace | None = None) -> None:
        if config.arm is None:
            raise ValueError(f"{config.name}: the grasp task needs an arm")
        self.config = config
        self.kin = ArmKinematics(config)
        self.max_step = max_step
        self.workspace = workspace or Workspace()
        self.gripper_index = config.joint_names.index(config.arm.gripper_joint)
        self.n_joints = len(config.joint_names)
        self.rest = np.array([config.arm.rest[j] for j in config.joint_names])
        self.ee_target = np.zeros(3)
        self.q_target = self.rest.copy()

    #: Where an episode starts: the tool above the workspace (m, arm base frame), pointing down, gripper open.
    START_TOOL = (0.15, 0.0, 0.10)

    def start_pose(self) -> np.ndarray:
        """Joint positions (config order) an episode starts from, in simulation and on the robot alike: the tool at
        :data:`START_TOOL`, pointing as far down as the arm's limits allow (:data:`PITCHES`), gripper open."""
        for pitch in PITCHES:
            try:
                q = self.kin.inverse(np.array(self.START_TOOL), pitch, self.rest)
            except UnreachableError:
                continue
            q[self.gripper_index] = self.config.arm.gripper_open
            return q
        raise UnreachableError(f"{self.config.name}: the start tool position {self.START_TOOL} is out of reach")

    @property
    def proprio_dim(self) -> int:
        """Joint positions, joint velocities, tool position (3) and tool pitch (1)."""
        return 2 * self.n_joints + 4

    def reset(self, joints: JointState, goal: np.ndarray | None = None) -> None:
        """Start an episode from the measured joints: the tool target is where the tool is. The grasp task has no
        goal input (the object is found by the policy): ``goal`` must be None."""
        if goal is not None:
            raise ValueError("the grasp task takes no goal")
        pos, _ = self.kin.forward(joints.position)
        self.ee_target = np.clip(pos, self.workspace.low, self.workspace.high)
        self.q_target = np.array(joints.position, dtype=float)

    def update(self, joints: JointState) -> None:
        """Nothing to integrate: every observation is computed from the reading itself."""

    def gripper_target(self, command: float) -> float:
        """Gripper joint target for a command in [-1 (open), 1 (closed)]."""
        a = self.config.arm
        frac = (float(np.clip(command, -1.0, 1.0)) + 1.0) / 2.0
        return a.gripper_open + frac * (a.gripper_closed - a.gripper_open)

    def action_to_targets(self, action: np.ndarray) -> np.ndarray:
        """Joint position targets (config order) for a policy action; keeps the last target if unreachable."""
        action = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        candidate = np.clip(self.ee_target + action[:3] * self.max_step, self.workspace.low, self.workspace.high)
        q = self.q_target.copy()
        for pitch in PITCHES:
            try:
                q = self.kin.inverse(candidate, pitch, self.q_target)
            except UnreachableError:
                continue
            self.ee_target = candidate
            break
        q[self.gripper_index] = self.gripper_target(action[3])
        self.q_target = q
        return q

    def targets_to_action(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """The action that moves the task's joint targets from ``before`` to ``after`` (config order), as far as the
        action can say it: the tool's displacement in units of ``max_step`` (clipped to [-1, 1]) and the gripper
        command of ``after``'s gripper target. Turns logged commands (a teleoperated demonstration) into actions."""
        moved = self.kin.forward(after)[0] - self.kin.forward(before)[0]
        a = self.config.arm
        closing = (float(after[self.gripper_index]) - a.gripper_open) / (a.gripper_closed - a.gripper_open)
        return np.clip(np.append(moved / self.max_step, 2 * closing - 1), -1.0, 1.0).astype(np.float32)

    def proprio(self, joints: JointState) -> np.ndarray:
        """Proprioceptive observation (float32): q, qd, tool position (m), tool pitch (rad)."""
        pos, pitch = self.kin.forward(joints.position)
        return np.concatenate([joints.position, joints.velocity, pos, [pitch]]).astype(np.float32)


TASK = GraspTask

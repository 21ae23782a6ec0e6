"""The task protocol: what a task means, written once and run alike by the simulated envs (``sim/envs``) and the
hardware robot (:class:`real.robot.TaskRobot`).

A task module in this folder defines one class following :class:`Task` and names it ``TASK`` at module level;
the module's name is the task's name (``s2r train --task NAME``). Its env in ``sim/envs`` builds the scene and
judges success; everything a policy sees or commands goes through the task object.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np

from robot.description import HardwareConfig
from robot.joint_state import JointState


class Task(Protocol):
    """One episode's task code for the robot in ``config``.

    Per episode: :meth:`reset` with the measured joints (and the goal, for goal-conditioned tasks); per control
    cycle: :meth:`update` with each new reading (state the task integrates, such as odometry), :meth:`proprio`
    for the policy's proprioceptive observation, :meth:`action_to_targets` for the joint targets of an action.
    """

    robot_kind: ClassVar[str]  # the hardware config ``kind`` the task drives ("arm", "diff_drive")
    action_dim: ClassVar[int]  # policy actions are (action_dim,) in [-1, 1]
    episode_steps: ClassVar[int]  # control cycles in an episode, in simulation and on the robot
    scene_dims: ClassVar[int]  # leading entries of the privileged vector the episode's scene fixes at the first step

    def __init__(self, config: HardwareConfig) -> None: ...

    @property
    def proprio_dim(self) -> int:
        """Length of :meth:`proprio`'s vector."""
        ...

    def start_pose(self) -> np.ndarray | None:
        """Joint positions (config order) an episode starts from, or None when the robot starts where it is."""
        ...

    def reset(self, joints: JointState, goal: np.ndarray | None = None) -> None:
        """Start an episode from the measured ``joints``; ``goal`` for goal-conditioned tasks (task units)."""
        ...

    def update(self, joints: JointState) -> None:
        """Take in a new reading (once per control cycle, before :meth:`proprio`)."""
        ...

    def proprio(self, joints: JointState) -> np.ndarray:
        """The proprioceptive observation (float32) for ``joints``."""
        ...

    def action_to_targets(self, action: np.ndarray) -> np.ndarray:
        """Joint targets (config order, SI units of each motor's mode) for a policy action."""
        ...

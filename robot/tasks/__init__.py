"""Task code shared by the simulated and the hardware robots."""

from __future__ import annotations

from typing import Any

#: The robot kind (hardware config ``kind``) each task drives.
TASK_ROBOT_KINDS = {"grasp": "arm", "navigate": "diff_drive"}


def task_class(task: str) -> Any:
    """The task code class of ``task`` (:class:`~robot.tasks.grasp.GraspTask` or
    :class:`~robot.tasks.navigate.NavigateTask`); ValueError for another name."""
    if task == "grasp":
        from robot.tasks.grasp import GraspTask

        return GraspTask
    if task == "navigate":
        from robot.tasks.navigate import NavigateTask

        return NavigateTask
    raise ValueError(f"unknown task {task!r}; known: {', '.join(TASK_ROBOT_KINDS)}")

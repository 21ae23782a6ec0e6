"""Task code shared by the simulated and the hardware robots: one module per task, named as the task, defining a
:class:`~robot.tasks.base.Task` class it names ``TASK`` (see :mod:`robot.tasks.base`)."""

from __future__ import annotations

import importlib
from typing import Literal

from robot.task_names import task_names
from robot.tasks.base import Task


def task_class(task: str) -> type[Task]:
    """The task code class of ``task`` (e.g. :class:`~robot.tasks.grasp.GraspTask`); ValueError naming the known
    tasks for another name."""
    if task not in task_names():
        raise ValueError(f"unknown task {task!r}; known: {', '.join(task_names())}")
    return importlib.import_module(f"robot.tasks.{task}").TASK


def task_with_kind(kind: str) -> str:
    """The first task (by name) that drives a robot of hardware config ``kind`` ("arm", "diff_drive");
    ValueError when none does."""
    for name in task_names():
        if task_class(name).robot_kind == kind:
            return name
    raise ValueError(f"no task drives a robot of kind {kind!r}; tasks: {', '.join(task_names())}")


#: The task names as a type (the s2r commands' and configs' choices), read from this folder.
TaskName = Literal[tuple(task_names())]  # type: ignore[valid-type]

"""Task code shared by the simulated and the hardware robots: one module per task, named as the task, defining a
:class:`~robot.tasks.base.Task` class it names ``TASK`` (see :mod:`robot.tasks.base`)."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path

from robot.tasks.base import Task

_NOT_TASKS = {"base"}


@functools.cache
def task_names() -> list[str]:
    """The tasks this folder defines (module names), sorted (listed once per process)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name not in _NOT_TASKS)


def task_class(task: str) -> type[Task]:
    """The task code class of ``task`` (e.g. :class:`~robot.tasks.grasp.GraspTask`); ValueError naming the known
    tasks for another name."""
    if task not in task_names():
        raise ValueError(f"unknown task {task!r}; known: {', '.join(task_names())}")
    return importlib.import_module(f"robot.tasks.{task}").TASK

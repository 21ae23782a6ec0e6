"""The names of the tasks ``robot/tasks`` defines, read from the folder without importing the task code (the robot
description validates a mock robot's task with it, and the task code imports the description)."""

from __future__ import annotations

import functools
import pkgutil
from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
_NOT_TASKS = {"base"}


@functools.cache
def task_names() -> list[str]:
    """The tasks ``robot/tasks`` defines (module names), sorted (listed once per process)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(TASKS_DIR)]) if m.name not in _NOT_TASKS)

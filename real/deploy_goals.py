"""A navigation episode's route on a robot: the goals given with ``s2r deploy --goal X,Y`` or ``--goals FILE``
(m, in the frame of the base's start pose), visited in order in one episode, each judged reached within the task's
tolerance: by the mock reality from the true pose, or on a real base from wheel odometry (the task's own pose
estimate, as the policy sees it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from robot.tasks.navigate import GOAL_TOLERANCE


def parse_goal(text: str) -> list[float]:
    """``"X,Y"`` (m) as [x, y]; ValueError naming the text otherwise."""
    parts = text.replace(" ", "").split(",")
    try:
        x, y = (float(v) for v in parts)
    except ValueError:
        raise ValueError(f"--goal {text!r}: expected X,Y in metres, e.g. 1.5,-0.5") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"--goal {text!r}: not finite")
    return [x, y]


def load_goals(path: str | Path) -> list[list[float]]:
    """The route in a YAML file: a list of [x, y] pairs (m, start frame), at least one."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"--goals {path}: cannot read ({e})") from None
    if not isinstance(data, list) or not data:
        raise ValueError(f"--goals {path}: expected a YAML list of [x, y] pairs (m), e.g. [[1.0, 0.0], [1.0, 1.0]]")
    goals = []
    for i, g in enumerate(data):
        ok = (
            isinstance(g, list)
            and len(g) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in g)
        )
        if not ok or not all(math.isfinite(float(v)) for v in g):
            raise ValueError(f"--goals {path}: entry {i} is {g!r}; expected [x, y] in metres")
        goals.append([float(g[0]), float(g[1])])
    return goals


@dataclass
class Route:
    """The goals of one episode (m, start frame) and how far the robot got."""

    goals: list[list[float]]
    index: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def goal(self) -> np.ndarray:
        return np.asarray(self.goals[self.index], dtype=float)

    @staticmethod
    def reached_by_odometry(goal_in_robot_frame: np.ndarray) -> bool:
        """Arrival as a real base judges it: the goal within the task's tolerance of the odometry pose."""
        return bool(np.hypot(*goal_in_robot_frame) < GOAL_TOLERANCE)

    def arrive(self, step: int, time_s: float, distance_m: float) -> bool:
        """Record arrival at the current goal; True when it was the last, else the next becomes current."""
        self.records.append(
            {
                "goal": self.goals[self.index],
                "reached": True,
                "step": step,
                "time_s": round(time_s, 2),
                "distance_m": round(distance_m, 3),
            }
        )
        if self.index == len(self.goals) - 1:
            return True
        self.index += 1
        return False

    def summary(self) -> list[dict[str, Any]]:
        """Every goal: those reached with their step, time and odometry distance, the rest not reached."""
        return self.records + [{"goal": g, "reached": False} for g in self.goals[len(self.records) :]]

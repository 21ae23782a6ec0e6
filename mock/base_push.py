"""A reality's ``base.push``: the pinned horizontal force on a mobile base, applied as the simulation applies it
(:meth:`sim.envs.navigate_env.NavigateEnv.step`): for one control period every ``every_steps`` periods of the
episode, the first after ``every_steps`` periods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sim.randomization.config import load_randomization

#: The randomization target this schedule applies.
PUSH_TARGET = "base.push"


class PushSchedule:
    """When and how hard a reality pushes its base: ``force`` (N, world x and y), ``period_s`` the control period,
    ``every_steps`` the periods between pushes (the term's own)."""

    def __init__(self, force: Any, period_s: float, every_steps: int) -> None:
        self.force = np.asarray(force, dtype=float).reshape(2)
        self.period_s = float(period_s)
        self.every_steps = int(every_steps)
        self.active = bool(np.any(self.force != 0.0)) and self.every_steps > 0

    @classmethod
    def of_reality(cls, task: str, params: Mapping[str, Any], period_s: float) -> PushSchedule:
        """The schedule of a reality of ``task`` with resolved ``params`` (no push where the task has none)."""
        every = [t.every_steps for t in load_randomization("default", task).terms if t.target == PUSH_TARGET]
        if not every or PUSH_TARGET not in params:
            return cls([0.0, 0.0], period_s, 0)
        return cls(params[PUSH_TARGET], period_s, int(every[0] or 0))

    def force_at(self, t_s: float) -> np.ndarray | None:
        """The force (N) acting ``t_s`` seconds into the episode, None when none does."""
        if not self.active:
            return None
        step = int(t_s / self.period_s + 1e-9)
        return self.force if step > 0 and step % self.every_steps == 0 else None

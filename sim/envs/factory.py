"""The one place a task's env is made from its name, for training, distillation, evaluation and OSI."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from sim import TASK_IDS
from sim.randomization.dynamics import DynamicsObservation, DynamicsSpec


def task_env(
    task: str, randomization: str = "default", obs_mode: str = "state", universal: bool = False, **kwargs: Any
) -> gym.Env:
    """The task's env; ``universal`` adds the normalized dynamics parameters mu as ``observation["dynamics"]``
    (the input of a universal policy, :mod:`sim.randomization.dynamics`), with the ranges of ``randomization``."""
    if task not in TASK_IDS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_IDS)}")
    env = gym.make(TASK_IDS[task], obs_mode=obs_mode, randomization=randomization, **kwargs)
    if universal:
        env = DynamicsObservation(env, DynamicsSpec.for_task(task, env.unwrapped.randomization))
    return env

"""The one place a task's env is made from its name, for training, distillation, evaluation and OSI."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from sim import TASK_IDS
from sim.observation_history import HistoryObservation
from sim.randomization.dynamics import DynamicsObservation, DynamicsSpec


def env_class(task: str) -> type[gym.Env]:
    """The env class of ``task`` (``<Task>Env`` in ``sim/envs/<task>_env.py``, as :mod:`sim` registers it)."""
    if task not in TASK_IDS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_IDS)}")
    return load_env_creator(gym.spec(TASK_IDS[task]).entry_point)


def universal_terms(task: str) -> tuple[str, ...]:
    """The domain terms that make up mu for ``task`` (a universal policy's dynamics input): its env's
    ``universal_terms``."""
    terms = getattr(env_class(task), "universal_terms", None)
    if terms is None:
        raise ValueError(f"no dynamics parameters defined for task {task!r}")
    return tuple(terms)


def robot_kwargs(robot: str | None) -> dict[str, Any]:
    """The env keyword that simulates ``robot`` (a hardware config name) instead of the task's own (None: none)."""
    return {} if robot is None else {"robot": robot}


def task_env(
    task: str,
    randomization: str = "default",
    obs_mode: str = "state",
    universal: bool = False,
    history: int = 0,
    **kwargs: Any,
) -> gym.Env:
    """The task's env; ``universal`` adds the normalized dynamics parameters mu as ``observation["dynamics"]``
    (the input of a universal policy, :mod:`sim.randomization.dynamics`), with the ranges of ``randomization``;
    ``history`` > 0 adds the last that many steps' readings and actions as ``observation["history"]`` (the input
    of a policy with memory, :mod:`sim.observation_history`)."""
    if task not in TASK_IDS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_IDS)}")
    env = gym.make(TASK_IDS[task], obs_mode=obs_mode, randomization=randomization, **kwargs)
    if universal:
        spec = DynamicsSpec.for_task(task, env.unwrapped.randomization, universal_terms(task))
        env = DynamicsObservation(env, spec)
    if history > 0:
        env = HistoryObservation(env, history)
    return env

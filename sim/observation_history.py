"""A memory of the last steps as an observation: what a policy with memory reads (``s2r train --history N``) and
what an online estimator reads (:mod:`policies.osi`). Each step's *reading* is a few of the observation's keys
(the proprioception, the joint efforts, ...) joined; each is paired with the action that preceded it.

:class:`HistoryObservation` adds the window to a task env's observation as ``observation["history"]``, so that a
policy trained on it (and the behaviour cloning before it) sees what the same :class:`History` fed by the policy
itself shows on the robot (:class:`policies.memory.MemoryPolicy`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np


class History:
    """The last H (reading, previous action) pairs, flattened oldest first; filled with the first reading and
    zero actions at the start of an episode. A reading is a few observation keys joined (:func:`reading`)."""

    def __init__(self, horizon: int, reading_dim: int, action_dim: int) -> None:
        if horizon < 1:
            raise ValueError(f"history must be >= 1 step, got {horizon}")
        self.horizon, self.reading_dim, self.action_dim = horizon, reading_dim, action_dim
        self._readings: deque[np.ndarray] = deque(maxlen=horizon)
        self._actions: deque[np.ndarray] = deque(maxlen=horizon)

    @property
    def size(self) -> int:
        return self.horizon * (self.reading_dim + self.action_dim)

    def reset(self) -> None:
        self._readings.clear()
        self._actions.clear()

    def push_reading(self, values: np.ndarray) -> None:
        """A new reading (call once per cycle, before :meth:`window`)."""
        r = np.asarray(values, dtype=np.float32).ravel()
        if r.size != self.reading_dim:
            raise ValueError(f"the reading has {r.size} values; the history takes {self.reading_dim}")
        if not self._readings:
            for _ in range(self.horizon):
                self._readings.append(r)
                self._actions.append(np.zeros(self.action_dim, np.float32))
        else:
            self._readings.append(r)

    def push_action(self, action: np.ndarray) -> None:
        """The action sent after the latest reading."""
        self._actions.append(np.asarray(action, dtype=np.float32).ravel())

    def window(self) -> np.ndarray:
        """Readings t-H+1..t, each with the action that preceded it (the action deque lags one step)."""
        return np.concatenate([np.concatenate([r, a]) for r, a in zip(self._readings, self._actions, strict=True)])


#: What a policy with memory reads each step, of what the task's state observation has (a base's ``scan`` too: the
#: laser's view of the room moving is what shows how far the wheels really went).
MEMORY_READINGS = ("proprio", "effort", "scan")


def reading(observation: dict[str, Any], keys: tuple[str, ...]) -> np.ndarray:
    """One step's reading: the ``keys`` of ``observation`` flattened and joined in that order (float32)."""
    return np.concatenate([np.ravel(observation[k]) for k in keys]).astype(np.float32)


def memory_readings(keys: Any) -> tuple[str, ...]:
    """The readings of :data:`MEMORY_READINGS` that an observation with ``keys`` (names) has, in that order."""
    return tuple(k for k in MEMORY_READINGS if k in keys)


class HistoryObservation(gym.Wrapper):
    """Adds ``observation["history"]``: the last ``horizon`` readings (:func:`memory_readings`: proprioception, joint
    efforts, and a base's scan), each with the action before it (zeros before the first), oldest first; at reset the
    first reading fills the window."""

    def __init__(self, env: gym.Env, horizon: int) -> None:
        super().__init__(env)
        spaces = env.observation_space.spaces
        self.readings = memory_readings(spaces)
        dim = sum(int(np.prod(spaces[k].shape)) for k in self.readings)
        self.history = History(horizon, dim, int(env.action_space.shape[0]))
        self.observation_space = gym.spaces.Dict(
            {**spaces, "history": gym.spaces.Box(-np.inf, np.inf, (self.history.size,), np.float32)}
        )

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.history.reset()
        self.history.push_reading(reading(obs, self.readings))
        return {**obs, "history": self.history.window()}, info

    def step(self, action: Any):
        self.history.push_action(np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0))
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.history.push_reading(reading(obs, self.readings))
        return {**obs, "history": self.history.window()}, reward, terminated, truncated, info

"""The one episode loop: every seeded rollout in the project (training evaluation, DAgger collection and
evaluation, OSI data collection, ``s2r eval``, the demo) runs an env through :func:`run_episode`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

#: ``act(observation, info) -> action``: what drives the episode (a policy, an expert, a mixture).
Act = Callable[[dict[str, Any], dict[str, Any]], np.ndarray]


@dataclass
class Episode:
    """How one episode went: ``success`` is the env's ``is_success`` at the end; ``info`` the last step's info."""

    seed: int
    success: bool
    length: int
    episode_return: float
    info: dict[str, Any]


def run_episode(
    env: gym.Env,
    act: Act,
    seed: int,
    on_reset: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    on_step: Callable[[dict[str, Any], dict[str, Any], np.ndarray], None] | None = None,
    after_step: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
) -> Episode:
    """Reset ``env`` with ``seed`` and step it with ``act`` until it terminates or truncates.

    ``on_reset(obs, info)``: after the reset; ``on_step(obs, info, action)``: after each action is chosen, with the
    observation it was chosen from, before the env steps; ``after_step(obs, info)``: after each step.
    """
    obs, info = env.reset(seed=seed)
    if on_reset is not None:
        on_reset(obs, info)
    ret, length = 0.0, 0
    while True:
        action = act(obs, info)
        if on_step is not None:
            on_step(obs, info, action)
        obs, reward, terminated, truncated, info = env.step(action)
        ret += reward
        length += 1
        if after_step is not None:
            after_step(obs, info)
        if terminated or truncated:
            return Episode(seed, bool(info["is_success"]), length, float(ret), info)

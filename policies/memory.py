"""A policy with memory: it reads the last H steps of proprioception, joint efforts and its own actions beside the
task's state observation (``s2r train --history H``), so that it can infer from recent history what the
randomization hides from a single reading (the object's mass once lifted, the servos' strength and lag), as Peng
et al. 2018 ("Sim-to-Real Transfer of Robotic Control with Dynamics Randomization") do with an LSTM. The window is
the :class:`~sim.observation_history.History` the training env fed it, kept here from the robot's own readings.

Trained in simulation on ``observation["history"]`` (:class:`~sim.observation_history.HistoryObservation`); on the
robot the policy keeps that window itself: ``act`` takes the task's observation plus ``effort``, and ``memory``
(the window, for the log) is what it acted on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from policies.bundle import BundlePolicy, effort_dim
from robot.spec import ObsSpec
from sim.observation_history import History, reading

HISTORY_KEY = "history"


class MemoryPolicy(BundlePolicy):
    """A state policy whose network also takes ``history``: the window of the last ``meta["memory"]["horizon"]``
    steps, built here from each observation's ``meta["memory"]["readings"]`` (proprioception, efforts, a base's
    scan) and the policy's own actions."""

    def __init__(self, meta: dict[str, Any], network: nn.Module, path: Path | None = None) -> None:
        super().__init__(meta, network, path)
        self.network_spec = self.obs_spec  # what the network takes: the task's state and the history
        memory = meta["memory"]
        if HISTORY_KEY not in self.network_spec.keys:
            raise ValueError(
                f"a memory entry, but the policy's observation {list(self.network_spec.keys)} has no history"
            )
        efforts = effort_dim(meta)
        shapes = {k: v for k, v in self.network_spec.shapes.items() if k != HISTORY_KEY} | {"effort": (efforts,)}
        self.readings = tuple(memory.get("readings", ("proprio", "effort")))
        missing = [k for k in self.readings if k not in shapes]
        if missing:
            raise ValueError(f"the memory reads {missing}, which the policy's observation does not have")
        reading_dim = sum(int(np.prod(shapes[k])) for k in self.readings)
        self.history = History(int(memory["horizon"]), reading_dim, self.action_dim)
        if (self.history.size,) != self.network_spec.shapes[HISTORY_KEY]:
            raise ValueError(
                f"the history of {memory['horizon']} steps of {list(self.readings)} holds {self.history.size} "
                f"values; the network takes {self.network_spec.shapes[HISTORY_KEY]}"
            )
        keys = [k for k in self.network_spec.keys if k != HISTORY_KEY] + ["effort"]
        self.obs_spec = ObsSpec(tuple(keys), {k: shapes[k] for k in keys})
        self.memory: list[float] | None = None

    def reset(self) -> None:
        self.history.reset()
        self.memory = None

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        """The action for one observation (the task's state and ``effort``); the window it read is ``memory``."""
        self.obs_spec.check(observation)
        self.history.push_reading(reading(observation, self.readings))
        window = self.history.window()
        self.memory = window.tolist()
        action = self.act_flat(self.network_spec.flatten({**observation, HISTORY_KEY: window}))
        self.history.push_action(action)
        return action

"""Replaying hardware logs, three ways.

- :class:`ReplayRobot` plays a log's joint readings back as if it were the hardware (``read()`` in order, ``write()``
  recorded), for testing code downstream of the robot without one.
- :func:`check_policy` recomputes a policy's actions from the logged observations (episode by episode, so stateful
  policies see the same history) and reports the largest difference: a regression check for a policy bundle or its
  preprocessing.
- :func:`sim_replay` drives the simulated robot with the logged commands, open loop from the first logged state,
  and reports how far its joint trajectory drifts from the logged one: the input of system identification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from real.hardware_log import IMAGE_KEYS, LogError
from real.log_reader import log_metadata, read_log
from robot.config_file import load_hardware_config
from robot.description import HardwareConfig
from robot.joint_state import JointState


def log_robot_config(path: str | Path, robot: str | HardwareConfig | None) -> HardwareConfig:
    """``robot`` (a config or its name), else the robot the log names (a mock one by its mock config)."""
    if isinstance(robot, HardwareConfig):
        return robot
    name = robot or log_metadata(path).get("robot")
    if not name:
        raise LogError(f"{path}: the log does not name its robot; give one")
    if name.endswith("_mock"):
        name = f"mock/{name[: -len('_mock')]}"
    return load_hardware_config(name)


class ReplayRobot:
    """Reads a log's ``/joint_states`` back in order; ``write()`` keeps what it is given in ``written``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.readings = [
            JointState(
                position=np.asarray(m.data["position"]),
                velocity=np.asarray(m.data["velocity"]),
                effort=np.asarray(m.data["effort"]),
                stamp_ns=m.stamp_ns,
            )
            for m in read_log(path, topics=["/joint_states"])
        ]
        if not self.readings:
            raise LogError(f"{self.path}: no /joint_states to replay")
        self.index = 0
        self.written: list[np.ndarray] = []

    def read(self) -> JointState:
        if self.index >= len(self.readings):
            raise EOFError(f"{self.path}: all {len(self.readings)} readings replayed")
        reading = self.readings[self.index]
        self.index += 1
        return reading

    def write(self, targets: np.ndarray) -> np.ndarray:
        self.written.append(np.asarray(targets, dtype=float))
        return self.written[-1]


def log_cycles(path: str | Path) -> list[dict[str, Any]]:
    """Per control cycle: episode, observation, action, sent command and joint reading, in log order."""
    cycles: list[dict[str, Any]] = []
    episode = -1
    current: dict[str, Any] = {}
    images = [f"/policy/observation/{key}" for key in IMAGE_KEYS]
    topics = ["/episode", "/joint_states", "/policy/observation", *images, "/policy/action", "/command"]
    for m in read_log(path, topics=topics):
        if m.topic == "/episode" and m.data.get("event") == "start":
            episode = int(m.data["episode"])
        elif m.topic == "/joint_states":
            current = {"episode": episode, "joints": m.data, "stamp_ns": m.stamp_ns}
        elif m.topic == "/policy/observation":
            current["observation"] = dict(m.data)
        elif m.topic in images and "observation" in current:
            current["observation"][m.topic.rsplit("/", 1)[1]] = m.data
        elif m.topic == "/policy/action":
            current["action"] = np.asarray(m.data["action"], dtype=np.float32)
        elif m.topic == "/command" and current:
            current["sent"] = np.asarray(m.data["sent"], dtype=float)
            cycles.append(current)
            current = {}
    return cycles

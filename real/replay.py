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

from real.hardware_config import HardwareConfig, load_hardware_config
from real.hardware_log import IMAGE_KEYS, LogError, log_metadata, read_log
from sim.joint_state import JointState


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


def check_policy(path: str | Path, policy_path: str | Path, atol: float = 1e-5) -> dict[str, Any]:
    """Recompute every logged action from its logged observation with the bundle at ``policy_path``; report the
    largest absolute difference, where it happened, and whether it is within ``atol``."""
    import policies

    policy = policies.load(policy_path)
    cycles = [c for c in log_cycles(path) if "observation" in c and "action" in c]
    if not cycles:
        raise LogError(f"{path}: no logged policy observations and actions to check")
    worst, worst_at, diffs = 0.0, None, []
    episode = None
    for i, c in enumerate(cycles):
        if c["episode"] != episode:
            episode = c["episode"]
            policy.reset()
        obs = {
            k: np.asarray(v, dtype=np.uint8 if k == "rgb" else np.float32).reshape(policy.obs_spec.shapes[k])
            for k, v in c["observation"].items()
        }
        missing = sorted(set(policy.obs_spec.keys) - set(obs))
        if missing:
            raise LogError(f"{path}: the logged observations lack {missing}, which {policy_path} reads")
        diff = float(np.max(np.abs(policy.act(obs) - c["action"])))
        diffs.append(diff)
        if diff > worst:
            worst, worst_at = diff, {"cycle": i, "episode": episode}
    return {
        "log": str(path),
        "policy": str(policy_path),
        "cycles": len(cycles),
        "max_abs_difference": worst,
        "mean_abs_difference": float(np.mean(diffs)),
        "worst": worst_at,
        "atol": atol,
        "matches": worst <= atol,
    }


def sim_replay_errors(
    cycles: list[dict[str, Any]], config: HardwareConfig, servo: Any | None = None, source: str = "log"
) -> np.ndarray:
    """Simulated minus logged joint values, shape (cycles, joints): positions for position joints, velocities
    for velocity joints (wheels), of :func:`sim_replay` on cycles already read with :func:`log_cycles`."""
    import pybullet as p

    from sim.pybullet_robot import PyBulletRobot

    if len(cycles) < 2:
        raise LogError(f"{source}: fewer than two logged control cycles to replay")
    client = p.connect(p.DIRECT)
    try:
        p.setGravity(0, 0, -9.81, physicsClientId=client)
        p.setPhysicsEngineParameter(fixedTimeStep=1.0 / config.sim.physics_hz, physicsClientId=client)
        base = (0.0, 0.0, 0.0)
        if config.kind == "diff_drive":
            floor = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client)
            p.createMultiBody(0, floor, physicsClientId=client)
            base = (0.0, 0.0, 0.010)
        sim = PyBulletRobot(client, config, base_position=base, params=servo)
        velocity = np.array([m.mode.value == "velocity" for m in config.motors])
        errors: list[np.ndarray] = []
        episode = None
        for c, nxt in zip(cycles[:-1], cycles[1:], strict=True):
            logged = c["joints"]
            if c["episode"] != episode:  # open loop from each episode's first logged state
                episode = c["episode"]
                sim.reset_joints(np.where(velocity, 0.0, np.asarray(logged["position"], dtype=float)))
            state = sim.read()
            # position joints: position error; velocity joints (wheels): velocity error (their angle drifts freely)
            measured = np.where(velocity, state.velocity, state.position)
            want = np.where(velocity, np.asarray(logged["velocity"]), np.asarray(logged["position"]))
            errors.append(measured - want)
            if nxt["episode"] != episode:
                continue
            sim.command(c["sent"])
            dt = (nxt["stamp_ns"] - c["stamp_ns"]) / 1e9
            sim.step(max(1, int(round(dt * config.sim.physics_hz))))
    finally:
        p.disconnect(client)
    return np.asarray(errors)


def sim_replay(
    path: str | Path,
    robot: str | HardwareConfig | None = None,
    servo: Any | None = None,
    plot: str | Path | None = None,
) -> dict[str, Any]:
    """Feed the logged sent commands to the simulated robot (its nominal servo model, or ``servo``: a
    :class:`sim.servo_model.ServoParams`, e.g. fitted by system identification), open loop from each episode's
    first logged state, holding each command for the logged time to the next cycle; report the joint position
    error against the log per joint (RMS and max; for wheels, the velocity error: their angle drifts freely).
    ``plot``: also write a PNG of the logged and simulated values of every joint over time."""
    config = log_robot_config(path, robot)
    cycles = log_cycles(path)
    errors = sim_replay_errors(cycles, config, servo, source=str(path))
    err = np.abs(errors)
    units = {
        m.joint: ("rad/s" if m.mode.value == "velocity" else "m" if m.scale != 1.0 else "rad") for m in config.motors
    }
    names = config.joint_names
    compared = {j: ("velocity " if units[j] == "rad/s" else "position ") + units[j] for j in names}
    if plot is not None:
        _plot_sim_replay(cycles[: len(errors)], errors, config, compared, Path(plot))
    return {
        "log": str(path),
        "robot": config.name,
        "cycles": len(errors),
        "compared": compared,
        "rms_error": dict(zip(names, np.sqrt((err**2).mean(0)).round(5).tolist(), strict=True)),
        "max_error": dict(zip(names, err.max(0).round(5).tolist(), strict=True)),
        **({"plot": str(plot)} if plot is not None else {}),
    }


def _plot_sim_replay(
    cycles: list[dict[str, Any]], errors: np.ndarray, config: HardwareConfig, compared: dict[str, str], path: Path
) -> None:
    """One panel per joint: the logged value and the simulated one over host time (s from the first cycle)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    velocity = np.array([m.mode.value == "velocity" for m in config.motors])
    logged = np.array(
        [np.where(velocity, c["joints"]["velocity"], c["joints"]["position"]) for c in cycles], dtype=float
    )
    t = (np.array([c["stamp_ns"] for c in cycles]) - cycles[0]["stamp_ns"]) / 1e9
    names = config.joint_names
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.8 * len(names)), dpi=110, sharex=True, squeeze=False)
    for i, (ax, name) in enumerate(zip(axes[:, 0], names, strict=True)):
        ax.plot(t, logged[:, i], label="logged", lw=1.2)
        ax.plot(t, logged[:, i] + errors[:, i], label="simulated", lw=1.0, ls="--")
        ax.set_ylabel(f"{name}\n{compared[name]}", fontsize=7)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(f"{config.name}: logged commands replayed open loop in simulation", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)

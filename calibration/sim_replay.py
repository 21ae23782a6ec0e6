"""A hardware log replayed in the simulator: the logged sent commands fed open loop to the simulated robot,
and how far its joints drift from the logged ones. ``s2r replay --sim`` reports it; system identification fits the
simulator's servo model to make it small."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from real.hardware_log import LogError
from real.replay import log_cycles, log_robot_config
from robot.description import HardwareConfig
from sim.pybullet_robot import PyBulletRobot


def sim_replay_errors(
    cycles: list[dict[str, Any]], config: HardwareConfig, servo: Any | None = None, source: str = "log"
) -> np.ndarray:
    """Simulated minus logged joint values, shape (cycles, joints): positions for position joints, velocities
    for velocity joints (wheels), of :func:`sim_replay` on cycles already read with :func:`log_cycles`."""
    import pybullet as p  # after sim (imported above): without its build-time banner

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

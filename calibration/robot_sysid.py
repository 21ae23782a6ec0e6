"""System identification of a robot's simulated servos from its hardware logs (MCAP, written by ``s2r deploy``).

Each log is replayed in the simulator open loop (:func:`calibration.sim_replay.sim_replay_errors`: the logged sent
commands, from each episode's first logged state) and the servo parameters the tasks randomize are fitted to minimize
the mean absolute joint error over all logs (position joints in rad, wheels' velocity in rad/s; a gripper's finger
travel in m is left out of the score: other units). The fitted values are env targets (``servo.latency`` ...);
:func:`domain_from_targets` turns them into a domain file the envs pin, and :func:`centred_ranges` into a
randomization config whose ranges are centred on them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from calibration.search import minimize
from calibration.servo_sysid import SysidError
from calibration.sim_replay import sim_replay_errors
from real.replay import log_cycles, log_robot_config
from robot.description import SERVO_MODELS, ControlMode, HardwareConfig, torque_per_amp
from sim.pybullet_robot import servo_params_from_targets
from sim.voltage_servo import NO_CURRENT_LIMIT, VoltageServoParams

#: Fitted targets and their search bounds, per robot kind; each has a term in the task's default randomization.
#: Nominal values are the envs' (0.3 position gain, 1.0 velocity gain, strength 1, 0.01 N*m*s/rad damping, no
#: latency).
ARM_TARGETS: dict[str, tuple[float, float]] = {
    "servo.position_gain": (0.05, 1.5),
    "servo.strength": (0.5, 1.5),
    "joint.damping": (0.001, 0.3),
    "servo.latency": (0.0, 0.1),
}
#: The base's wheels: what its task randomizes (a velocity gain is not, so a domain could not pin it).
BASE_TARGETS: dict[str, tuple[float, float]] = {
    "servo.strength": (0.5, 1.5),
    "servo.latency": (0.0, 0.1),
}
NOMINAL = {
    "servo.position_gain": 0.3,
    "servo.velocity_gain": 1.0,
    "servo.strength": 1.0,
    "joint.damping": 0.01,
    "servo.latency": 0.0,
}


@dataclass
class RobotLog:
    name: str
    cycles: list[dict[str, Any]]


def load_robot_logs(
    paths: Sequence[str | Path], robot: str | HardwareConfig | None = None
) -> tuple[HardwareConfig, list[RobotLog]]:
    """Read the logs' control cycles; they must all come from one robot (``robot`` overrides the logs' own)."""
    if not paths:
        raise SysidError("no MCAP logs given")
    config = log_robot_config(paths[0], robot)
    logs = []
    for path in paths:
        other = log_robot_config(path, robot)
        if other.name != config.name:
            raise SysidError(f"{path}: robot {other.name!r}, but {paths[0]} is {config.name!r}; fit one robot at once")
        logs.append(RobotLog(Path(path).stem, log_cycles(path)))
    return config, logs


def targets_for(config: HardwareConfig) -> dict[str, tuple[float, float]]:
    return ARM_TARGETS if config.kind == "arm" else BASE_TARGETS


def _scored_joints(config: HardwareConfig) -> np.ndarray:
    """Joints in rad or rad/s (a gripper's finger travel in m is another unit)."""
    return np.array([m.scale == 1.0 for m in config.motors])


def servo_for(config: HardwareConfig, targets: dict[str, float], voltage: VoltageServoParams | None = None):
    """The simulated servos with ``targets`` (nominal where absent) and, if given, a voltage model (P gains from
    the config or the servo model's default, the config's supply voltage) instead of the config's own."""
    servo = servo_params_from_targets(config, {**NOMINAL, **targets})
    if voltage is not None:
        kp = [m.position_p_gain or SERVO_MODELS[m.model]["position_p_gain"] for m in config.motors]
        servo = dataclasses.replace(servo, voltage=voltage, kp_register=np.array(kp, dtype=float))
    return servo


def score(
    config: HardwareConfig,
    logs: Sequence[RobotLog],
    targets: dict[str, float],
    voltage: VoltageServoParams | None = None,
) -> dict[str, Any]:
    """Per-log MAE and RMS of the replayed joints (rad or rad/s, scored joints pooled) and their means over logs."""
    servo = servo_for(config, targets, voltage)
    keep = _scored_joints(config)
    per_log = {}
    for log in logs:
        err = sim_replay_errors(log.cycles, config, servo, source=log.name)[:, keep]
        per_log[log.name] = {"mae_rad": float(np.mean(np.abs(err))), "rms_rad": float(np.sqrt(np.mean(err**2)))}
    return {
        "logs": per_log,
        "mae_rad": float(np.mean([v["mae_rad"] for v in per_log.values()])),
        "rms_rad": float(np.mean([v["rms_rad"] for v in per_log.values()])),
    }


def fit(
    config: HardwareConfig,
    logs: Sequence[RobotLog],
    iterations: int = 20,
    population: int = 6,
    seed: int = 0,
    progress: bool = True,
) -> tuple[dict[str, float], float]:
    """Fitted targets and their mean MAE over ``logs``, by differential evolution (deterministic for a seed)."""
    space = targets_for(config)
    names = list(space)

    def objective(x: np.ndarray) -> float:
        return score(config, logs, dict(zip(names, x, strict=True)))["mae_rad"]

    result = minimize(
        objective, [space[n] for n in names], iterations, population, seed, "sysid robot", progress, refine=False
    )
    return {n: float(v) for n, v in zip(names, result.x, strict=True)}, float(result.fun)


def plot(
    config: HardwareConfig,
    log: RobotLog,
    models: dict[str, tuple[dict[str, float], VoltageServoParams | None]],
    out: str | Path,
) -> Path:
    """Logged vs replayed joint trajectories of one log, one panel per scored joint, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keep = np.flatnonzero(_scored_joints(config))
    velocity = np.array([m.mode.value == "velocity" for m in config.motors])
    logged = np.array([np.where(velocity, c["joints"]["velocity"], c["joints"]["position"]) for c in log.cycles])
    t = np.array([(c["stamp_ns"] - log.cycles[0]["stamp_ns"]) / 1e9 for c in log.cycles])[:-1]
    fig, axes = plt.subplots(len(keep), 1, figsize=(8, 1.8 * len(keep)), sharex=True, squeeze=False)
    for name, (targets, voltage) in models.items():
        servo = servo_for(config, targets, voltage)
        simulated = logged[:-1] + sim_replay_errors(log.cycles, config, servo, source=log.name)
        for ax, j in zip(axes[:, 0], keep, strict=True):
            ax.plot(t, simulated[:, j], lw=1, label=name)
    for ax, j in zip(axes[:, 0], keep, strict=True):
        ax.plot(t, logged[:-1, j], color="k", lw=1.5, label="logged")
        unit = "rad/s" if velocity[j] else "rad"
        ax.set_ylabel(f"{config.motors[j].joint} ({unit})", fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(f"{log.name}: logged vs replayed in sim")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def fit_voltage(
    config: HardwareConfig,
    logs: Sequence[RobotLog],
    model: str = "load",
    iterations: int = 20,
    population: int = 5,
    seed: int = 0,
    progress: bool = True,
) -> tuple[VoltageServoParams, float]:
    """The voltage servo model (:mod:`sim.voltage_servo`, one for every position joint) that replays ``logs``
    best, by differential evolution over the free parameters of ``model`` (deterministic for a seed). A candidate
    too stiff for the config's physics rate scores as a failure."""
    from calibration.servo_sysid import MODELS, bounds

    if model not in MODELS:
        raise SysidError(f"unknown model {model!r}; expected one of {sorted(MODELS)}")
    # the config's effort limit already caps each joint's torque (sim.pybullet_robot): no current limit to fit
    free = [n for n in MODELS[model] if n != "max_current"]
    # kt and R are the datasheet's of the position servos (stall torque and current at the rated voltage)
    models = [m.model for m in config.motors if m.mode != ControlMode.velocity]
    kts = [torque_per_amp(m) for m in models]
    motor = {}
    if kts and all(k is not None for k in kts):
        motor["kt"] = float(np.mean(kts))
        motor["R"] = float(np.mean([SERVO_MODELS[m]["rated_v"] / SERVO_MODELS[m]["stall_current"] for m in models]))
    base = vars(VoltageServoParams(**motor, max_current=NO_CURRENT_LIMIT))

    def params(x: np.ndarray) -> VoltageServoParams:
        return VoltageServoParams(**{**base, **dict(zip(free, (float(v) for v in x), strict=True))})

    def objective(x: np.ndarray) -> float:
        try:
            return score(config, logs, {}, params(x))["mae_rad"]
        except ValueError:  # too stiff for the physics rate
            return 10.0

    space = bounds(free)
    result = minimize(objective, space, iterations, population, seed, f"sysid robot {model}", progress, refine=False)
    return params(result.x), float(result.fun)


def _task_terms(task: str) -> dict[str, Any]:
    from sim.randomization.config import load_randomization

    return {t.target: t for t in load_randomization("default", task).terms}


def domain_from_targets(task: str, targets: dict[str, float]) -> dict[str, float]:
    """Domain values (the task's default randomization term names) that pin the env's targets to ``targets``:
    a ``set`` term takes the value, a ``scale`` term value / nominal, an ``add`` term value - nominal."""
    terms = _task_terms(task)
    domain = {}
    for target, value in targets.items():
        term = terms.get(target)
        if term is None:
            raise SysidError(f"task {task!r} has no randomization term for {target!r}; cannot pin it")
        nominal = NOMINAL[target]
        if term.operation == "set":
            domain[term.name] = float(value)
        elif term.operation == "scale":
            domain[term.name] = float(value / nominal)
        else:
            domain[term.name] = float(value - nominal)
    return domain


def centred_ranges(task: str, domain: dict[str, float]) -> dict[str, Any]:
    """The task's default randomization config with each fitted term's range moved to centre on the fitted value,
    keeping its width (a ratio for log-uniform, a difference for uniform) and its lower bound non-negative."""
    from sim.randomization.config import load_randomization

    config = load_randomization("default", task).model_dump(mode="json", exclude_none=True)
    for term in config["terms"]:
        if term["name"] not in domain:
            continue
        value, d = domain[term["name"]], copy.deepcopy(term["distribution"])
        if d["type"] == "log_uniform":
            half = np.sqrt(d["high"] / d["low"])
            d["low"], d["high"] = float(value / half), float(value * half)
        elif d["type"] == "uniform":
            half = (d["high"] - d["low"]) / 2
            d["low"], d["high"] = float(max(0.0, value - half)), float(value + half)
        else:
            raise SysidError(f"term {term['name']!r}: cannot centre a {d['type']} distribution")
        term["distribution"] = d
        term["source"] = f"s2r sysid: centred on the fitted value {value:.4g}"
    return config


def write_yaml(data: dict[str, Any], path: str | Path, header: str = "") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"# {line}\n" for line in header.splitlines()) + yaml.safe_dump(data, sort_keys=False)
    path.write_text(text)
    return path

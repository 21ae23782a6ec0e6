"""System identification of a servo's voltage model (:mod:`sim.voltage_servo`) from single-servo test-bench logs.

A log is one servo swinging a known pendulum while the host streams goal positions (the JSON format of the real
Dynamixel XL330 recordings in ``../shared/data/real_logs/``). Each whole log is simulated open loop from its first
measured angle, driven by the logged goals (held between samples, delayed by the latency) and torque-enable
flags; the fit minimizes the mean over logs of the mean absolute angle error, with SciPy's differential evolution
(population evaluated in one vectorized pass), so friction's discontinuities need no gradient.

Scores are per log: mean absolute error (MAE) and RMS of the angle, rad. The "default" model is the datasheet one
(:class:`sim.voltage_servo.VoltageServoParams` defaults); "perfect tracking" (angle = goal) is the floor to beat.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calibration.search import minimize
from sim.voltage_servo import DEFAULT_DT, PendulumLoad, VoltageServoParams, simulate

#: Search bounds of each parameter (same order as VoltageServoParams.names()); wide around the XL330 datasheet.
BOUNDS: dict[str, tuple[float, float]] = {
    "kt": (0.05, 2.0),
    "R": (0.5, 20.0),
    "armature": (1e-4, 0.05),
    "coulomb": (0.0, 0.5),
    "viscous": (0.0, 0.5),
    "load_friction": (0.0, 1.0),
    "latency": (0.0, 0.05),
    "gain_scale": (0.2, 3.0),
    "max_duty": (0.3, 1.0),
}

#: Friction models the fit can use: the free parameters of each (the others keep their default).
MODELS: dict[str, tuple[str, ...]] = {
    # Coulomb + viscous friction only.
    "coulomb_viscous": ("kt", "R", "armature", "coulomb", "viscous", "latency", "gain_scale", "max_duty"),
    # Plus gearbox friction growing with the transmitted torque.
    "load": ("kt", "R", "armature", "coulomb", "viscous", "load_friction", "latency", "gain_scale", "max_duty"),
}


class SysidError(ValueError):
    """A log that cannot be read or simulated, or a bad fit request; the message names the file and the field."""


@dataclass
class ServoLog:
    """One test-bench recording. t: s from the first sample; position, goal: rad; torque_enable: bool;
    kp: P gain register value; vin: supply, V; load: the pendulum."""

    name: str
    t: np.ndarray
    position: np.ndarray
    goal: np.ndarray
    torque_enable: np.ndarray
    kp: float
    vin: float
    load: PendulumLoad
    trajectory: str = ""


def load_servo_log(path: str | Path) -> ServoLog:
    """Read a pendulum JSON log (keys ``mass``, ``length``, ``kp``, ``vin``, ``entries`` with ``timestamp``,
    ``position``, ``goal_position``, ``torque_enable``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SysidError(f"{path}: not a readable JSON log ({exc})") from exc
    for key in ("mass", "length", "kp", "vin", "entries"):
        if key not in data:
            raise SysidError(f"{path}: missing key {key!r} (expected a servo pendulum log)")
    entries = data["entries"]
    if len(entries) < 10:
        raise SysidError(f"{path}: {len(entries)} entries; a log needs at least 10 samples")
    try:
        t = np.array([e["timestamp"] for e in entries], dtype=float)
        position = np.array([e["position"] for e in entries], dtype=float)
        goal = np.array([e["goal_position"] for e in entries], dtype=float)
        enable = np.array([bool(e.get("torque_enable", True)) for e in entries])
        volts = [e["input_volts"] for e in entries if "input_volts" in e]
    except KeyError as exc:
        raise SysidError(f"{path}: an entry lacks {exc}") from exc
    if np.any(np.diff(t) <= 0):
        raise SysidError(f"{path}: timestamps do not increase")
    if not (np.all(np.isfinite(position)) and np.all(np.isfinite(goal))):
        raise SysidError(f"{path}: non-finite position or goal")
    return ServoLog(
        name=path.stem,
        t=t - t[0],
        position=position,
        goal=goal,
        torque_enable=enable,
        kp=float(data["kp"]),
        # The measured supply under load (the servo reports it) rather than the nominal one.
        vin=float(np.mean(volts)) if volts else float(data["vin"]),
        load=PendulumLoad(float(data["mass"]), float(data["length"])),
        trajectory=str(data.get("trajectory", "")),
    )


def simulate_logs(params: np.ndarray, logs: Sequence[ServoLog], dt: float = DEFAULT_DT) -> list[list[np.ndarray]]:
    """Simulated angles at each log's sample times for each parameter column: ``out[s][j]`` for column ``s`` of
    ``params`` (shape (9, S), or (9,)) and log ``j``."""
    params = np.asarray(params, dtype=float)
    if params.ndim == 1:
        params = params[:, None]
    n_sets, n_logs = params.shape[1], len(logs)
    steps = int(np.ceil(max(log.t[-1] for log in logs) / dt)) + 1
    grid = np.arange(steps) * dt
    goal = np.empty((steps, n_sets * n_logs))
    enable = np.empty((steps, n_sets * n_logs))
    latency = params[VoltageServoParams.names().index("latency")]
    for s in range(n_sets):
        for j, log in enumerate(logs):
            # The goal the motor sees at t is the last one sent at or before t - latency (held between samples).
            idx = np.clip(np.searchsorted(log.t, grid - latency[s], side="right") - 1, 0, len(log.t) - 1)
            goal[:, s * n_logs + j] = log.goal[idx]
            enable[:, s * n_logs + j] = log.torque_enable[idx]

    def per_log(values: Callable[[ServoLog], float]) -> np.ndarray:
        return np.tile([values(log) for log in logs], n_sets)

    angles = simulate(
        np.repeat(params, n_logs, axis=1),
        goal,
        enable,
        q0=per_log(lambda log: log.position[0]),
        kp=per_log(lambda log: log.kp),
        vin=per_log(lambda log: log.vin),
        load_inertia=per_log(lambda log: log.load.inertia),
        load_gravity=per_log(lambda log: log.load.gravity_torque),
        dt=dt,
    )
    return [[np.interp(log.t, grid, angles[:, s * n_logs + j]) for j, log in enumerate(logs)] for s in range(n_sets)]


def _errors(simulated: np.ndarray, log: ServoLog) -> dict[str, float]:
    err = simulated - log.position
    return {"mae_rad": float(np.mean(np.abs(err))), "rms_rad": float(np.sqrt(np.mean(err**2)))}


def score(params: VoltageServoParams, logs: Sequence[ServoLog]) -> dict[str, Any]:
    """Per-log and overall (mean over logs) MAE and RMS of the simulated angle, rad."""
    sims = simulate_logs(params.vector(), logs)[0]
    per_log = {log.name: _errors(sim, log) for sim, log in zip(sims, logs, strict=True)}
    return {
        "logs": per_log,
        "mae_rad": float(np.mean([v["mae_rad"] for v in per_log.values()])),
        "rms_rad": float(np.mean([v["rms_rad"] for v in per_log.values()])),
    }


def perfect_tracking_score(logs: Sequence[ServoLog]) -> dict[str, Any]:
    """The score of assuming the servo reaches each goal at once (angle = goal)."""
    per_log = {log.name: _errors(log.goal, log) for log in logs}
    return {
        "logs": per_log,
        "mae_rad": float(np.mean([v["mae_rad"] for v in per_log.values()])),
        "rms_rad": float(np.mean([v["rms_rad"] for v in per_log.values()])),
    }


@dataclass
class FitResult:
    params: VoltageServoParams
    model: str
    mae_rad: float  # on the fit logs
    generations: int
    seed: int


def fit(
    logs: Sequence[ServoLog],
    model: str = "load",
    iterations: int = 150,
    population: int = 12,
    seed: int = 0,
    progress: bool = True,
) -> FitResult:
    """Fit the free parameters of ``model`` to ``logs`` by differential evolution (deterministic for a seed).

    population: candidates per free parameter (SciPy's ``popsize``); iterations: the most generations (it stops
    earlier when the population has converged)."""
    if model not in MODELS:
        raise SysidError(f"unknown model {model!r}; expected one of {sorted(MODELS)}")
    if not logs:
        raise SysidError("no logs to fit")
    names = VoltageServoParams.names()
    free = [names.index(n) for n in MODELS[model]]
    base = VoltageServoParams().vector()

    def full(x: np.ndarray) -> np.ndarray:
        out = np.repeat(base[:, None], x.shape[1], axis=1)
        out[free] = x
        return out

    def objective(x: np.ndarray) -> np.ndarray:
        x = x if x.ndim == 2 else x[:, None]
        sims = simulate_logs(full(x), logs)
        return np.array(
            [np.mean([np.mean(np.abs(s - log.position)) for s, log in zip(row, logs, strict=True)]) for row in sims]
        )

    result = minimize(
        objective,
        [BOUNDS[names[i]] for i in free],
        iterations,
        population,
        seed,
        f"sysid {model}",
        progress,
        vectorized=True,
    )
    params = VoltageServoParams.from_vector(full(result.x[:, None])[:, 0])
    return FitResult(params, model, result.fun, result.generations, seed)


def plot(logs: Sequence[ServoLog], models: dict[str, VoltageServoParams], out: str | Path, title: str = "") -> Path:
    """Logged vs simulated angle over time, one panel per log, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    cols = 2 if len(logs) > 1 else 1
    rows = int(np.ceil(len(logs) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 2.6 * rows), squeeze=False, sharex=True)
    sims = {name: simulate_logs(p.vector(), logs)[0] for name, p in models.items()}
    for ax, (j, log) in zip(axes.flat, enumerate(logs), strict=False):
        ax.plot(log.t, log.goal, color="0.7", lw=1, label="goal")
        ax.plot(log.t, log.position, color="k", lw=1.5, label="logged")
        for name, sim in sims.items():
            mae = 1000 * np.mean(np.abs(sim[j] - log.position))
            ax.plot(log.t, sim[j], lw=1, label=f"{name} ({mae:.0f} mrad)")
        ax.set_title(f"{log.name} kp={log.kp:g} {log.trajectory}", fontsize=9)
        ax.set_ylabel("angle (rad)")
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes.flat[len(logs) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out

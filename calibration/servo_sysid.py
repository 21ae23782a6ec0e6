"""System identification of a servo's voltage model (:mod:`sim.voltage_servo`) from single-servo test-bench logs.

A log is one servo swinging a known pendulum while the host streams goal positions (the JSON format of the real
Dynamixel XL330 recordings in ``../shared/data/real_logs/``). Each whole log is simulated open loop from its first
measured angle, driven by the logged goals (held between samples, delayed by the latency) and torque-enable
flags; the fit minimizes the mean over logs of the mean absolute angle error, with SciPy's differential evolution
(population evaluated in one vectorized pass), so friction's discontinuities need no gradient.

What is known is not fitted: the motor's kt and R are the datasheet's, and when the logs record the Present PWM
register the firmware's gain, PWM limit and latency are read from it (:mod:`calibration.servo_firmware`). A
current limit that no log asks the motor to reach keeps its register default (:func:`peak_current_demand`; a
servo whose Current Limit was set lower than the default is then modelled at the default): fitted
on the shared XL330 logs at kp 100 and 200 alone, the `load` model otherwise spent it as friction (1.09 A) and
predicted the kp 400 and 800 logs at 198 mrad, 68 with it kept.
Parameters that a trajectory family may not excite (the armature and the viscous friction: slow lifts pin neither)
carry a weak prior towards the datasheet-order defaults, a penalty of :data:`PRIOR_WEIGHT` rad per squared
natural-log ratio, which data that do excite them outweigh.

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
from calibration.servo_firmware import FirmwareLaw, firmware_law, held_index, pwm_from_register
from sim.voltage_servo import DEFAULT_DT, PendulumLoad, VoltageServoParams, duty_per_rad, simulate

#: Search bounds of the parameters a model may free. The loop's gain is searched within 0.5-2x the e-manual's when no
#: log records the PWM; the current limit around the XL330-M288's register default (1.75 A).
BOUNDS: dict[str, tuple[float, float]] = {
    "armature": (1e-4, 0.05),
    "coulomb": (0.0, 0.5),
    "viscous": (0.0, 0.5),
    "load_friction": (0.0, 1.0),
    "latency": (0.0, 0.05),
    "gain_scale": (0.5, 2.0),
    "max_duty": (0.3, 1.0),
    "stribeck": (0.0, 0.3),
    "stribeck_load": (0.0, 1.0),
    "stribeck_speed": (0.01, 2.0),
    "ratio_external": (0.0, 3.0),
    "max_current": (1.0, 2.5),
    "load_quadratic": (0.0, 1.0),
}


def bounds(names: Sequence[str]) -> list[tuple[float, float]]:
    """Search bounds of ``names`` (:data:`BOUNDS`)."""
    return [BOUNDS[n] for n in names]


#: What every model fits: the inertia, the firmware's loop and current limit, and Coulomb + viscous friction. The
#: motor's kt and R are not fitted: they trade against friction within a family (cross-validated on the shared
#: XL330 logs, `load` model: validation 1.97x the training error with them free, 1.61x pinned to the datasheet).
_CORE = ("armature", "coulomb", "viscous", "latency", "gain_scale", "max_duty", "max_current")
#: Read from the Present PWM register when every fit log carries it (calibration.servo_firmware), else fitted.
FIRMWARE = ("gain_scale", "max_duty", "latency")
#: Weak priors (centre values) on what a trajectory family may not excite, and the penalty per squared natural-log
#: ratio (rad): 3 mrad, chosen by validation across the shared logs' families (0.3 mrad: 2.2x, 1: 1.65x, 3: 1.60x).
PRIORS = {"armature": VoltageServoParams.armature, "viscous": VoltageServoParams.viscous}
PRIOR_WEIGHT = 0.003
#: Friction models the fit can use (BAM's M1-M5 family, sim/voltage_servo.py): the free parameters of each, the
#: others keep their default (which switches their term off).
MODELS: dict[str, tuple[str, ...]] = {
    "coulomb_viscous": _CORE,
    "stribeck": (*_CORE, "stribeck", "stribeck_speed"),
    "load": (*_CORE, "load_friction"),
    "stribeck_load": (*_CORE, "load_friction", "stribeck", "stribeck_load", "stribeck_speed"),
    "quadratic": (*_CORE, "load_friction", "load_quadratic"),
    "stribeck_quadratic": (*_CORE, "load_friction", "load_quadratic", "stribeck", "stribeck_load", "stribeck_speed"),
    "directional": (*_CORE, "load_friction", "stribeck", "stribeck_load", "stribeck_speed", "ratio_external"),
}
#: ``--model auto``: every model cross-validated and the best chosen (:mod:`calibration.servo_validation`).
AUTO = "auto"
#: Objective value (rad) of a candidate whose simulation diverged (too stiff for the integration step).
DIVERGED = 10.0


class SysidError(ValueError):
    """A log that cannot be read or simulated, or a bad fit request; the message names the file and the field."""


@dataclass
class ServoLog:
    """One test-bench recording. t: s from the first sample; position, goal: rad; torque_enable: bool;
    kp: P gain register value; vin: supply, V; load: the pendulum; pwm: the Present PWM register as signed duty
    (fraction of full scale) when the log records it."""

    name: str
    t: np.ndarray
    position: np.ndarray
    goal: np.ndarray
    torque_enable: np.ndarray
    kp: float
    vin: float
    load: PendulumLoad
    trajectory: str = ""
    pwm: np.ndarray | None = None


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
        # the shared logs' raw register ("load") is Present PWM (+-885, and it follows the P law: servo_firmware)
        pwm = pwm_from_register([e["load"] for e in entries]) if all("load" in e for e in entries) else None
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
        pwm=pwm,
    )


def simulate_logs(params: np.ndarray, logs: Sequence[ServoLog], dt: float = DEFAULT_DT) -> list[list[np.ndarray]]:
    """Simulated angles at each log's sample times for each parameter column: ``out[s][j]`` for column ``s`` of
    ``params`` (shape (P, S), or (P,), P = len(VoltageServoParams.names())) and log ``j``."""
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
            idx = held_index(log.t, grid, latency[s])  # the goal and flag the motor acts on
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


def time_weights(t: np.ndarray) -> np.ndarray:
    """Each sample's share of the log's duration (trapezoid rule, sums to 1): a phase sampled faster does not count
    more (BAM's metric resamples logs at a fixed step for the same reason)."""
    dt = np.diff(t)
    w = np.zeros_like(t, dtype=float)
    w[:-1] += dt / 2
    w[1:] += dt / 2
    return w / w.sum()


def phase_seconds(log: ServoLog, mask: np.ndarray) -> float:
    """Seconds of ``log`` in its samples where ``mask`` is true (each sample's trapezoid share of the duration: a
    phase change splits its interval in two)."""
    return float(np.sum(time_weights(log.t)[mask])) * float(log.t[-1])


def _errors(simulated: np.ndarray, log: ServoLog) -> dict[str, float]:
    """MAE and RMS weighted by time (rad), and the per-sample MAE beside them; for a log that turns torque off, the
    MAE and seconds of each phase too (``mae_torque_on_rad``, ``torque_on_s``, ``..._off_...``; the MAE None for a
    phase without time). A simulation that diverged scores :data:`DIVERGED`."""
    err = np.abs(simulated - log.position) if np.all(np.isfinite(simulated)) else np.full(len(log.t), DIVERGED)
    w = time_weights(log.t)
    out = {
        "mae_rad": float(np.sum(w * err)),
        "rms_rad": float(np.sqrt(np.sum(w * err**2))),
        "mae_per_sample_rad": float(np.mean(err)),
        "duration_s": float(log.t[-1]),
    }
    off = ~log.torque_enable.astype(bool)
    if off.any():  # the two phases apart: an unpowered swing is a friction an all-on log never shows
        for phase, mask in (("on", ~off), ("off", off)):
            seconds = out[f"torque_{phase}_s"] = phase_seconds(log, mask)
            out[f"mae_torque_{phase}_rad"] = float(np.sum(w[mask] * err[mask]) / np.sum(w[mask])) if seconds else None
    return out


def pooled(per_log: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Pooled over logs, weighted by their durations: the figures of all their seconds together; where a log turns
    torque off, the MAE of each phase over every log too (a log with torque on throughout counts as on)."""
    d = np.array([v["duration_s"] for v in per_log.values()])
    mae = np.array([v["mae_rad"] for v in per_log.values()])
    rms = np.array([v["rms_rad"] for v in per_log.values()])
    per_sample = np.array([v["mae_per_sample_rad"] for v in per_log.values()])
    out = {
        "logs": per_log,
        "mae_rad": float(np.sum(d * mae) / d.sum()),
        "rms_rad": float(np.sqrt(np.sum(d * rms**2) / d.sum())),
        "mae_per_sample_rad": float(np.mean(per_sample)),
    }
    if any("torque_off_s" in v for v in per_log.values()):  # logs with torque on throughout count as on
        for phase in ("on", "off"):
            seconds = np.array(
                [v.get(f"torque_{phase}_s", v["duration_s"] if phase == "on" else 0.0) for v in per_log.values()]
            )
            phase_mae = np.array([v.get(f"mae_torque_{phase}_rad", v["mae_rad"]) or 0.0 for v in per_log.values()])
            out[f"mae_torque_{phase}_rad"] = (
                float(np.sum(seconds * phase_mae) / seconds.sum()) if seconds.sum() else None
            )
    return out


def score(params: VoltageServoParams, logs: Sequence[ServoLog]) -> dict[str, Any]:
    """Per-log and overall MAE and RMS of the simulated angle (rad, weighted by time; overall: pooled over logs)."""
    with np.errstate(all="ignore"):
        sims = simulate_logs(params.vector(), logs)[0]
    return pooled({log.name: _errors(sim, log) for sim, log in zip(sims, logs, strict=True)})


def perfect_tracking_score(logs: Sequence[ServoLog]) -> dict[str, Any]:
    """The score of assuming the servo reaches each goal at once (angle = goal)."""
    return pooled({log.name: _errors(log.goal, log) for log in logs})


@dataclass
class FitResult:
    params: VoltageServoParams
    model: str
    mae_rad: float  # on the fit logs, weighted by time
    generations: int
    seed: int
    stopped: str = ""  # "converged" or "generation cap"
    wall_s: float = 0.0
    simulated_s: float = 0.0  # seconds of servo motion simulated by the search
    firmware: FirmwareLaw | None = None  # read from the logs' Present PWM, and pinned
    free: tuple[str, ...] = ()  # the parameters the search fitted
    current_demand_a: float = 0.0  # the most current the logs ask of the motor (peak_current_demand)


def peak_current_demand(logs: Sequence[ServoLog], law: FirmwareLaw | None = None) -> float:
    """The most current (A) any torque-on sample of ``logs`` asks of the motor at standstill: the supply times the
    duty over the datasheet resistance. The duty is the Present PWM reading when the firmware law was read from the
    logs (``law``: every log's register follows the P law), else the P law on the logged position error at the
    largest loop gain the fit may choose (the top of :data:`BOUNDS`), clipped at full duty: a bound no current limit
    below it can be seen under."""
    r = VoltageServoParams.R
    peak = 0.0
    for log in logs:
        on = log.torque_enable.astype(bool)
        if law is not None and log.pwm is not None:
            duty = np.abs(log.pwm[on])
        else:
            duty = np.minimum(np.abs(duty_per_rad(log.kp, BOUNDS["gain_scale"][1]) * (log.goal - log.position)[on]), 1)
        peak = max(peak, float(log.vin * np.max(duty, initial=0.0) / r))
    return peak


def fit(
    logs: Sequence[ServoLog],
    model: str = "load",
    iterations: int = 150,
    population: int = 12,
    seed: int = 0,
    progress: bool = True,
) -> FitResult:
    """Fit the free parameters of ``model`` to ``logs`` by differential evolution, then a local refinement
    (deterministic for a seed); the objective is the time-weighted MAE pooled over the logs plus the priors'
    penalty (:data:`PRIORS`); the reported ``mae_rad`` is the error alone. When every log records Present PWM, the
    firmware's gain, PWM limit and latency are read from it and not fitted (``FitResult.firmware``).

    population: candidates per free parameter (SciPy's ``popsize``); iterations: the most generations (it stops
    earlier when the best value stops improving)."""
    if model not in MODELS:
        raise SysidError(f"unknown model {model!r}; expected one of {sorted(MODELS)} or {AUTO!r}")
    if not logs:
        raise SysidError("no logs to fit")
    names = VoltageServoParams.names()
    law = firmware_law(logs)
    pinned = {n: getattr(law, n) for n in FIRMWARE if getattr(law, n) is not None} if law is not None else {}
    demand = peak_current_demand(logs, law)
    # no log reaches the default limit: it keeps it (a limit set lower on the servo would go unseen here)
    if demand < VoltageServoParams.max_current:
        pinned["max_current"] = VoltageServoParams.max_current
    free_names = tuple(n for n in MODELS[model] if n not in pinned)
    free = [names.index(n) for n in free_names]
    base = VoltageServoParams(**pinned).vector()
    prior = [(free_names.index(n), np.log(centre)) for n, centre in PRIORS.items() if n in free_names]
    weights = [time_weights(log.t) * log.t[-1] for log in logs]
    total = float(sum(log.t[-1] for log in logs))
    simulated = 0.0

    def full(x: np.ndarray) -> np.ndarray:
        out = np.repeat(base[:, None], x.shape[1], axis=1)
        out[free] = x
        return out

    def objective(x: np.ndarray) -> np.ndarray:
        nonlocal simulated
        x = x if x.ndim == 2 else x[:, None]
        simulated += x.shape[1] * total
        with np.errstate(all="ignore"):  # a candidate too stiff for the step diverges: it scores as a failure
            sims = simulate_logs(full(x), logs)
            values = np.array(
                [
                    sum(
                        float(np.sum(w * np.abs(s - log.position)))
                        for s, w, log in zip(row, weights, logs, strict=True)
                    )
                    / total
                    for row in sims
                ]
            )
        return np.where(np.isfinite(values), np.minimum(values, DIVERGED), DIVERGED)

    def penalized(x: np.ndarray) -> np.ndarray:
        x2 = x if x.ndim == 2 else x[:, None]
        penalty = sum((np.log(np.maximum(x2[i], 1e-6)) - centre) ** 2 for i, centre in prior) if prior else 0.0
        return objective(x) + PRIOR_WEIGHT * penalty

    result = minimize(
        penalized,
        bounds(free_names),
        iterations,
        population,
        seed,
        f"sysid {model}",
        progress,
        vectorized=True,
    )
    x = np.asarray(result.x, dtype=float)[:, None]
    mae = float(objective(x)[0])  # the fit logs' error, without the priors' penalty
    params = VoltageServoParams.from_vector(full(x)[:, 0])
    return FitResult(
        params,
        model,
        mae,
        result.generations,
        seed,
        result.stopped,
        result.wall_s,
        round(simulated, 1),
        law,
        free_names,
        round(demand, 3),
    )


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

"""Online system identification (Yu et al. 2017, "Preparing for the Unknown: Learning a Universal Policy with
Online System Identification"): a network estimates the dynamics parameters mu from the last H steps of
proprioception and actions, and a universal policy (UP, trained with mu as input: ``s2r train --universal``) acts
on the estimate.

``s2r train-osi`` trains the estimator in two stages, as in the paper: first on rollouts where the UP is fed the
true mu of each randomized domain, then on rollouts where it is fed the estimator's own estimates (so the
estimator learns on the states it will see when it is in the loop); the labels are always the true mu. It also
trains estimators for shorter histories on the same data, to show how the error falls with H. The result is a
bundle holding both networks: :class:`AdaptivePolicy` (``policies.load`` returns one) updates the estimate every
cycle, exposes it as ``estimate`` (physical units) for logging, and acts on it (``mode="adapt"``) or on the true
mu given in ``observation["dynamics"]`` (``mode="oracle"``, for comparisons in simulation).

Written here rather than taken from a library: stable-baselines3 has no system identification, and the estimator
is a plain supervised MLP on windows the rollouts produce.
"""

from __future__ import annotations

import itertools
import json
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from policies.adaptive import OSI_WEIGHTS, AdaptivePolicy, OSINet, osi_readings
from policies.bundle import BUNDLE_FILE, BundlePolicy, effort_dim
from policies.cluster import Executor, FolderValue, module_bytes, module_from_bytes, one_thread, run_until
from policies.episodes import run_episode
from policies.osi_config import OSIConfig
from robot.spec import BundleError
from sim.observation_history import History, reading
from sim.randomization.config import RandomizationConfig
from sim.randomization.dynamics import DynamicsObservation, DynamicsSpec

OSI_SEED = 3_500_000  # rollout seeds of the estimator's training data (evaluation seeds start at 1,000,000)
OBSERVABILITY_SEED = 3_900_000  # scenes of the observability check
#: Domain terms that only blur the readings (noise, timing jitter): off in the observability replays.
SENSOR_NOISE_TERMS = (
    "proprio_position_noise",
    "proprio_velocity_noise",
    "proprio_effort_noise",
    "control_period_jitter",
)


# -- fitting the estimator ----------------------------------------------------------------------------------------


def fit_osi(
    windows: np.ndarray,
    targets: np.ndarray,
    hidden: tuple[int, ...],
    epochs: int,
    seed: int,
    net: OSINet | None = None,
    progress: bool = False,
    episodes: np.ndarray | None = None,
) -> OSINet:
    """Train (or continue training) an estimator on windows -> normalized mu with MSE; Adam, batches of 256.

    ``episodes`` (the episode of each window): every tenth episode is held out, and the estimator kept is the one
    of the epoch with the lowest error on them (early stopping). Windows of one episode share one mu, so an
    estimator can fit a term it cannot observe by remembering episodes; stopped early it answers near the range's
    centre for such a term instead of worse than that."""
    torch.manual_seed(seed)
    x = torch.as_tensor(windows, dtype=torch.float32)
    y = torch.as_tensor(targets, dtype=torch.float32)
    held = np.zeros(len(x), bool) if episodes is None else np.asarray(episodes) % 10 == 0
    if held.all():
        held[:] = False
    x_val, y_val = x[torch.from_numpy(held)], y[torch.from_numpy(held)]
    x, y = x[torch.from_numpy(~held)], y[torch.from_numpy(~held)]
    if net is None:
        net = OSINet(x.shape[1], y.shape[1], hidden)
        net.mean.copy_(x.mean(0))
        net.std.copy_(torch.clamp(x.std(0), min=1e-3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n = len(x)
    best, best_state = float("inf"), None
    for _ in tqdm(range(epochs), desc="fit estimator", unit="epoch", disable=not progress, leave=False):
        net.train()
        perm = torch.randperm(n)
        for i in range(0, n, 256):
            idx = perm[i : i + 256]
            loss = ((net(x[idx]) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if len(x_val):
            with torch.no_grad():
                error = float(((net(x_val) - y_val) ** 2).mean())
            if error < best:
                best, best_state = error, {k: v.clone() for k, v in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval()


# -- training ---------------------------------------------------------------------------------------------------------


def reading_dim(up: BundlePolicy, env: Any, effort: bool) -> int:
    """Values the estimator reads per step: the UP's proprioception, and with ``effort`` the env's joint efforts."""
    extra = int(env.observation_space["effort"].shape[0]) if effort else 0
    return int(up.obs_spec.shapes["proprio"][0]) + extra


#: Episodes per job of the rollouts on workers (``--workers``, ``--ray``).
ROLLOUT_JOB_EPISODES = 4


def rollout_episode(
    env: Any,
    up: BundlePolicy,
    seed: int,
    history: History,
    osi: OSINet | None,
    on_step: Any = None,
    effort: bool = False,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """One episode of the UP in ``env`` (a universal env) acting on the true mu, or on ``osi``'s estimate from the
    ``history`` windows (of proprioception, and joint efforts with ``effort``): every step's window, its true
    normalized mu, and whether it succeeded."""
    windows: list[np.ndarray] = []
    targets: list[np.ndarray] = []

    def act(obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        history.push_reading(reading(obs, osi_readings(effort)))
        window = history.window()
        mu = obs["dynamics"]
        if osi is not None:
            with torch.no_grad():
                mu = osi(torch.from_numpy(window)[None])[0].numpy()
        windows.append(window)
        targets.append(obs["dynamics"])
        action = up.act({**obs, "dynamics": mu})
        history.push_action(action)
        return action

    ran = run_episode(env, act, seed, on_reset=lambda obs, info: history.reset(), after_step=on_step)
    return np.asarray(windows, np.float32), np.asarray(targets, np.float32), bool(ran.success)


@dataclass(frozen=True)
class RolloutJob:
    """Episodes seeded ``seed .. seed + episodes - 1`` of the UP (its bundle's files) under ``randomization``,
    with histories of ``horizon`` steps, on the true mu or ``osi``'s estimates."""

    up: FolderValue
    randomization: RandomizationConfig
    seed: int
    episodes: int
    horizon: int
    osi: bytes | None  # the estimator (policies.cluster.module_bytes)
    effort: bool = False  # the windows hold the joint efforts too


def run_rollout_job(job: RolloutJob) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """The job's episodes (:func:`rollout_episode`), in seed order."""
    from policies.loader import load  # noqa: PLC0415 - torch-heavy loading only in the worker
    from sim.envs.factory import task_env

    up = load(job.up.path())
    osi = None if job.osi is None else module_from_bytes(job.osi)
    env = DynamicsObservation(task_env(up.task, job.randomization), DynamicsSpec.from_dict(up.meta["dynamics"]))
    history = History(job.horizon, reading_dim(up, env, job.effort), up.action_dim)
    try:
        with one_thread():
            return [rollout_episode(env, up, job.seed + i, history, osi, None, job.effort) for i in range(job.episodes)]
    finally:
        env.close()


def collect(
    env: Any,
    up: BundlePolicy,
    steps: int,
    seed: int,
    horizons: list[int],
    osi: OSINet | None = None,
    progress: bool = True,
    executor: Executor | None = None,
    effort: bool = False,
) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray, dict[str, float]]:
    """Run the UP in ``env`` (a universal env) for whole episodes seeded ``seed, seed + 1, ...`` until they hold
    ``steps`` steps; returns windows per history length, the true normalized mu of each window, the episode of each
    window, and the rollouts' success rate. ``executor``: the episodes run as jobs on worker processes or a Ray
    cluster (the same episodes, the same data). ``effort``: the windows hold the joint efforts too."""
    step_dim, action_dim = reading_dim(up, env, effort), up.action_dim
    # one history of the longest length: a shorter one's window is its tail (the start-of-episode padding included)
    longest = max(horizons)
    desc = "rollouts, UP on " + ("estimates" if osi is not None else "true mu")
    bar = tqdm(total=steps, desc=desc, unit="st", disable=not progress, leave=False, mininterval=2.0)
    if executor is not None and (executor.remote or executor.workers > 1):
        estimator = None if osi is None else module_bytes(osi)
        template = RolloutJob(
            FolderValue.read(up.path), env.unwrapped.randomization, seed, 0, longest, estimator, effort
        )
        episodes = run_until(
            run_rollout_job,
            lambda first, count: replace(template, seed=seed + first, episodes=count),
            lambda episode: len(episode[1]),
            steps,
            executor,
            ROLLOUT_JOB_EPISODES,
            lambda total: bar.update(min(total, steps) - bar.n),
        )
    else:
        history = History(longest, step_dim, action_dim)
        episodes, done = [], 0
        with one_thread():  # as the jobs run: the same numbers
            while done < steps:
                on_step = lambda o, i: bar.update(1)  # noqa: E731
                episodes.append(rollout_episode(env, up, seed + len(episodes), history, osi, on_step, effort))
                done += len(episodes[-1][1])
    bar.close()
    full = np.concatenate([e[0] for e in episodes])
    step = step_dim + action_dim
    arrays = {h: np.ascontiguousarray(full[:, (longest - h) * step :]) for h in horizons}
    targets = np.concatenate([e[1] for e in episodes])
    episode_ids = np.concatenate([np.full(len(e[1]), i) for i, e in enumerate(episodes)])
    stats = {"episodes": len(episodes), "success_rate": sum(e[2] for e in episodes) / len(episodes)}
    return arrays, targets, episode_ids, stats


def estimation_errors(net: OSINet, windows: np.ndarray, targets: np.ndarray, spec: DynamicsSpec) -> dict[str, Any]:
    """Per-parameter error of an estimator: RMSE in normalized units (the training range spans 2) and mean absolute
    error in physical units; plus the error of always guessing the range's centre, for scale."""
    with torch.no_grad():
        pred = net(torch.as_tensor(windows)).numpy()
    rmse = np.sqrt(((pred - targets) ** 2).mean(0))
    mae = np.abs(spec.denormalize(pred) - spec.denormalize(targets)).mean(0)
    centre = np.sqrt((targets**2).mean(0))
    return {
        "rmse_normalized": {n: round(float(v), 4) for n, v in zip(spec.names, rmse, strict=True)},
        "mae_physical": {n: float(f"{v:.4g}") for n, v in zip(spec.names, mae, strict=True)},
        "rmse_normalized_guessing_centre": {n: round(float(v), 4) for n, v in zip(spec.names, centre, strict=True)},
        "rmse_normalized_mean": round(float(rmse.mean()), 4),
    }


def observability(
    env: Any, up: BundlePolicy, spec: DynamicsSpec, episodes: int = 8, seed: int = OBSERVABILITY_SEED
) -> dict[str, Any]:
    """How far each term of mu moves the readings the estimator can see, in units of the sensor noise on them.

    In each of ``episodes`` scenes the UP drives ``env`` (a universal env) once with every term of mu at its
    range's centre and the sensor noise terms off, and its actions are recorded. The same actions are replayed
    with the sensor noise at the centre of its range: per reading, the RMS of the difference is the noise. Then they
    are replayed with one term at the low and then at the high end of its range (noise off), and the two runs'
    readings compared over the steps both lasted: RMS of the difference, each reading divided by its noise. An
    effect well below 1 is buried in the noise of every reading: a term that shows no more than that cannot be
    estimated from these readings, whatever the history. The readings are the proprioception and, where the env
    has them, the joint efforts. Returns ``effect`` (term -> RMS in noise units over every reading),
    ``effect_proprio`` (the proprioception alone), ``effect_effort`` (the efforts alone; absent without them),
    ``noise_rms`` (per reading, physical units: proprioception, then efforts) and ``episodes``."""
    config = env.unwrapped.randomization
    quiet_terms = tuple(t.name for t in config.terms if t.name in SENSOR_NOISE_TERMS)
    quiet = {name: 0.0 for name in quiet_terms}
    noisy = _centres(DynamicsSpec.for_task(spec.task, config, quiet_terms)) if quiet_terms else {}
    centre = _centres(spec)
    n_proprio = int(env.observation_space["proprio"].shape[0])
    has_effort = "effort" in env.observation_space.spaces

    def read(obs: dict[str, np.ndarray]) -> np.ndarray:
        return reading(obs, osi_readings(has_effort))

    def run(pins: dict[str, float], episode: int, actions: list[np.ndarray]) -> np.ndarray:
        """Readings of one episode: ``actions`` replayed, or (empty) filled with the UP's own."""
        obs, _ = env.reset(seed=seed + episode, options={"domain": {**centre, **quiet, **pins}})
        readings, replay = [read(obs)], bool(actions)
        for t in itertools.count():
            if not replay:
                actions.append(up.act(obs))
            elif t == len(actions):
                break
            obs, _, terminated, truncated, _ = env.step(actions[t])
            readings.append(read(obs))
            if terminated or truncated:
                break
        return np.asarray(readings, dtype=float)

    def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        n = min(len(a), len(b))
        return a[:n] - b[:n]

    actions: list[list[np.ndarray]] = [[] for _ in range(episodes)]
    clean = [run({}, i, actions[i]) for i in range(episodes)]
    noise = np.concatenate([difference(run(noisy, i, actions[i]), clean[i]) for i in range(episodes)])
    noise_rms = np.sqrt((noise**2).mean(0))
    seen = noise_rms > 1e-9  # readings no noise term touches are left out: nothing to compare with
    parts = {"effect": seen, "effect_proprio": seen & (np.arange(len(seen)) < n_proprio)}
    if has_effort:
        parts["effect_effort"] = seen & (np.arange(len(seen)) >= n_proprio)

    out: dict[str, Any] = {key: {} for key in parts}
    for q in spec.params:
        diffs = np.concatenate(
            [
                difference(run({q.name: q.low}, i, actions[i]), run({q.name: q.high}, i, actions[i]))
                for i in range(episodes)
            ]
        )
        for key, mask in parts.items():
            out[key][q.name] = round(float(np.sqrt(np.mean((diffs[:, mask] / noise_rms[mask]) ** 2))), 3)
    return {**out, "noise_rms": [float(f"{v:.3g}") for v in noise_rms], "episodes": episodes}


def _centres(spec: DynamicsSpec) -> dict[str, float]:
    """Each term of ``spec`` at the centre of its range (geometric for log-uniform terms), physical units."""
    return dict(zip(spec.names, (float(v) for v in spec.denormalize(np.zeros(len(spec)))), strict=True))


def train_osi(config: OSIConfig, progress: bool = True) -> dict[str, Any]:
    """Train the estimator for a universal policy; write ``OUT/bundle`` (UP + estimator) and ``OUT/report.json``."""
    from policies.loader import load  # noqa: PLC0415 - torch-heavy loading only for training
    from sim.envs.factory import task_env

    if not config.command:
        config.command = " ".join(shlex.quote(a) for a in ["s2r", *sys.argv[1:]])
    out = Path(config.out)
    if (out / "report.json").exists():
        raise FileExistsError(f"{out} already holds an estimator run; choose another --out")
    up = load(config.policy)
    if "dynamics" not in up.obs_spec.keys or "dynamics" not in up.meta:
        raise BundleError(f"{config.policy}: not a universal policy (train one with s2r train --universal)")
    spec = DynamicsSpec.from_dict(up.meta["dynamics"])
    horizons = sorted({*config.compare_histories, config.history})
    env = DynamicsObservation(task_env(up.task, config.randomization), spec)  # mu in the UP's own ranges
    up.check_robot(env.unwrapped.config)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report: dict[str, Any] = {"config": asdict(config), "dynamics": spec.names}
    report["observability"] = observability(env, up, spec)
    if progress:
        seen = "effect" if config.effort else "effect_proprio"  # what this estimator reads
        tqdm.write(f"observability, RMS effect on the readings in sensor-noise units: {report['observability'][seen]}")

    # stage 1: the UP acts on the true mu; estimators of every history length on the same data
    train_n = int(config.steps * 0.9)
    executor = Executor(config.workers, config.ray)
    windows, targets, episodes, stats = collect(
        env, up, config.steps, OSI_SEED + config.seed * 100_000, horizons, None, progress, executor, config.effort
    )
    report["stage1_rollouts"] = stats
    by_history = {}
    nets = {}
    for h in horizons:
        nets[h] = fit_osi(
            windows[h][:train_n],
            targets[:train_n],
            tuple(config.hidden),
            config.epochs,
            config.seed,
            episodes=episodes[:train_n],
        )
        by_history[h] = estimation_errors(nets[h], windows[h][train_n:], targets[train_n:], spec)
        if progress:
            tqdm.write(f"history {h}: held-out RMSE (normalized) {by_history[h]['rmse_normalized_mean']:.3f}")
    report["error_by_history"] = {str(h): v for h, v in by_history.items()}

    # stage 2: the UP acts on the estimator's output; continue training on both stages' data
    net = nets[config.history]
    w2, t2, e2, stats2 = collect(
        env,
        up,
        config.steps,
        OSI_SEED + config.seed * 100_000 + 50_000,
        [config.history],
        net,
        progress,
        executor,
        config.effort,
    )
    report["stage2_rollouts"] = stats2
    n2 = int(len(t2) * 0.9)
    x = np.concatenate([windows[config.history][:train_n], w2[config.history][:n2]])
    y = np.concatenate([targets[:train_n], t2[:n2]])
    groups = np.concatenate([episodes[:train_n], e2[:n2] + episodes[-1] + 1])
    net = fit_osi(x, y, tuple(config.hidden), max(1, config.epochs // 2), config.seed + 1, net=net, episodes=groups)
    report["final_error_on_estimate_driven_rollouts"] = estimation_errors(net, w2[config.history][n2:], t2[n2:], spec)
    env.close()

    write_osi_bundle(out / "bundle", up, net, config)
    report.update(wall_s=round(time.monotonic() - started, 1), bundle=str(out / "bundle"))
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def write_osi_bundle(path: Path, up: BundlePolicy, net: OSINet, config: OSIConfig) -> Path:
    """Copy the UP bundle to ``path`` and add the estimator (``osi.pt`` and the ``osi`` entry of bundle.yaml)."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    shutil.copytree(up.path, path)
    meta = dict(up.meta)
    meta["osi"] = {
        "history": int(config.history),
        "proprio_dim": int(up.obs_spec.shapes["proprio"][0]),
        "effort_dim": effort_dim(up.meta) if config.effort else 0,
        "inputs": int(net.mlp[0].in_features),
        "hidden": list(config.hidden),
        "training": {"command": config.command, "steps_per_stage": config.steps, "seed": config.seed},
    }
    torch.save(net.state_dict(), path / OSI_WEIGHTS)
    (path / BUNDLE_FILE).write_text(yaml.safe_dump(meta, sort_keys=False, width=120))
    return path


__all__ = [
    "AdaptivePolicy",
    "History",
    "OSIConfig",
    "OSINet",
    "collect",
    "estimation_errors",
    "fit_osi",
    "observability",
    "train_osi",
]

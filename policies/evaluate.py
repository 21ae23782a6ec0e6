"""``s2r eval``: success rates of policy bundles (or the scripted expert) on seeded episodes, and robustness
sweeps across one domain parameter drawn as a curve per policy (as in Rajeswaran et al. 2017, EPOpt, Fig. 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from policies.bundle import BundleError, BundlePolicy, load
from policies.rollout import EpisodePolicy, RolloutSummary, make_expert, run_policy

EXPERT = "expert"


class _BundleEpisodePolicy:
    """Adapts a bundle (``act(observation)``) to the episode runner (``act(observation, info)``)."""

    def __init__(self, policy: BundlePolicy) -> None:
        self.policy = policy

    def reset(self) -> None:
        self.policy.reset()

    def act(self, obs: dict, info: dict) -> np.ndarray:
        return self.policy.act(obs)


def policy_factory(spec: str, task: str) -> tuple[Callable[[gym.Env], EpisodePolicy], str, str, tuple[int, int]]:
    """(env -> episode policy, name, obs mode, image size) for a bundle path or ``"expert"``; the bundle is loaded
    once and checked against the task, and against each env's robot and observation spec."""
    if spec == EXPERT:
        return (lambda env: make_expert(task, env)), "scripted_expert", "state", (64, 64)
    bundle = load(spec)
    if bundle.task != task:
        raise BundleError(f"{spec}: a {bundle.task!r} policy, not a {task!r} one")
    obs_mode, image_size = "state", (64, 64)
    if "rgb" in bundle.obs_spec.keys:  # the camera resolution the student was trained at
        h, w = bundle.obs_spec.shapes["rgb"][:2]
        obs_mode, image_size = "rgbd", (w, h)

    def make(env: gym.Env) -> EpisodePolicy:
        bundle.check_robot(env.unwrapped.config)
        bundle.check_observation_space(env.observation_space)
        return _BundleEpisodePolicy(bundle)

    return make, Path(spec).name, obs_mode, image_size


def evaluate(
    spec: str,
    task: str,
    episodes: int,
    seed: int,
    randomization: str = "default",
    domain: str | Path | dict | None = None,
    progress: bool = True,
    factory: tuple | None = None,
) -> RolloutSummary:
    """``factory``: a :func:`policy_factory` result to reuse (a sweep loads each bundle once)."""
    make, name, obs_mode, image_size = factory or policy_factory(spec, task)
    return run_policy(
        task,
        episodes,
        seed,
        make,
        name,
        obs_mode=obs_mode,
        randomization=randomization,
        domain=domain,
        progress=progress,
        image_size=image_size,
    )


def parse_sweep(text: str) -> tuple[str, np.ndarray]:
    """``NAME=LO:HI:K`` -> (NAME, K evenly spaced values from LO to HI)."""
    try:
        name, rng = text.split("=", 1)
        lo, hi, k = rng.split(":")
        values = np.linspace(float(lo), float(hi), int(k))
    except ValueError as e:
        raise ValueError(f"--sweep {text!r}: expected NAME=LO:HI:K, e.g. object_mass=0.05:0.3:6") from e
    if int(k) < 2:
        raise ValueError(f"--sweep {text!r}: K must be at least 2")
    return name.strip(), values


def sweep(
    specs: list[str],
    task: str,
    name: str,
    values: np.ndarray,
    episodes: int,
    seed: int,
    randomization: str = "default",
    domain: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Success of each policy at each value of the domain parameter ``name`` (pinned; the rest as configured)."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        factory = policy_factory(spec, task)
        points = []
        for v in values:
            pinned = {**(domain or {}), name: float(v)}
            summary = evaluate(spec, task, episodes, seed, randomization, pinned, progress, factory)
            points.append(
                {
                    "value": float(v),
                    "success_rate": summary.success_rate,
                    "success_ci95": list(summary.success_ci95),
                    "mean_return": summary.mean_return,
                }
            )
        curves[spec] = points
    return {"parameter": name, "values": [float(v) for v in values], "episodes_per_point": episodes, "curves": curves}


def plot_sweep(result: dict[str, Any], path: str | Path, title: str = "") -> None:
    """Success vs parameter, one line per policy, with 95 % intervals as error bars; PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for spec, points in result["curves"].items():
        x = [pt["value"] for pt in points]
        y = [pt["success_rate"] for pt in points]
        lo = [pt["success_rate"] - pt["success_ci95"][0] for pt in points]
        hi = [pt["success_ci95"][1] - pt["success_rate"] for pt in points]
        ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=Path(spec).name if spec != EXPERT else spec)
    ax.set_xlabel(result["parameter"])
    ax.set_ylabel(f"success rate ({result['episodes_per_point']} episodes per point)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)

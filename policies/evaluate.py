"""``s2r eval``: success rates of policy bundles (or the scripted expert) on seeded episodes, and robustness
sweeps across one domain parameter drawn as a curve per policy (as in Rajeswaran et al. 2017, EPOpt, Fig. 2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from policies.adaptive import AdaptivePolicy
from policies.bundle import BundlePolicy
from policies.loader import load
from policies.rollout import BundleEpisodePolicy, EpisodePolicy, RolloutSummary, make_expert, run_policy
from robot.config_file import shipped_robot
from robot.spec import BundleError
from sim.randomization.dynamics import DynamicsSpec

EXPERT = "expert"


@dataclass
class PolicySource:
    """How to run one policy: ``make(env)`` builds its episode policy; the env it needs (obs mode, image size,
    and ``dynamics``: the ranges that normalize mu in the observation, for a universal policy)."""

    make: Callable[[gym.Env], EpisodePolicy]
    name: str
    obs_mode: str = "state"
    image_size: tuple[int, int] = (64, 64)
    camera: dict[str, Any] = field(default_factory=dict)  # env camera options the student was trained with
    dynamics: DynamicsSpec | None = None
    bundle: BundlePolicy | None = None
    robot: str | None = None  # the simulated robot (a hardware config name; None: the task's own)


def policy_factory(spec: str, task: str, mode: str | None = None) -> PolicySource:
    """The :class:`PolicySource` of a bundle path or ``"expert"``; the bundle is loaded once and checked against
    the task, and against each env's robot and observation spec. ``mode``: ``"adapt"`` (the default) or
    ``"oracle"`` for a bundle with an online estimator; other policies have one way to run and ignore it."""
    if spec == EXPERT:
        return PolicySource(lambda env: make_expert(task, env), "scripted_expert")
    bundle = load(spec)
    if bundle.task != task:
        raise BundleError(f"{spec}: a {bundle.task!r} policy, not a {task!r} one")
    if isinstance(bundle, AdaptivePolicy):
        bundle.set_mode(mode or "adapt")

    def make(env: gym.Env) -> EpisodePolicy:
        bundle.check_robot(env.unwrapped.config)
        bundle.check_observation_space(env.observation_space)
        return BundleEpisodePolicy(bundle)

    source = PolicySource(make, Path(spec).name, bundle=bundle, robot=shipped_robot(bundle.meta["robot"]["name"]))
    if isinstance(bundle, AdaptivePolicy):
        source.name += f" ({bundle.mode})"
    if "dynamics" in bundle.meta:  # a universal policy: mu normalized with its own training ranges
        source.dynamics = DynamicsSpec.from_dict(bundle.meta["dynamics"])
    if "rgb" in bundle.obs_spec.keys:  # the camera resolution the student was trained at
        h, w = bundle.obs_spec.shapes["rgb"][:2]
        source.obs_mode, source.image_size = "rgbd", (w, h)
        source.camera = dict(bundle.meta.get("camera") or {})  # supersample, crop (older bundles: none)
    return source


def evaluate(
    spec: str,
    task: str,
    episodes: int,
    seed: int,
    randomization: str = "default",
    domain: str | Path | dict | None = None,
    progress: bool = True,
    factory: PolicySource | None = None,
    mode: str | None = None,
    trace_episodes: int = 0,
    record: str | Path | None = None,
) -> RolloutSummary:
    """``factory``: a :func:`policy_factory` result to reuse (a sweep loads each bundle once). ``trace_episodes``:
    record the online estimate of mu and its true value every step of the first N episodes
    (``summary.estimate_traces``). ``record``: also write the episodes as a LeRobotDataset in this folder."""
    source = factory or policy_factory(spec, task, mode)
    trace = None
    if trace_episodes > 0 and isinstance(source.bundle, AdaptivePolicy):
        trace = _EstimateTrace(source.bundle, trace_episodes)
    summary = run_policy(
        task,
        episodes,
        seed,
        source.make,
        source.name,
        obs_mode=source.obs_mode,
        randomization=randomization,
        domain=domain,
        progress=progress,
        image_size=source.image_size,
        camera=source.camera,
        dynamics=source.dynamics,
        on_step=trace,
        dataset=None if record is None else Path(record),
        robot=source.robot,
    )
    if trace is not None:
        summary.estimate_traces = trace.traces
    return summary


class _EstimateTrace:
    """Per-step (estimate, true mu) of the first episodes of a run, in physical units."""

    def __init__(self, policy: AdaptivePolicy, episodes: int) -> None:
        self.policy, self.episodes = policy, episodes
        self.traces: list[dict[str, Any]] = []

    def __call__(self, episode: int, obs: dict, info: dict) -> None:
        if episode >= self.episodes:
            return
        if len(self.traces) <= episode:
            truth = self.policy.dynamics.denormalize(obs["dynamics"])
            self.traces.append(
                {
                    "episode": episode,
                    "true": dict(zip(self.policy.dynamics.names, truth.tolist(), strict=True)),
                    "estimates": [],
                }
            )
        self.traces[episode]["estimates"].append(self.policy.estimate)


def plot_estimates(traces: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Estimated (lines) vs true (dashed) value of each parameter of mu over an episode, one colour per episode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(traces[0]["true"])
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), dpi=110, squeeze=False)
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        for i, tr in enumerate(traces):
            colour = f"C{i % 10}"
            y = [e[name] for e in tr["estimates"]]
            ax.plot(range(1, len(y) + 1), y, color=colour, lw=1.2)
            ax.axhline(tr["true"][name], color=colour, ls="--", lw=1.0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(title or "online estimate (solid) vs true value (dashed)", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


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
    mode: str | None = None,
) -> dict[str, Any]:
    """Success of each policy at each value of the domain parameter ``name`` (pinned; the rest as configured)."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        factory = policy_factory(spec, task, mode)
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
    return {
        "parameter": name,
        "unit": parameter_unit(task, randomization, name),
        "values": [float(v) for v in values],
        "episodes_per_point": episodes,
        "curves": curves,
    }


def parameter_unit(task: str, randomization: str, name: str) -> str:
    """The unit of the domain value ``name`` in ``randomization``: its target's unit, or "x nominal" for a term that
    scales its target ("" for a name no term has)."""
    from sim import TASK_IDS

    env = gym.make(TASK_IDS[task], randomization=randomization)
    try:
        base = env.unwrapped
        term = next((t for t in base.randomization.terms if t.name == name), None)
        if term is None:
            return ""
        return "x nominal" if term.operation == "scale" else base.targets[term.target].unit
    finally:
        env.close()


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
    unit = result.get("unit")  # sweeps saved before units were recorded have none
    ax.set_xlabel(f"{result['parameter']} ({unit})" if unit and unit != "-" else result["parameter"])
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

"""``s2r eval``: success rates of policy bundles (or the scripted expert) on seeded episodes, and robustness
sweeps across one domain parameter drawn as a curve per policy (as in Rajeswaran et al. 2017, EPOpt, Fig. 2);
in this process, or as jobs over worker processes or a Ray cluster (:func:`evaluate_jobs`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from policies.adaptive import AdaptivePolicy
from policies.bundle import BundlePolicy, bundle_path
from policies.cluster import Executor, FolderValue, one_thread, run_jobs
from policies.loader import load
from policies.rollout import (
    BundleEpisodePolicy,
    EpisodePolicy,
    EpisodeResult,
    RolloutSummary,
    make_expert,
    run_policy,
    summarize,
)
from robot.config_file import shipped_robot
from robot.spec import BundleError
from sim.randomization.config import RandomizationConfig, load_domain, load_randomization
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
    executor: Executor | None = None,
) -> RolloutSummary:
    """``factory``: a :func:`policy_factory` result to reuse (a sweep loads each bundle once). ``trace_episodes``:
    record the online estimate of mu and its true value every step of the first N episodes
    (``summary.estimate_traces``). ``record``: also write the episodes as a LeRobotDataset in this folder.
    ``executor``: run the episodes in jobs over worker processes or a Ray cluster (:func:`evaluate_jobs`;
    the same results), without traces or a recording."""
    source = factory or policy_factory(spec, task, mode)
    if executor is not None and (executor.remote or executor.workers > 1):
        if trace_episodes > 0 or record is not None:
            raise ValueError("estimate traces and recordings are made in this process: evaluate without workers")
        specs = [(spec, source.name)]
        return evaluate_jobs(executor, specs, task, episodes, seed, randomization, [domain], mode, progress)[0][0]
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


# -- evaluation in jobs ----------------------------------------------------------------------------------------------
# ``s2r eval --workers N`` or ``--ray ADDRESS`` (policies/cluster.py): each job runs a stretch of consecutive seeds in
# its own env and carries everything by value (the bundle's files, the resolved randomization config, the pinned
# domain), so it runs the same on any worker. Episode ``i`` has seed ``seed + i`` whoever runs it, and an episode does
# not depend on the env's earlier ones, so the results equal a run in this process (tests/test_cluster.py).

#: Episodes per job: enough to amortize a job's start (an env and the bundle loaded, about a second here) and few
#: enough that two workers share a 30-episode evaluation evenly.
JOB_EPISODES = 5


@dataclass(frozen=True)
class EpisodeJob:
    """Episodes with seeds ``seed .. seed + episodes - 1`` of ``policy`` (None: the scripted expert) on ``task``."""

    policy: FolderValue | None
    task: str
    mode: str | None  # an adaptive bundle's mode (adapt | oracle)
    seed: int
    episodes: int
    randomization: RandomizationConfig
    domain: dict[str, Any] | None


def run_episode_job(job: EpisodeJob) -> list[EpisodeResult]:
    """The job's episodes, in seed order (in a worker: torch on one core)."""
    spec = EXPERT if job.policy is None else str(job.policy.path())
    with one_thread():
        summary = evaluate(
            spec, job.task, job.episodes, job.seed, job.randomization, job.domain, progress=False, mode=job.mode
        )
    return summary.per_episode


def episode_jobs(
    spec: str,
    task: str,
    episodes: int,
    seed: int,
    randomization: str | Path,
    domain: str | Path | dict | None,
    mode: str | None,
) -> list[EpisodeJob]:
    """``episodes`` episodes from seed ``seed`` cut into jobs of :data:`JOB_EPISODES`."""
    config = load_randomization(randomization, task)
    return _cut_jobs(_policy_value(spec), task, episodes, seed, config, load_domain(domain), mode)


def _policy_value(spec: str) -> FolderValue | None:
    """The bundle's files, by value (None for the scripted expert)."""
    return None if spec == EXPERT else FolderValue.read(bundle_path(spec))


def _cut_jobs(
    policy: FolderValue | None,
    task: str,
    episodes: int,
    seed: int,
    config: RandomizationConfig,
    pinned: dict[str, Any] | None,
    mode: str | None,
) -> list[EpisodeJob]:
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    return [
        EpisodeJob(policy, task, mode, seed + start, min(JOB_EPISODES, episodes - start), config, pinned)
        for start in range(0, episodes, JOB_EPISODES)
    ]


def gather(jobs: list[EpisodeJob], results: list[list[EpisodeResult]]) -> list[EpisodeResult]:
    """The jobs' episodes in seed order, checked: each seed exactly once (none lost or run twice)."""
    episodes = [r for part in results for r in part]
    expected = [s for job in jobs for s in range(job.seed, job.seed + job.episodes)]
    if [r.seed for r in episodes] != expected:
        raise RuntimeError(f"the workers returned seeds {[r.seed for r in episodes]}, expected {expected}")
    return episodes


def evaluate_jobs(
    executor: Executor,
    specs: list[tuple[str, str]],
    task: str,
    episodes: int,
    seed: int,
    randomization: str | Path,
    domains: list[dict | str | Path | None],
    mode: str | None = None,
    progress: bool = True,
) -> list[list[RolloutSummary]]:
    """Every (policy spec, name) of ``specs`` in every domain of ``domains`` (a sweep's points), all their jobs
    submitted at once; ``out[p][d]`` is policy ``p`` in domain ``d``."""
    config = load_randomization(randomization, task)  # read once, whatever the number of policies and points
    values = [_policy_value(spec) for spec, _ in specs]
    pinned = [load_domain(domain) for domain in domains]
    plan = [
        (p, _cut_jobs(value, task, episodes, seed, config, point, mode))
        for p, value in enumerate(values)
        for point in pinned
    ]
    jobs = [job for _, part in plan for job in part]
    results = run_jobs(
        run_episode_job,
        jobs,
        executor,
        sizes=[job.episodes for job in jobs],
        desc=f"{task} on {executor.describe()}",
        unit="ep",
        progress=progress,
    )
    out: list[list[RolloutSummary]] = [[] for _ in specs]
    at = 0
    for p, part in plan:
        per_episode = gather(part, results[at : at + len(part)])
        at += len(part)
        out[p].append(summarize(task, specs[p][1], per_episode, seed, randomization))
    assert at == len(results) and all(len(row) == len(domains) for row in out)
    return out


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
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Success of each policy at each value of the domain parameter ``name`` (pinned; the rest as configured).
    ``executor``: every point's episodes as jobs over worker processes or a Ray cluster, all submitted at once."""
    pinned = [{**(domain or {}), name: float(v)} for v in values]
    if executor is not None and (executor.remote or executor.workers > 1):
        named = [(spec, policy_factory(spec, task, mode).name) for spec in specs]
        rows = evaluate_jobs(executor, named, task, episodes, seed, randomization, pinned, mode, progress)
    else:
        rows = []
        for spec in specs:
            factory = policy_factory(spec, task, mode)
            rows.append([evaluate(spec, task, episodes, seed, randomization, d, progress, factory) for d in pinned])
    curves: dict[str, list[dict[str, Any]]] = {}
    for spec, row in zip(specs, rows, strict=True):
        curves[spec] = [
            {
                "value": float(v),
                "success_rate": summary.success_rate,
                "success_ci95": list(summary.success_ci95),
                "mean_return": summary.mean_return,
            }
            for v, summary in zip(values, row, strict=True)
        ]
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

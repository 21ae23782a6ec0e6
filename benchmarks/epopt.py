"""EPOpt measured (issue 29, part 3): the bundles' training recipe with and without EPOpt's worst-episode filter,
several training seeds each, then every policy on the same held-out episodes, in the default domain and with one
parameter at a time swept beyond its training range (as in Rajeswaran et al. 2017, EPOpt, Fig. 2).

Stages, each one ``s2r train`` per run or an evaluation in this process; a run whose ``report.json`` is in
``--work`` is not trained again (a stopped benchmark resumes):

1. ``s2r train --task T --epopt-epsilon E --seed S`` for every epsilon of ``--epsilons`` (1: every episode trains,
   i.e. without EPOpt) and seed of ``--seeds``, with the steps and evaluation of ``make bundles``;
2. each run's bundle (the one its own held-out evaluations chose) on ``--episodes`` default-domain episodes from
   ``--seed``: success, mean return and the mean return of the worst 10 % of episodes (CVaR 10 %, what EPOpt
   optimizes);
3. the same policies at every point of each sweep (``--episodes`` per point, the other terms randomized as in
   training): success with Wilson 95 % intervals per run and pooled over an arm's seeds.

Prints JSON (``--out`` also writes it) and, with ``--plot``, one panel per swept parameter: each arm pooled over its
seeds (error bars: Wilson 95 % on the pooled episodes), each run as a thin line, the training range shaded.

    python benchmarks/epopt.py --task grasp --out docs/robustness/epopt_grasp.json \
        --plot docs/robustness/epopt_grasp.png
    python benchmarks/epopt.py --task navigate --out docs/robustness/epopt_navigate.json \
        --plot docs/robustness/epopt_navigate.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.real_to_sim_to_real import rel, s2r  # noqa: E402
from benchmarks.report import emit, rate_figures  # noqa: E402

#: task -> the training recipe of ``make bundles`` (steps, evaluation every, held-out episodes per evaluation)
RECIPES: dict[str, tuple[int, int, int]] = {"grasp": (300_000, 50_000, 100), "navigate": (150_000, 25_000, 100)}
#: task -> sweeps (name, low, high, points), each reaching beyond the default randomization's range
SWEEPS: dict[str, list[tuple[str, float, float, int]]] = {
    "grasp": [("latency_s", 0.0, 0.2, 6), ("object_friction", 0.05, 0.45, 5), ("servo_strength", 0.05, 0.45, 5)],
    "navigate": [("wheel_radius_scale", 0.8, 1.2, 5), ("track_scale", 0.8, 1.2, 5)],
}
CVAR_SHARE = 0.1


def run_name(task: str, epsilon: float, seed: int) -> str:
    return f"{task}_e{epsilon:g}_s{seed}"


def train(work: Path, task: str, epsilon: float, seed: int) -> Path:
    """One training run (skipped when its report is there); its chosen bundle."""
    name = run_name(task, epsilon, seed)
    out = work / name
    if not (out / "report.json").exists():
        steps, every, episodes = RECIPES[task]
        args = ["train", "--task", task, "--algo", "ppo", "--steps", str(steps), "--seed", str(seed)]
        args += ["--epopt-epsilon", f"{epsilon:g}", "--out", str(out), "--eval-every", str(every)]
        s2r(*args, "--eval-episodes", str(episodes))
    return out / "bundle"


def training_wall(run: Path) -> float:
    """A training run's wall time (s), from its report."""
    return float(json.loads((run / "report.json").read_text())["wall_s"])


def training_range(task: str, name: str) -> tuple[float, float] | None:
    """The default randomization's range of the term ``name`` (its low and high), or None for a choice."""
    from sim.randomization.config import load_randomization

    term = next(t for t in load_randomization("default", task).terms if t.name == name)
    low, high = getattr(term.distribution, "low", None), getattr(term.distribution, "high", None)
    if low is None or high is None:
        return None
    return float(np.min(low)), float(np.max(high))


def cvar(returns: list[float], share: float = CVAR_SHARE) -> float:
    """Mean of the lowest ``share`` of ``returns`` (at least one)."""
    worst = np.sort(np.asarray(returns, dtype=float))[: max(1, int(round(share * len(returns))))]
    return float(worst.mean())


def worst_episode_dynamics(episodes: list[Any], task: str) -> dict[str, dict[str, float]]:
    """Where in its training range each dynamics term (the universal policy's mu) lay, as a fraction from 0 (low
    end) to 1 (high end), averaged over all ``episodes`` and over the worst :data:`CVAR_SHARE` of them by return:
    the episodes EPOpt trains on. A term whose worst-episode mean is far from its overall mean is one the tail is
    made of; terms that stay near it leave the tail to the scene (where the object lies, the room's layout)."""
    from sim.envs.factory import universal_terms
    from sim.randomization.config import load_randomization
    from sim.randomization.dynamics import DynamicsSpec

    spec = DynamicsSpec.for_task(task, load_randomization("default", task), universal_terms(task))
    values = np.array([[float(e.domain[name]) for name in spec.names] for e in episodes])
    where = (spec.normalize(values) + 1.0) / 2.0  # 0 .. 1 over each range (log-uniform ranges in log)
    returns = np.array([e.episode_return for e in episodes])
    worst = np.argsort(returns, kind="stable")[: max(1, int(round(CVAR_SHARE * len(returns))))]
    return {
        name: {"all": round(float(where[:, i].mean()), 3), "worst": round(float(where[worst, i].mean()), 3)}
        for i, name in enumerate(spec.names)
    }


def evaluate_runs(task: str, runs: dict[str, list[Path]], episodes: int, seed: int, workers: int) -> dict[str, Any]:
    """Every run of every arm in the default domain and at every sweep point, all episodes submitted at once."""
    from policies.cluster import Executor
    from policies.evaluate import evaluate_jobs

    specs = [(str(bundle), f"{arm}/{bundle.parent.name}") for arm, bundles in runs.items() for bundle in bundles]
    points = [(name, float(v)) for name, lo, hi, k in SWEEPS[task] for v in np.linspace(lo, hi, k)]
    domains = [None, *({name: value} for name, value in points)]
    rows = evaluate_jobs(Executor(workers), specs, task, episodes, seed, "default", domains)
    by_spec = dict(zip([s for s, _ in specs], rows, strict=True))
    out: dict[str, Any] = {"default_domain": {}, "sweeps": {}}
    for arm, bundles in runs.items():
        summaries = [by_spec[str(b)] for b in bundles]
        returns = [[e.episode_return for e in row[0].per_episode] for row in summaries]
        wins = [sum(e.success for e in row[0].per_episode) for row in summaries]
        out["default_domain"][arm] = {
            **rate_figures(sum(wins), episodes * len(bundles)),
            "mean_return": round(float(np.mean(returns)), 3),
            "cvar10_return": round(cvar([r for run in returns for r in run]), 3),
            "worst_episode_dynamics": worst_episode_dynamics(
                [e for row in summaries for e in row[0].per_episode], task
            ),
            "runs": {
                rel(b): {
                    **rate_figures(w, episodes),
                    "mean_return": round(float(np.mean(r)), 3),
                    "cvar10_return": round(cvar(r), 3),
                }
                for b, w, r in zip(bundles, wins, returns, strict=True)
            },
        }
    for name, *_ in SWEEPS[task]:
        sweep: dict[str, Any] = {"values": [], "training_range": training_range(task, name), "arms": {}}
        for i, (point_name, value) in enumerate(points):
            if point_name != name:
                continue
            sweep["values"].append(round(value, 6))
            for arm, bundles in runs.items():
                per_run = [sum(e.success for e in by_spec[str(b)][1 + i].per_episode) for b in bundles]
                entry = sweep["arms"].setdefault(arm, {"pooled": [], "runs": {rel(b): [] for b in bundles}})
                entry["pooled"].append(rate_figures(sum(per_run), episodes * len(bundles)))
                for b, w in zip(bundles, per_run, strict=True):
                    entry["runs"][rel(b)].append(rate_figures(w, episodes))
        out["sweeps"][name] = sweep
    return out


def plot(result: dict[str, Any], path: str) -> None:
    """One panel per swept parameter: pooled arms with Wilson error bars, runs as thin lines, training range shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweeps = result["evaluation"]["sweeps"]
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.6 * len(sweeps), 4.2), dpi=120, squeeze=False)
    for ax, (name, sweep) in zip(axes[0], sweeps.items(), strict=True):
        x = np.asarray(sweep["values"])
        if sweep["training_range"] is not None:
            ax.axvspan(*sweep["training_range"], color="0.9", label="training range")
        for c, (arm, entry) in enumerate(sweep["arms"].items()):
            color = f"C{c}"
            for points in entry["runs"].values():
                ax.plot(x, [p["success_rate"] for p in points], color=color, lw=0.8, alpha=0.4)
            y = np.asarray([p["success_rate"] for p in entry["pooled"]])
            lo = y - np.asarray([p["ci95"][0] for p in entry["pooled"]])
            hi = np.asarray([p["ci95"][1] for p in entry["pooled"]]) - y
            ax.errorbar(x, y, yerr=[lo, hi], color=color, marker="o", capsize=3, label=arm)
        ax.set_xlabel(name)
        ax.set_ylabel(f"success ({result['episodes']} episodes per run and point)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{result['task']}: EPOpt against every episode, pooled over training seeds {result['seeds']}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def arm_name(epsilon: float) -> str:
    return "all episodes" if epsilon >= 1.0 else f"EPOpt eps {epsilon:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(RECIPES), required=True)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.2, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    parser.add_argument("--episodes", type=int, default=100, help="per run, in the default domain and per point")
    parser.add_argument("--seed", type=int, default=5_000_000, help="first evaluation seed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", default="runs/epopt")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--plot", help="PNG of the sweeps")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    runs = {arm_name(e): [train(work, args.task, e, s) for s in args.seeds] for e in args.epsilons}
    result = {
        "task": args.task,
        "epsilons": args.epsilons,
        "seeds": args.seeds,
        "episodes": args.episodes,
        "evaluation_seed": args.seed,
        "training_wall_s": {rel(b.parent): training_wall(b.parent) for bundles in runs.values() for b in bundles},
        "evaluation": evaluate_runs(args.task, runs, args.episodes, args.seed, args.workers),
    }
    if args.plot:
        plot(result, args.plot)
    emit(result, args.out)


if __name__ == "__main__":
    main()

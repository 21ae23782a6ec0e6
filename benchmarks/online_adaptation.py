"""Online adaptation compared (issue 29, part 2): the randomized policy zero-shot, the universal policy with its
estimator (UP + OSI, reading proprioception, and reading the joint efforts too), the policy with memory, and the
universal policy fed the true mu (oracle), on the same held-out episodes: inside the training ranges and in the
domains of ``docs/osi/<task>_*.yaml``, which lie outside them.

Every policy runs the same seeds from ``--seed`` in every domain (the other terms drawn by the default
randomization); success with Wilson 95 % intervals. With ``--mock-episodes N``, each policy but the oracle (the
hardware has no true mu to feed it) is also deployed through the mock robot (``s2r deploy``: the real driver bytes,
the reality on ``--engine``, MuJoCo by default) in each of ``--mock-domains``: the nominal domain, or the domains
outside the ranges by name, every other term nominal. Prints JSON (``--out`` also writes it) and, with
``--markdown``, the tables.

    python benchmarks/online_adaptation.py --task navigate --zero-shot runs/navigate_ppo \\
        --up-osi runs/navigate_up_osi --up-osi-effort runs/navigate_up_osi_effort --memory runs/navigate_memory \\
        --out docs/osi/navigate_online.json --markdown docs/osi/navigate_online.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.real_to_sim_to_real import rel  # noqa: E402
from benchmarks.report import emit, rate_figures  # noqa: E402

#: column -> (the argument naming its bundle, the mode an estimator runs in)
COLUMNS: dict[str, tuple[str, str | None]] = {
    "randomized zero-shot": ("zero_shot", None),
    "UP + OSI": ("up_osi", "adapt"),
    "UP + OSI, efforts": ("up_osi_effort", "adapt"),
    "memory": ("memory", None),
    "oracle": ("up_osi", "oracle"),
}


def domains(task: str) -> dict[str, str | None]:
    """Domain name -> file: inside the ranges (None), then each ``docs/osi/<task>_*.yaml``."""
    files = sorted((ROOT / "docs" / "osi").glob(f"{task}_*.yaml"))
    return {"inside the training ranges": None, **{f.stem.removeprefix(f"{task}_"): str(f) for f in files}}


def mock_domains(task: str) -> dict[str, str | None]:
    """Domain name -> file for the mock deploys: the nominal domain (None), then the domains outside the ranges."""
    return {"nominal": None, **{name: path for name, path in domains(task).items() if path is not None}}


def evaluate_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every column in every domain, the episodes of each mode's policies submitted at once."""
    from policies.cluster import Executor
    from policies.evaluate import evaluate_jobs, policy_factory

    chosen = {c: (getattr(args, a), m) for c, (a, m) in COLUMNS.items() if getattr(args, a)}
    named = domains(args.task)
    out: dict[str, Any] = {c: {} for c in chosen}
    for mode in dict.fromkeys(m for _, m in chosen.values()):
        columns = [c for c, (_, m) in chosen.items() if m == mode]
        specs = [(chosen[c][0], policy_factory(chosen[c][0], args.task, mode).name) for c in columns]
        rows = evaluate_jobs(
            Executor(args.workers), specs, args.task, args.episodes, args.seed, "default", list(named.values()), mode
        )
        for column, row in zip(columns, rows, strict=True):
            for name, summary in zip(named, row, strict=True):
                out[column][name] = rate_figures(sum(e.success for e in summary.per_episode), summary.episodes)
    return out


def deploy_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every column but the oracle deployed on the mock robot in each of ``--mock-domains``, one deploy at a time
    (the mock robots share their pseudo-terminal paths)."""
    from benchmarks.transfer import ROBOTS, deploy

    named = mock_domains(args.task)
    out: dict[str, Any] = {}
    for column, (arg, mode) in COLUMNS.items():
        if not getattr(args, arg) or mode == "oracle":
            continue
        out[column] = {}
        for name in args.mock_domains:
            figures = deploy(
                getattr(args, arg), ROBOTS[args.task], args.engine, named[name], args.mock_episodes, args.seed,
                adapt=mode == "adapt",
            )  # fmt: skip
            print(json.dumps({"policy": column, "domain": name, **figures}), file=sys.stderr, flush=True)
            out[column][name] = figures
    return out


def table(success: dict[str, Any], episodes: int) -> str:
    """One row per domain, one column per policy: success (Wilson 95 %)."""
    columns = list(success)
    rows = [f"| domain | episodes | {' | '.join(columns)} |", "|---|---|" + "---|" * len(columns)]
    for name in next(iter(success.values())):
        cells = []
        for column in columns:
            r = success[column][name]
            cells.append(f"{100 * r['success_rate']:.0f} % ({100 * r['ci95'][0]:.0f}-{100 * r['ci95'][1]:.0f})")
        rows.append(f"| {name} | {episodes} | {' | '.join(cells)} |")
    return "\n".join(rows) + "\n"


def markdown(result: dict[str, Any]) -> str:
    """The comparison in simulation and, where measured, through the mock robot."""
    text = "Simulation (PyBullet):\n\n" + table(result["success"], result["episodes"])
    if result.get("mock"):
        mock = result["mock"]
        text += f"\nThrough the mock robot, {mock['engine']} reality:\n\n" + table(mock["success"], mock["episodes"])
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["grasp", "navigate"], required=True)
    for arg in dict.fromkeys(a for a, _ in COLUMNS.values()):  # the oracle is the UP + OSI bundle's own UP
        parser.add_argument("--" + arg.replace("_", "-"), help="a bundle or run folder")
    parser.add_argument("--episodes", type=int, default=100, help="per policy and domain")
    parser.add_argument("--seed", type=int, default=3_000_000, help="first evaluation seed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mock-episodes", type=int, default=0, help="also deploy each policy on the mock robot")
    parser.add_argument("--engine", choices=["pybullet", "mujoco"], default="mujoco", help="the mock reality's")
    parser.add_argument(
        "--mock-domains", nargs="*", default=["nominal"], help="nominal, or names of domains outside the ranges"
    )
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--markdown", help="also write the table here")
    args = parser.parse_args()
    unknown = sorted(set(args.mock_domains) - set(mock_domains(args.task)))
    if unknown:
        parser.error(f"--mock-domains: unknown {unknown}; known: {list(mock_domains(args.task))}")
    bundles = {arg: getattr(args, arg) for arg in dict.fromkeys(a for a, _ in COLUMNS.values()) if getattr(args, arg)}
    result = {
        "task": args.task,
        "episodes": args.episodes,
        "seed": args.seed,
        "policies": {arg: rel(path) for arg, path in bundles.items()},
        "domains": {name: rel(path) if path else None for name, path in domains(args.task).items()},
        "success": evaluate_all(args),
    }
    if args.mock_episodes:
        result["mock"] = {"engine": args.engine, "episodes": args.mock_episodes, "success": deploy_all(args)}
    if args.markdown:
        Path(args.markdown).write_text(markdown(result))
    emit(result, args.out)


if __name__ == "__main__":
    main()

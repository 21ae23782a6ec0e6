"""How far each dynamics term of a task moves what a policy reads, in units of the sensor noise on it (issue 29,
part 2): the proprioception, the joint efforts, and both together (:func:`policies.osi.observability`), with
``--policy`` (a shipped bundle by default) driving the scenes. Below 1, a term's trace is buried in the noise of
every reading, so no estimator or memory can recover it from them. Prints JSON (``--out`` also writes it).

    python benchmarks/observability.py --task grasp --out docs/osi/observability_grasp.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import emit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["grasp", "navigate"], required=True)
    parser.add_argument("--policy", help="bundle that drives the scenes (default: the shipped <task>_state)")
    parser.add_argument("--episodes", type=int, default=8, help="scenes, each replayed per term and end")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    from policies.loader import load
    from policies.osi import observability
    from sim.envs.factory import task_env, universal_terms
    from sim.randomization.dynamics import DynamicsSpec

    policy = args.policy or f"{args.task}_state"
    env = task_env(args.task, "default")
    spec = DynamicsSpec.for_task(args.task, env.unwrapped.randomization, universal_terms(args.task))
    started = time.monotonic()
    figures = observability(env, load(policy), spec, episodes=args.episodes)
    emit(
        {
            "task": args.task,
            "policy": policy,
            "units": "RMS difference between a term's low and high end, per reading divided by its noise's RMS",
            **figures,
            "wall_s": round(time.monotonic() - started, 1),
        },
        args.out,
    )


if __name__ == "__main__":
    main()

"""What stale camera frames cost a camera env step: the grasp student's env (64x64 rgbd, rendered at 4x and
cropped, as ``s2r distill`` trains it) under the default randomization (fresh frames) and under
``sim/randomization/variants/grasp_student.yaml`` (frames 30-180 ms old, so the env saves the physics state after
every tick and renders frames older than one control period in a restored state).

The two variants run interleaved in rounds (``--rounds``, ``--steps`` env steps each) so that load from other
processes falls on both alike. ``step_ratio`` is the stale variant's time per step over the fresh one's, from the
summed times of all rounds, with a 95 % bootstrap interval over rounds.

Usage: python benchmarks/stale_frames.py [--rounds R] [--steps N] [--json OUT]; prints the JSON too.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from report import emit  # benchmarks/report.py (scripts run from this folder)

import sim  # noqa: F401  (registers the envs)

VARIANTS = {"fresh": "default", "stale": str(Path(sim.__file__).parent / "randomization/variants/grasp_student.yaml")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20, help="env steps per round and variant")
    parser.add_argument("--json", help="also write the JSON here")
    args = parser.parse_args()
    envs = {
        name: gym.make("s2r/Grasp-v0", obs_mode="rgbd", randomization=spec, supersample=4, crop=(96, 96, 448, 336))
        for name, spec in VARIANTS.items()
    }
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {name: [] for name in envs}
    for r in range(args.rounds):
        for name, env in envs.items():
            env.reset(seed=r)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
                if term or trunc:
                    env.reset(seed=10_000 + r)
            times[name].append(time.perf_counter() - t0)
    for env in envs.values():
        env.close()
    fresh, stale = np.array(times["fresh"]), np.array(times["stale"])
    boot = np.random.default_rng(1).integers(0, len(fresh), (2000, len(fresh)))
    ratios = stale[boot].sum(axis=1) / fresh[boot].sum(axis=1)
    emit(
        {
            "benchmark": "stale_frames",
            "machine": platform.platform(),
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "fresh_steps_per_s": round(args.steps * len(fresh) / fresh.sum(), 2),
            "stale_steps_per_s": round(args.steps * len(stale) / stale.sum(), 2),
            "step_ratio": round(float(stale.sum() / fresh.sum()), 3),
            "step_ratio_ci95": [round(float(x), 3) for x in np.percentile(ratios, [2.5, 97.5])],
        },
        args.json,
    )


if __name__ == "__main__":
    main()

"""Env steps per second per task and observation mode, against the raw physics of the same scene, on one core.

For each (task, obs_mode) and each randomization variant it measures:
- ``env_steps_per_s``: ``env.step`` with seeded random actions (episode resets excluded, timed separately);
- ``raw_steps_per_s``: the physics alone: the time spent inside ``stepSimulation`` during those same env steps
  (same scene, same motions, same substeps), expressed as env steps per second;
- ``cost_ratio`` = raw / env: how many times the raw physics an env step costs (1.0 = no overhead);
- ``reset_ms``: a whole reset (domain sampling, world rebuild, textures); ``sample_domain_ms``: drawing the
  domain alone.

Variants: ``none`` (nominal domain), ``visual`` (the default randomization with every dynamics term pinned to its
nominal value: the cost of the randomization machinery, textures, lighting, camera and image noise, on the same
physics) and ``default`` (everything randomized: the sampled worlds also change how much the physics costs).
The variants run interleaved in rounds and each rate is the best round's, the least disturbed by other load on the
machine (on a shared 2-core machine medians moved by +-10 % between runs). ``randomization_cost`` gives the
fraction of step rate each variant loses against ``none``, from the best rounds and as the median of per-round
ratios (each variant's round against the ``none`` round run just before it).

``--breakdown TASK`` measures instead the rgbd cost of each group of visual terms alone (textures, light, camera,
image and depth noise).

Usage: python benchmarks/sim_throughput.py [--steps N] [--rounds R] [--json OUT] [--breakdown grasp|navigate];
prints the JSON too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import gymnasium as gym
import numpy as np
import pybullet as p

from sim import TASK_IDS as TASKS  # importing sim registers the envs
from sim.randomization.config import neutral_value

VISUAL_PREFIXES = ("light.", "camera.", "image.", "depth.", "texture.")


class _PhysicsTimer:
    """Wraps ``pybullet.stepSimulation`` to add up the time spent inside it."""

    def __init__(self) -> None:
        self.original = p.stepSimulation
        self.total = 0.0

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = self.original(*args, **kwargs)
        self.total += time.perf_counter() - t0
        return out

    def __enter__(self) -> _PhysicsTimer:
        p.stepSimulation = self
        return self

    def __exit__(self, *exc) -> None:
        p.stepSimulation = self.original


class _Runner:
    """One env of one variant, stepping with seeded random actions and accumulating timings."""

    def __init__(self, task: str, obs_mode: str, variant: str, seed: int) -> None:
        randomization = "none" if variant == "none" else "default"
        self.env = gym.make(TASKS[task], obs_mode=obs_mode, image_size=(64, 64), randomization=randomization)
        core = self.env.unwrapped
        if variant == "visual":
            pins = {
                t.name: neutral_value(t, core.nominal[t.target])
                for t in core.randomization.terms
                if not t.target.startswith(VISUAL_PREFIXES)
            }
            core._pinned = pins
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.resets = 0
        self.env.reset(seed=seed)
        self.rates: list[float] = []
        self.physics: list[float] = []
        self.reset_time = 0.0

    def run(self, steps: int) -> None:
        env = self.env
        step_time = physics_time = 0.0
        for _ in range(steps):
            action = self.rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            with _PhysicsTimer() as timer:
                t0 = time.perf_counter()
                _, _, terminated, truncated, _ = env.step(action)
                step_time += time.perf_counter() - t0
            physics_time += timer.total
            if terminated or truncated:
                self.resets += 1
                t0 = time.perf_counter()
                env.reset(seed=self.seed + self.resets)
                self.reset_time += time.perf_counter() - t0
        self.rates.append(steps / step_time)
        self.physics.append(steps / physics_time)


def measure(task: str, obs_mode: str, steps: int, rounds: int, seed: int = 0) -> list[dict]:
    runners = {v: _Runner(task, obs_mode, v, seed) for v in ("none", "visual", "default")}
    per_round = max(1, steps // rounds)
    for _ in range(rounds):
        for runner in runners.values():
            runner.run(per_round)
    out = []
    for variant, r in runners.items():
        core = r.env.unwrapped
        t0 = time.perf_counter()
        for _ in range(200):
            core._sample_domain({})
        sample_ms = 1000 * (time.perf_counter() - t0) / 200
        # Idle physics for reference: the world as reset, motors holding, stepSimulation only.
        r.env.reset(seed=seed)
        t0 = time.perf_counter()
        for _ in range(200 * core.substeps):
            p.stepSimulation(physicsClientId=core.client)
        idle = 200 / (time.perf_counter() - t0)
        env_rate, raw_rate = float(np.max(r.rates)), float(np.max(r.physics))
        out.append(
            {
                "task": task,
                "obs_mode": obs_mode,
                "randomization": variant,
                "image_size": [64, 64] if obs_mode == "rgbd" else None,
                "substeps_per_env_step": core.substeps,
                "env_steps": per_round * rounds,
                "env_steps_per_s": round(env_rate, 1),
                "raw_steps_per_s": round(raw_rate, 1),
                "cost_ratio": round(raw_rate / env_rate, 3),
                "idle_raw_steps_per_s": round(idle, 1),
                "reset_ms": round(1000 * r.reset_time / max(r.resets, 1), 2),
                "sample_domain_ms": round(sample_ms, 3),
                "round_rates": [round(x, 1) for x in r.rates],
            }
        )
        r.env.close()
    return out


BREAKDOWN = {
    "all_visual": VISUAL_PREFIXES,
    "textures": ("texture.",),
    "light": ("light.",),
    "camera": ("camera.",),
    "image_and_depth_noise": ("image.", "depth."),
}


def breakdown(task: str, rounds: int, steps_per_round: int = 100, seed: int = 0) -> dict:
    """rgbd step cost of each group of visual terms alone (the others pinned to nominal), as the median over
    rounds of the cost against the nominal round run just before it."""
    envs = {"none": gym.make(TASKS[task], obs_mode="rgbd", randomization="none")}
    for name, prefixes in BREAKDOWN.items():
        env = gym.make(TASKS[task], obs_mode="rgbd", randomization="default")
        core = env.unwrapped
        core._pinned = {
            t.name: neutral_value(t, core.nominal[t.target])
            for t in core.randomization.terms
            if not t.target.startswith(prefixes)
        }
        envs[name] = env
    rngs = {k: np.random.default_rng(seed) for k in envs}
    resets = dict.fromkeys(envs, 0)
    rates: dict[str, list[float]] = {k: [] for k in envs}
    for env in envs.values():
        env.reset(seed=seed)
    for _ in range(rounds):
        for name, env in envs.items():
            spent = 0.0
            for _ in range(steps_per_round):
                action = rngs[name].uniform(-1, 1, env.action_space.shape).astype(np.float32)
                t0 = time.perf_counter()
                _, _, terminated, truncated, _ = env.step(action)
                spent += time.perf_counter() - t0
                if terminated or truncated:
                    resets[name] += 1
                    env.reset(seed=seed + resets[name])
            rates[name].append(steps_per_round / spent)
    for env in envs.values():
        env.close()
    return {
        name: round(float(np.median([1 - v / n for v, n in zip(rates[name], rates["none"], strict=True)])), 3)
        for name in BREAKDOWN
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="env steps per variant (default 2000)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--breakdown", choices=sorted(TASKS), help="only: rgbd cost of each group of visual terms")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    if args.breakdown:
        out = {
            "benchmark": "sim_throughput.breakdown",
            "task": args.breakdown,
            "obs_mode": "rgbd",
            "step_cost_paired_median": breakdown(args.breakdown, args.rounds),
        }
        print(json.dumps(out, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                f.write(json.dumps(out, indent=2) + "\n")
        return
    results, costs = [], []
    for task in TASKS:
        for mode in ("state", "rgbd"):
            rows = measure(task, mode, args.steps, args.rounds)
            results += rows
            by = {r["randomization"]: r for r in rows}
            base = by["none"]["env_steps_per_s"]

            def paired(variant: str, by=by) -> float:
                # Median over rounds of the cost against the "none" round run just before: robust to drift.
                pairs = zip(by[variant]["round_rates"], by["none"]["round_rates"], strict=True)
                return round(float(np.median([1 - v / n for v, n in pairs])), 3)

            costs.append(
                {
                    "task": task,
                    "obs_mode": mode,
                    "visual_step_cost": round(1 - by["visual"]["env_steps_per_s"] / base, 3),
                    "default_step_cost": round(1 - by["default"]["env_steps_per_s"] / base, 3),
                    "visual_step_cost_paired_median": paired("visual"),
                    "default_step_cost_paired_median": paired("default"),
                    "default_reset_extra_ms": round(by["default"]["reset_ms"] - by["none"]["reset_ms"], 2),
                }
            )
    out = {
        "benchmark": "sim_throughput",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores_used": 1},
        "pybullet_api": p.getAPIVersion(),
        "results": results,
        "randomization_cost": costs,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

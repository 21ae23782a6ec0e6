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
The variants run interleaved in short rounds (``--rounds``; 10 env steps each by default) so that load from other
processes on a shared machine falls on all of them alike: on this 2-core VM, whole-run rates moved by +-20 % from
one run to the next, rounds of 200 steps still left the cost +-3 points uncertain. ``randomization_cost`` gives the
fraction of step rate each variant loses against ``none`` from the summed times of all rounds, with a 95 %
bootstrap interval over rounds.

``--breakdown TASK`` measures instead the rgbd cost of each group of visual terms alone (textures, light, camera,
image and depth noise).

Usage: python benchmarks/sim_throughput.py [--steps N] [--rounds R] [--json OUT] [--breakdown grasp|navigate];
prints the JSON too.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import gymnasium as gym
import numpy as np
import pybullet as p
from report import emit  # benchmarks/report.py (scripts run from this folder)

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
        self.step_times: list[float] = []  # s spent in env.step, per round
        self.physics_times: list[float] = []  # s spent in stepSimulation, per round
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
        self.step_times.append(step_time)
        self.physics_times.append(physics_time)


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
        step_time, physics_time = float(np.sum(r.step_times)), float(np.sum(r.physics_times))
        env_rate, raw_rate = len(r.step_times) * per_round / step_time, len(r.step_times) * per_round / physics_time
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
                "round_times_s": r.step_times,
            }
        )
        r.env.close()
    return out


def step_cost(variant_times: list[float], none_times: list[float], seed: int = 0) -> dict:
    """Fraction of step rate lost against ``none`` (1 - t_none / t_variant over all rounds), with a 95 % bootstrap
    interval over rounds (pairs resampled together)."""
    v, n = np.asarray(variant_times), np.asarray(none_times)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), (2000, len(v)))
    boot = 1 - n[idx].sum(axis=1) / v[idx].sum(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"cost": round(float(1 - n.sum() / v.sum()), 3), "ci95": [round(float(lo), 3), round(float(hi), 3)]}


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
    parser.add_argument("--rounds", type=int, default=200, help="interleaved rounds (default 200: 10 steps each)")
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
        emit(out, args.json)
        return
    results, costs = [], []
    for task in TASKS:
        for mode in ("state", "rgbd"):
            rows = measure(task, mode, args.steps, args.rounds)
            results += rows
            by = {r["randomization"]: r for r in rows}
            none = by["none"]["round_times_s"]
            visual = step_cost(by["visual"]["round_times_s"], none)
            default = step_cost(by["default"]["round_times_s"], none)
            costs.append(
                {
                    "task": task,
                    "obs_mode": mode,
                    "visual_step_cost": visual["cost"],
                    "visual_step_cost_ci95": visual["ci95"],
                    "default_step_cost": default["cost"],
                    "default_step_cost_ci95": default["ci95"],
                    "default_reset_extra_ms": round(by["default"]["reset_ms"] - by["none"]["reset_ms"], 2),
                }
            )
            for row in rows:
                del row["round_times_s"]
    out = {
        "benchmark": "sim_throughput",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores_used": 1},
        "pybullet_api": p.getAPIVersion(),
        "results": results,
        "randomization_cost": costs,
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()

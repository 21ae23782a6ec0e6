"""Env steps per second per task and observation mode, against the raw physics of the same scene, on one core.

For each (task, obs_mode) it measures:
- ``env_steps_per_s``: ``env.step`` with seeded random actions (episode resets excluded, timed separately);
- ``raw_steps_per_s``: the physics alone: the time spent inside ``stepSimulation`` during those same env steps
  (same scene, same motions, same substeps), expressed as env steps per second;
- ``cost_ratio`` = raw / env: how many times the raw physics an env step costs (1.0 = no overhead);
- ``idle_raw_steps_per_s``: for reference, the world as reset with the motors holding, ``stepSimulation`` only.

Usage: python benchmarks/sim_throughput.py [--steps N] [--json OUT]; prints the JSON too.
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

import sim  # noqa: F401

TASKS = {"grasp": "s2r/Grasp-v0", "navigate": "s2r/Navigate-v0"}


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


def measure(task: str, obs_mode: str, steps: int, seed: int = 0) -> dict:
    env = gym.make(TASKS[task], obs_mode=obs_mode, image_size=(64, 64))
    core = env.unwrapped
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    step_time, reset_time, physics_time, resets, done = 0.0, 0.0, 0.0, 0, 0
    while done < steps:
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        with _PhysicsTimer() as timer:
            t0 = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            step_time += time.perf_counter() - t0
        physics_time += timer.total
        done += 1
        if terminated or truncated:
            t0 = time.perf_counter()
            env.reset(seed=seed + resets + 1)
            reset_time += time.perf_counter() - t0
            resets += 1
    # Raw physics of the same scene: the world as reset, motors holding, stepSimulation only.
    env.reset(seed=seed)
    n_sub = core.substeps
    t0 = time.perf_counter()
    for _ in range(steps):
        for _ in range(n_sub):
            p.stepSimulation(physicsClientId=core.client)
    idle_time = time.perf_counter() - t0
    env.close()
    env_rate = steps / step_time
    raw_rate = steps / physics_time
    return {
        "task": task,
        "obs_mode": obs_mode,
        "image_size": [64, 64] if obs_mode == "rgbd" else None,
        "substeps_per_env_step": n_sub,
        "env_steps": steps,
        "env_steps_per_s": round(env_rate, 1),
        "raw_steps_per_s": round(raw_rate, 1),
        "cost_ratio": round(raw_rate / env_rate, 3),
        "idle_raw_steps_per_s": round(steps / idle_time, 1),
        "reset_ms": round(1000 * reset_time / max(resets, 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="env steps per measurement (default 2000)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    results = [measure(t, m, args.steps) for t in TASKS for m in ("state", "rgbd")]
    out = {
        "benchmark": "sim_throughput",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores_used": 1},
        "pybullet_api": p.getAPIVersion(),
        "results": results,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

"""Cost of the MuJoCo reality on this machine, beside the PyBullet one measured in the same run (issue 25).

- ``physics_realtime_factor``: emulator seconds simulated per wall second when the servo emulator advances the
  world in 10 ms slices with every servo powered and commanded (the arm holding its start pose under gravity, the
  base driving its wheels): above 1, a reality keeps up with the robot's clock;
- ``render_fps``: color + depth frames per second at the mock camera's stream profile (640x480), MuJoCo's OpenGL
  (Mesa EGL, software) against PyBullet's TinyRenderer, rendered in this process as each mock camera renders
  (PyBullet's at half the resolution, its pixels repeated 2x2: ``mock.simulated_realsense.PYBULLET_RENDER_DIVISOR``;
  ``pybullet_full_size_render_fps`` beside it);
- ``build_s``: building an episode's world (scene sample, model compile, settle).

Ratios are MuJoCo over PyBullet. Usage: python benchmarks/mujoco_reality.py [--seconds S] [--frames N] [--json OUT]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from report import emit  # benchmarks/report.py (scripts run from this folder)

from mock.gap import EngineRun, command
from robot.tasks.grasp import GraspTask


def physics(run: EngineRun, seconds: float) -> float:
    """Emulator seconds per wall second over ``seconds`` of simulated time."""
    config = run.config
    targets = GraspTask(config).start_pose() if config.arm is not None else np.full(len(config.motors), 3.0)
    command(config, run.servos, targets)
    run.world.step(0.5, run.servos)  # torque on, settled
    start = time.perf_counter()
    for _ in range(int(seconds / 0.01)):
        run.world.step(0.01, run.servos)
    return seconds / (time.perf_counter() - start)


def render_fps(run: EngineRun, frames: int, divisor: int | None = None) -> float:
    camera = run.config.cameras[0].name
    run.frame(camera, divisor)  # first frame: context and model set-up
    start = time.perf_counter()
    for _ in range(frames):
        run.frame(camera, divisor)
    return frames / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="simulated seconds per physics measurement")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    out: dict = {"seconds": args.seconds, "frames": args.frames, "tasks": {}}
    for task in ("grasp", "navigate"):
        row: dict = {}
        for engine in ("pybullet", "mujoco"):
            start = time.perf_counter()
            run = EngineRun(engine, task, seed=0)
            row[f"{engine}_build_s"] = round(time.perf_counter() - start, 2)
            try:
                row[f"{engine}_physics_realtime_factor"] = round(physics(run, args.seconds), 1)
                row[f"{engine}_render_fps"] = round(render_fps(run, args.frames), 2)
                if engine == "pybullet":  # the full-size render the mock camera used to draw
                    row["pybullet_full_size_render_fps"] = round(render_fps(run, args.frames, divisor=1), 2)
            finally:
                run.close()
        row["physics_ratio"] = round(row["mujoco_physics_realtime_factor"] / row["pybullet_physics_realtime_factor"], 2)
        row["render_ratio"] = round(row["mujoco_render_fps"] / row["pybullet_render_fps"], 2)
        out["tasks"][task] = row
    emit(out, args.json)


if __name__ == "__main__":
    main()

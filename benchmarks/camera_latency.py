"""Frame rate and capture-to-read latency of RealSenseCamera through librealsense's software device.

A :class:`SimulatedRealSense` pushes frames at the configured rate (one PyBullet scene rendered once per stream
and pushed again with new frame numbers and timestamps, so that rendering speed does not limit the rate); the
camera syncs, aligns depth to color and converts it to metres on its capture thread while the main thread calls
``read()``, like a control loop. For each frame:

- ``capture_ms``: from the push into librealsense until the synced frameset reaches the capture thread (the
  frame's ``host_time_ns``);
- ``read_ms``: from the push until ``read()`` returns the frame to the caller (adds alignment, conversion to
  metres and the hand-over between threads).

Variants, run in the same process: ``aligned`` (color + depth, aligned: the issue's case) and ``color_only`` (no
depth stream: the baseline without sync and alignment).

Usage: python benchmarks/camera_latency.py [--frames N] [--width W --height H --fps F] [--json OUT]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pybullet as p
from report import emit  # benchmarks/report.py (scripts run from this folder)

from mock.simulated_realsense import SimulatedRealSense, pybullet_renderer, static_pose
from real.cameras.realsense import RealSenseCamera, SoftwareSource
from robot.description import Camera
from robot.intrinsics import Intrinsics
from sim.camera_model import RenderedFrame


def _scene() -> int:
    client = p.connect(p.DIRECT)
    floor = p.createCollisionShape(p.GEOM_BOX, halfExtents=[2, 2, 0.01], physicsClientId=client)
    p.createMultiBody(0, floor, basePosition=[0, 0, -0.01], physicsClientId=client)
    box = p.createCollisionShape(p.GEOM_BOX, halfExtents=[0.05, 0.05, 0.05], physicsClientId=client)
    p.createMultiBody(0, box, basePosition=[0.5, 0.0, 0.05], physicsClientId=client)
    return client


def _cached(renderer):
    """Render each sensor's view once; later calls return the same images."""
    cache: dict[tuple, RenderedFrame] = {}

    def _render(intr: Intrinsics, offset: np.ndarray) -> RenderedFrame:
        key = (intr, tuple(offset))
        if key not in cache:
            cache[key] = renderer(intr, offset)
        return cache[key]

    return _render


def measure(client: int, width: int, height: int, fps: int, frames: int, depth: bool) -> dict:
    profile = {"width": width, "height": height, "fps": fps}
    cfg = Camera(
        name="bench",
        model="D435",
        color=profile,
        depth=profile if depth else None,
        mount={"xyz": [0.0, 0.0, 0.5], "rpy": [0.0, 0.6, 0.0]},
        warmup_frames=5,
    )
    sim = SimulatedRealSense(cfg, _cached(pybullet_renderer(client, static_pose(cfg.mount.xyz, cfg.mount.rpy))))
    capture_ms, read_ms = [], []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with RealSenseCamera(cfg, SoftwareSource(sim)) as cam:
        t_start = time.perf_counter()
        for _ in range(frames):
            frame = cam.read(timeout=2.0)
            now = time.monotonic_ns()
            pushed = sim.push_times[frame.frame_number]
            capture_ms.append((frame.host_time_ns - pushed) / 1e6)
            read_ms.append((now - pushed) / 1e6)
        elapsed = time.perf_counter() - t_start
        stats = cam.stats.as_dict()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    return {
        "frames": frames,
        "fps": round(frames / elapsed, 2),
        "capture_ms_p50": round(float(np.percentile(capture_ms, 50)), 2),
        "capture_ms_p99": round(float(np.percentile(capture_ms, 99)), 2),
        "read_ms_p50": round(float(np.percentile(read_ms, 50)), 2),
        "read_ms_p99": round(float(np.percentile(read_ms, 99)), 2),
        "cpu_fraction_of_one_core": round(cpu / wall, 3),
        "camera_stats": stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    client = _scene()
    result = {
        "benchmark": "camera_latency",
        "profile": f"{args.width}x{args.height}@{args.fps}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "aligned": measure(client, args.width, args.height, args.fps, args.frames, depth=True),
        "color_only": measure(client, args.width, args.height, args.fps, args.frames, depth=False),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()

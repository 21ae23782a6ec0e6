"""Cost of one camera observation (``RobotEnv.camera_observation``) by supersampling factor and crop, on one core.

For each S in ``--supersample`` (and each with the grasp student's crop) it renders the grasp scene's camera frame
``--frames`` times at the 64x64 observation size, with the default randomization, and reports the median and
95th-percentile time per frame in ms and the ratio to S=1 on the whole frame, measured in the same run.

Usage: python benchmarks/camera_frames.py [--frames N] [--supersample 1,2,4] [--json OUT]; prints the JSON too.
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import numpy as np
from report import emit  # benchmarks/report.py (scripts run from this folder)

from sim import TASK_IDS

GRASP_STUDENT_CROP = (96, 96, 448, 336)  # policies/bundles/grasp_rgbd


def frame_times(supersample: int, crop: tuple[int, int, int, int] | None, frames: int, seed: int) -> np.ndarray:
    """Seconds per ``camera_observation()`` call, one per frame, over a few seeded scenes."""
    env = gym.make(TASK_IDS["grasp"], obs_mode="rgbd", randomization="default", supersample=supersample, crop=crop)
    times = []
    try:
        for i in range(frames):
            if i % 50 == 0:
                env.reset(seed=seed + i // 50)
            t0 = time.perf_counter()
            env.unwrapped.camera_observation()
            times.append(time.perf_counter() - t0)
    finally:
        env.close()
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per setting (default 300)")
    parser.add_argument("--supersample", default="1,2,4", help="factors to measure (default 1,2,4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    results = []
    for s in (int(v) for v in args.supersample.split(",")):
        for crop in (None, GRASP_STUDENT_CROP):
            t = frame_times(s, crop, args.frames, args.seed) * 1e3
            results.append(
                {
                    "supersample": s,
                    "crop": list(crop) if crop else None,
                    "ms_per_frame_p50": round(float(np.median(t)), 3),
                    "ms_per_frame_p95": round(float(np.percentile(t, 95)), 3),
                }
            )
    base = next((r["ms_per_frame_p50"] for r in results if r["supersample"] == 1 and r["crop"] is None), None)
    for r in results:
        r["ratio_to_direct_whole_frame"] = round(r["ms_per_frame_p50"] / base, 2) if base else None
    emit(
        {
            "benchmark": "camera_frames",
            "task": "grasp",
            "image_size": [64, 64],
            "frames": args.frames,
            "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
            "results": results,
        },
        args.json,
    )


if __name__ == "__main__":
    main()

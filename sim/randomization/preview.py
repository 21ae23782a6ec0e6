"""Contact sheet of randomized camera views: what the policy sees, color and depth side by side."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np

from sim import TASK_IDS  # importing sim registers the envs


def colorize_depth(depth: np.ndarray, far: float) -> np.ndarray:
    """RGB image of a metric depth map (near = bright); invalid (0) pixels are black."""
    d = np.clip(depth / far, 0, 1)
    img = cv2.applyColorMap((255 * (1 - d)).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[:, :, ::-1].copy()
    img[depth <= 0] = 0
    return img


def contact_sheet(
    task: str,
    n: int,
    seed: int,
    randomization: str | Path = "default",
    image_size: tuple[int, int] = (160, 120),
    far: float | None = None,
) -> np.ndarray:
    """An RGB image with ``n`` tiles (reset with seeds ``seed .. seed + n - 1``): color | depth."""
    if task not in TASK_IDS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_IDS)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    env = gym.make(TASK_IDS[task], obs_mode="rgbd", image_size=image_size, randomization=randomization)
    far = far or (1.2 if task == "grasp" else 4.0)
    tiles = []
    try:
        for i in range(n):
            obs, _ = env.reset(seed=seed + i)
            depth = colorize_depth(obs["depth"][:, :, 0], far)
            tile = np.hstack([obs["rgb"], depth])
            cv2.putText(tile, f"seed {seed + i}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1)
            tiles.append(np.pad(tile, ((2, 2), (2, 2), (0, 0)), constant_values=255))
    finally:
        env.close()
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    blank = np.full_like(tiles[0], 255)
    grid = [
        np.hstack(tiles[r * cols : (r + 1) * cols] + [blank] * (cols - len(tiles[r * cols : (r + 1) * cols])))
        for r in range(rows)
    ]
    return np.vstack(grid)


def write_contact_sheet(path: str | Path, sheet: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return path

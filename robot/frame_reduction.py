"""A camera frame as a camera policy sees it: cropped, resized, with one-pixel depth holes filled. The hardware
robot applies this to every frame; the simulated envs render the cropped region directly and reduce it the same
way (colour by area averaging, depth by nearest neighbour)."""

from __future__ import annotations

import cv2
import numpy as np


def reduce_frame(
    color: np.ndarray,
    depth: np.ndarray,
    image_size: tuple[int, int],
    crop: tuple[int, int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A camera frame (HxWx3 uint8 color, HxW depth in m) as a camera policy sees it: the ``crop`` region (x, y,
    width, height in px; None: the whole frame) resized to ``image_size`` (width, height), color by area averaging
    and depth by nearest neighbour (averaging would invent depths between an object and the table behind it).
    Returns (h x w x 3 uint8, h x w x 1 float32)."""
    if crop is not None:
        x, y, cw, ch = (int(v) for v in crop)
        if x < 0 or y < 0 or x + cw > color.shape[1] or y + ch > color.shape[0]:
            raise ValueError(f"crop {tuple(crop)} does not fit in the {color.shape[1]}x{color.shape[0]} frame")
        color, depth = color[y : y + ch, x : x + cw], depth[y : y + ch, x : x + cw]
    rgb = cv2.resize(color, image_size, interpolation=cv2.INTER_AREA)
    reduced = cv2.resize(fill_pixel_holes(depth), image_size, interpolation=cv2.INTER_NEAREST)
    return rgb, reduced[:, :, None].astype(np.float32)


def fill_pixel_holes(depth: np.ndarray) -> np.ndarray:
    """``depth`` (m, 0 = no reading) with each missing reading that has a reading among its 8 neighbours given the
    nearest of them (the smallest depth). ``rs.align`` leaves such one-pixel holes in a valid surface where its
    pixel-footprint rounding misses: on the mock arm 3.8 % of the grasp student's depth pixels, which changed its
    first action as much as the whole scene does. A region with no reading wider than two pixels (beyond range,
    a dark or occluded surface) keeps its holes but for its border pixels."""
    depth = np.asarray(depth, dtype=np.float32)
    holes = depth == 0
    if not holes.any():
        return depth
    # outside the image counts as no reading (erode's default border value would read as a depth of 3.4e38 m)
    nearest = cv2.erode(
        np.where(holes, np.float32(np.inf), depth),
        np.ones((3, 3), np.uint8),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=float(np.inf),
    )
    out = depth.copy()
    fill = holes & np.isfinite(nearest)
    out[fill] = nearest[fill]
    return out

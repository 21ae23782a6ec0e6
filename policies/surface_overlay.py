"""Surface repainting: a training augmentation that gives the pixels of a support surface (the grasp's table) a new
random pattern while the object, the arm and the surface's shading stay as rendered.

The scene randomization draws one table pattern per rendered scene; a camera student fitted on a few tens of
thousands of scenes still meets table patterns it has not seen (a dark striped table took the shipped grasp student
from 72 % to 62 %, README "Training"). Repainting the surface at fit time gives every pass over the data new ones, at
no rendering cost. The idea is that of random overlays of the background (Hansen and Wang 2021, "Generalization in
Reinforcement Learning by Soft Data Augmentation") restricted to the surface the object stands on, with the
pattern families of the scene's own textures (Tobin et al. 2017: flat, stripes, checker, noise) and colours drawn
in HSV as the scene randomization draws them (dark and grey surfaces as often as vivid ones). Where the new paint
is dark, the depth goes missing as the simulated D435 loses it on dark surfaces (:mod:`sim.randomization.
image_noise`: gray level under ``DARK_GRAY_LEVEL``, with the randomization's ``depth.dark_dropout`` probability):
on a dark striped table that is what the shipped grasp student fails on (82 % with that dropout off, 20 % with it
at the top of its range, 62 % drawn over the range; 60 seeds each), not the colours.

Written here: albumentations' transforms change the whole image or fixed shapes, none repaints a given mask.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from sim.randomization.image_noise import DARK_GRAY_LEVEL

PATTERNS = ("flat", "stripes", "checker", "noise")
PERIOD_PX = (3.0, 24.0)  # one pattern cycle, in pixels of the student's image (64 px: a table cell of 1-10 cm)
DARK_SHARE = 0.5  # share of two-colour patterns whose second colour is near black (the hard case seen in the README)


def _colour(rng: np.random.Generator, dark: bool = False) -> np.ndarray:
    """An RGB colour in [0, 1] drawn uniformly in HSV; ``dark``: value 0.02-0.25 and saturation at most 0.3."""
    if dark:
        h, s, v = rng.uniform(0, 1), rng.uniform(0, 0.3), rng.uniform(0.02, 0.25)
    else:
        h, s, v = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 1)
    return np.asarray(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def pattern(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random texture (HxWx3 float32 in [0, 1]): one of :data:`PATTERNS` between two colours, at a random angle,
    period (:data:`PERIOD_PX`) and phase."""
    h, w = shape
    kind = PATTERNS[int(rng.integers(len(PATTERNS)))]
    c1 = _colour(rng)
    c2 = _colour(rng, dark=rng.random() < DARK_SHARE)
    if kind == "flat":
        return np.broadcast_to(c1, (h, w, 3)).astype(np.float32)
    if kind == "noise":
        cells = int(rng.integers(2, 9))
        weight = cv2.resize(
            rng.uniform(0, 1, (cells, cells)).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR
        )
    else:
        angle, period = rng.uniform(0, np.pi), rng.uniform(*PERIOD_PX)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u = (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 1)
        v = (yy * np.cos(angle) - xx * np.sin(angle)) / period + rng.uniform(0, 1)
        weight = (np.floor(2 * u) % 2) if kind == "stripes" else ((np.floor(u) + np.floor(v)) % 2)
    return ((1 - weight)[..., None] * c1 + weight[..., None] * c2).astype(np.float32)


def repaint_surface(image: np.ndarray, surface: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (HxWx3 uint8) with the pixels ``surface`` marks (HxW uint8, 0-255: the share of the pixel showing
    the surface; edges blend) painted with a random :func:`pattern`. The surface's shading (its luminance over its
    bright level, so shadows and lighting gradients) multiplies the pattern, raised to a random power in [0, 1]
    (0: a flat paint that ignores the rendered texture, 1: the rendered shading and texture kept in full). A copy;
    ``image`` unchanged; an image without surface pixels comes back as it was."""
    share = surface.astype(np.float32) / 255.0
    on = share > 0.5
    if not on.any():
        return image.copy()
    luminance = image.astype(np.float32).mean(axis=2)
    bright = max(float(np.percentile(luminance[on], 90)), 1.0)
    shading = np.clip(luminance / bright, 0.0, 1.5) ** rng.uniform(0.0, 1.0)
    painted = pattern(share.shape, rng) * shading[..., None] * 255.0
    out = image.astype(np.float32) * (1 - share[..., None]) + painted * share[..., None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def drop_dark_depth(
    depth: np.ndarray, image: np.ndarray, surface: np.ndarray, probability: float, rng: np.random.Generator
) -> np.ndarray:
    """``depth`` (HxW or HxWx1, m, 0 = missing) with each surface pixel whose ``image`` gray level is under
    ``DARK_GRAY_LEVEL`` set to 0 with ``probability`` (the simulator's dark-surface dropout); a copy."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    drop = (gray < DARK_GRAY_LEVEL) & (surface > 127) & (rng.random(gray.shape) < probability)
    out = depth.copy()
    out[drop] = 0
    return out


class SurfaceOverlay:
    """Repaints the surface of each image of a batch with probability ``share`` (:func:`repaint_surface`) and drops
    the depth of its new dark pixels with a probability drawn per image from ``dark_dropout`` (low, high), from its
    own generator (seeded: the same fit, the same paints)."""

    def __init__(self, share: float, seed: int, dark_dropout: tuple[float, float] = (0.0, 0.0)) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"the surface overlay's share is a probability in [0, 1], got {share}")
        lo, hi = dark_dropout
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"dark_dropout must be (low, high) probabilities with low <= high, got {dark_dropout}")
        self.share = float(share)
        self.dark_dropout = (float(lo), float(hi))
        self.rng = np.random.default_rng(seed)

    def __call__(self, images: np.ndarray, depths: np.ndarray, surfaces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 images, their (N, H, W, 1) depths (m) and (N, H, W) uint8 surface masks ->
        repainted copies of the images and depths."""
        if images.shape[:3] != surfaces.shape or depths.shape[:3] != surfaces.shape:
            raise ValueError(
                f"images {images.shape}, depths {depths.shape} and surface masks {surfaces.shape} do not match"
            )
        out, out_depth = images.copy(), depths.copy()
        for i in np.flatnonzero(self.rng.random(len(images)) < self.share):
            out[i] = repaint_surface(images[i], surfaces[i], self.rng)
            probability = self.rng.uniform(*self.dark_dropout)
            if probability > 0:
                out_depth[i] = drop_dark_depth(depths[i], out[i], surfaces[i], probability, self.rng)
        return out, out_depth

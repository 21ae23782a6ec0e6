"""Procedural textures for visual randomization: flat, checker, stripes, gradient and noise patterns.

Patterns between two colors follow Tobin et al. 2017 ("Domain Randomization for Transferring Deep Neural Networks
from Simulation to the Real World"), who textured objects with random colors, gradients and checkers. A texture is
a pure function of its parameters (pattern, two RGB colors in [0, 1], frequency in cycles per texture, and an
integer seed for the noise pattern), so a recorded domain reproduces the same image.

PyBullet loads textures from files only: :class:`TextureBank` writes each texture as a small PNG in the env's
private temporary folder, loads it and removes the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pybullet as p

PATTERNS = ("flat", "checker", "stripes", "gradient", "noise")
TEXTURE_SIZE = 64  # px: 32 pattern cycles on a floor still get 2 px per cell; 128 px rendered 10-20 % slower


def make_texture(pattern: str, color: list[float], color2: list[float], frequency: float, seed: int) -> np.ndarray:
    """RGB uint8 image (TEXTURE_SIZE x TEXTURE_SIZE x 3) of ``pattern`` between ``color`` and ``color2``."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown texture pattern {pattern!r}; expected one of {PATTERNS}")
    n = TEXTURE_SIZE
    u = (np.arange(n) + 0.5) / n
    uu, vv = np.meshgrid(u, u)
    f = max(float(frequency), 1.0)
    if pattern == "flat":
        w = np.zeros((n, n))
    elif pattern == "checker":
        w = ((np.floor(uu * f) + np.floor(vv * f)) % 2).astype(float)
    elif pattern == "stripes":
        w = (np.floor(uu * f * 2) % 2).astype(float)
    elif pattern == "gradient":
        w = uu
    else:
        cells = max(2, int(round(f * 2)))
        coarse = np.random.default_rng(int(seed)).uniform(0, 1, (cells, cells)).astype(np.float32)
        w = cv2.resize(coarse, (n, n), interpolation=cv2.INTER_LINEAR).astype(float)
    c1, c2 = np.asarray(color, float)[:3], np.asarray(color2, float)[:3]
    img = (1 - w)[..., None] * c1 + w[..., None] * c2
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def element_appearance(
    params: Mapping[str, Any], nominal_color: list[float], element: str, first_rgba: list[float], repeat: float = 1.0
) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB shift every part of ``element`` moves by, the element's texture image or None when flat), from resolved
    ``params``: the shift is the element's base colour (``texture.<element>.color``) minus its nominal one
    (``nominal_color``), plus ``texture.<element>.color_shift``; a pattern is drawn from the first part's colour
    (``first_rgba``) so shifted and its second colour, at the pattern frequency times ``repeat`` (large elements
    repeat it so that cells stay a few to tens of centimetres wide). One texture spans a whole face. The same
    function dresses the simulator's scene and the MuJoCo reality's."""
    shift = np.asarray(params[f"texture.{element}.color"], dtype=float) - np.asarray(nominal_color, dtype=float)
    shift = shift + np.asarray(params[f"texture.{element}.color_shift"], dtype=float)
    pattern = params[f"texture.{element}.pattern"]
    if pattern == "flat":
        return shift, None
    frequency = float(params[f"texture.{element}.frequency"])
    base = np.clip(np.asarray(first_rgba[:3], dtype=float) + shift, 0, 1)
    image = make_texture(
        pattern,
        base.tolist(),
        params[f"texture.{element}.color2"],
        frequency * repeat,
        seed=int(1e6 * frequency) + len(element),
    )
    return shift, image


class TextureBank:
    """Writes textures as PNG files in ``folder`` and loads them into a PyBullet client."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def load(self, client: int, image: np.ndarray, name: str) -> int:
        """PyBullet texture id of ``image`` (valid until the world is reset).

        PyBullet caches textures by file name, so each texture gets a name from its content; the file is removed
        once loaded.
        """
        key = hashlib.sha1(image.tobytes()).hexdigest()[:16]
        path = self.folder / f"{name}_{key}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write texture {path}")
        try:
            return p.loadTexture(str(path), physicsClientId=client)
        finally:
            path.unlink(missing_ok=True)

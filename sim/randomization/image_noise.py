"""Image-level randomization: color corruptions with albumentations, RealSense-like depth noise with numpy.

Color: Gaussian sensor noise, Gaussian blur, brightness / contrast, gamma and JPEG artifacts, each with the
episode's sampled strength (a value of 0 / 1 / 100 skips it) and a generator seeded from the env's, so the same
seed gives the same pixels.

Depth (written here: albumentations and imgaug have no stereo-depth sensor model): the RMS error of an active
stereo camera grows with the square of the distance, ``sigma(z) = z^2 * subpixel / (f * baseline)``, Intel's
"Tuning depth cameras for best performance" white paper, with the D435 baseline of 50 mm (datasheet) and a subpixel
accuracy of 0.08; the focal length is that of the depth stream the readings come from (a frame reduced by taking
every k-th reading keeps each reading's error). Readings are quantized to the depth unit (1 mm by
default on D400 cameras), and pixels go missing at horizontal depth discontinuities (stereo occlusion), on dark
surfaces and at random.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import albumentations as A
import cv2
import numpy as np

D435_BASELINE_M = 0.050
D435_SUBPIXEL = 0.08


@dataclass(frozen=True)
class ImageNoiseParams:
    """Per-episode strengths. Intensities are fractions of full scale (0-1)."""

    noise_std: float = 0.0
    blur_sigma: float = 0.0  # px
    brightness: float = 0.0  # additive, fraction of full scale
    contrast: float = 1.0  # multiplicative
    gamma: float = 1.0
    jpeg_quality: float = 100.0
    depth_noise_scale: float = 0.0  # multiple of the D435 RMS error model
    depth_unit: float = 0.0  # m; 0 = no quantization
    depth_edge_dropout: float = 0.0  # probability a pixel at a depth edge reads 0
    depth_dark_dropout: float = 0.0  # probability a dark pixel reads 0
    depth_random_dropout: float = 0.0  # probability any pixel reads 0


def image_noise_params(params: Mapping[str, Any]) -> ImageNoiseParams:
    """The strengths an env's (or a reality's) resolved ``image.*`` and ``depth.*`` params give."""
    return ImageNoiseParams(
        noise_std=float(params["image.noise_std"]),
        blur_sigma=float(params["image.blur_sigma"]),
        brightness=float(params["image.brightness"]),
        contrast=float(params["image.contrast"]),
        gamma=float(params["image.gamma"]),
        jpeg_quality=float(params["image.jpeg_quality"]),
        depth_noise_scale=float(params["depth.noise_scale"]),
        depth_unit=float(params["depth.unit"]),
        depth_edge_dropout=float(params["depth.edge_dropout"]),
        depth_dark_dropout=float(params["depth.dark_dropout"]),
        depth_random_dropout=float(params["depth.random_dropout"]),
    )


#: Frames of Gaussian noise drawn per episode; each frame reads a window of this bank at a random offset. Drawing
#: fresh 64x64x3 normals costs about 0.12 ms per frame, as much as the rest of the color pipeline together.
NOISE_BANK = 4

#: Largest sensor noise std (fraction of full scale): the noise bank stores +-128 levels, 4 sigma at this std.
MAX_NOISE_STD = 0.125

#: Gray level (0-255) under which a surface counts as dark for depth dropout.
DARK_GRAY_LEVEL = 40


class ImageNoise:
    """Applies :class:`ImageNoiseParams` to rendered frames; one instance per episode.

    Brightness / contrast, gamma and JPEG artifacts are albumentations transforms called through their ``apply``
    methods with the episode's parameters (a ``Compose`` call costs about 0.6 ms per 64x64 frame, measured, as much
    as rendering it); the per-value ones are evaluated once per episode into a lookup table. Sensor noise is added
    with OpenCV's saturating uint8 arithmetic from a per-episode bank of Gaussian noise, and blur is OpenCV's
    Gaussian blur: albumentations' GaussNoise took 0.13 ms per frame.
    """

    def __init__(self, params: ImageNoiseParams, seed: int, max_depth_m: float = 10.0) -> None:
        """``max_depth_m``: the farthest depth (m) :meth:`depth` will see (the camera's range)."""
        if params.noise_std > MAX_NOISE_STD:
            raise ValueError(
                f"image noise_std {params.noise_std} is above {MAX_NOISE_STD} (of full scale): the uint8 noise "
                "bank holds +-128 levels, which must stay beyond 4 sigma"
            )
        self.params = params
        self.max_depth_m = float(max_depth_m)
        self.rng = np.random.default_rng(seed)
        q = params
        # Brightness / contrast and gamma are per-value maps: albumentations evaluates them once, on a ramp of the
        # 256 values, and each frame goes through the resulting lookup table (5 us instead of 24 us per frame).
        self._lut = None
        if q.brightness != 0.0 or q.contrast != 1.0 or q.gamma != 1.0:
            ramp = np.repeat(np.arange(256, dtype=np.uint8).reshape(1, 256, 1), 3, axis=2)
            if q.brightness != 0.0 or q.contrast != 1.0:
                # beta in pixel units, as the transform computes it with brightness_by_max=True
                ramp = A.RandomBrightnessContrast().apply(ramp, alpha=q.contrast, beta=q.brightness * 255.0)
            if q.gamma != 1.0:
                ramp = A.RandomGamma().apply(ramp, gamma=q.gamma)
            # the maps treat every channel alike, and OpenCV applies a one-channel table twice as fast (5 vs 10 us)
            assert (ramp == ramp[:, :, :1]).all(), "brightness / contrast / gamma differ between channels"
            self._lut = np.ascontiguousarray(ramp[0, :, 0], dtype=np.uint8)
        self._jpeg = A.ImageCompression() if q.jpeg_quality < 100 else None
        # Taps out to 2.5 sigma: OpenCV's own choice for uint8 (3 sigma) adds taps that weigh under 1/256 and, at
        # 7x7, leaves its fast path (37 vs 14 us on 64x64 at sigma 0.8, with the same output; measured).
        self._blur_size = 2 * math.ceil(2.5 * q.blur_sigma) + 1
        self._color_bank: np.ndarray | None = None
        self._buffers: dict[str, np.ndarray] = {}
        self._depth_bank: tuple[np.ndarray, ...] | None = None
        self._offsets: np.ndarray | None = None
        self._offset_index = 0

    def _next_offset(self, span: int) -> int:
        """A random start in [0, span) from a pre-drawn table (a ``Generator.integers`` call costs about 5 us)."""
        if self._offsets is None:
            self._offsets = self.rng.random(256)
        self._offset_index = (self._offset_index + 1) % len(self._offsets)
        return int(self._offsets[self._offset_index] * span)

    def _window(self, bank: np.ndarray, shape: tuple[int, ...], size: int) -> np.ndarray:
        """A random contiguous window of ``bank`` shaped ``shape``."""
        start = self._next_offset(bank.size - size + 1)
        return bank[start : start + size].reshape(shape)

    def color(self, rgb: np.ndarray) -> np.ndarray:
        """Corrupted copy of an HxWx3 uint8 image: noise, blur, brightness / contrast, gamma, JPEG."""
        q = self.params
        out = rgb
        if q.noise_std * 255 >= 0.5:  # below half a level nearly every pixel rounds back to itself
            if self._color_bank is None or self._color_bank.size < NOISE_BANK * rgb.size:
                noise = self.rng.standard_normal(NOISE_BANK * rgb.size, dtype=np.float32)
                noise *= np.float32(q.noise_std * 255)
                # stored offset by 128 as uint8 (+-128 levels: at least 4 sigma, see MAX_NOISE_STD)
                self._color_bank = (np.clip(np.rint(noise), -128, 127) + 128).astype(np.uint8)
            # one saturating OpenCV sum img + bank - 128 on two uint8 images: 6 us, against 14 us for an add of
            # int16 noise (mixed types) and 16 us for separate add and subtract of its halves (measured, warm)
            bank = self._window(self._color_bank, rgb.shape, rgb.size)
            out = cv2.addWeighted(out, 1.0, bank, 1.0, -128.0)
        if q.blur_sigma > 0.3:
            out = cv2.GaussianBlur(out, (self._blur_size, self._blur_size), q.blur_sigma)
        if self._lut is not None:
            out = cv2.LUT(out, self._lut)
        if self._jpeg is not None:
            out = self._jpeg.apply(out, quality=int(round(q.jpeg_quality)), image_type=".jpg")
        return out

    def depth(self, depth: np.ndarray, rgb: np.ndarray, focal_px: float) -> np.ndarray:
        """Noisy copy of a metric depth image (m, 0 = invalid); ``rgb`` marks dark surfaces.

        Inside an env step, with caches cold after physics and rendering, each numpy or OpenCV call costs 3-15 us
        whatever it computes on 4096 pixels, so the count of calls is what matters: every random choice is read
        from per-episode banks (:meth:`_depth_banks`) in one window per frame, and each cause of missing depth is
        a comparison against a banked threshold that is unreachable where that cause does not fire. Noise,
        quantization and random dropout are one expression, ``z' = unit * rint(z * (z * a + b))``.
        """
        q = self.params
        depth = np.asarray(depth, dtype=np.float32)
        if not (
            q.depth_noise_scale > 0
            or q.depth_unit > 0
            or q.depth_random_dropout > 0
            or q.depth_edge_dropout > 0
            or q.depth_dark_dropout > 0
        ):
            return np.maximum(depth, np.float32(0.0))
        h, w = depth.shape
        n = depth.size
        gain, offset, edge_gain, dark_level = self._depth_banks(n, focal_px)
        start = self._next_offset(gain.size - n + 1)  # one window of every bank per frame

        def window(bank: np.ndarray) -> np.ndarray:
            return bank[start : start + n].reshape(h, w)

        keep = None
        if q.depth_edge_dropout > 0:
            # A discontinuity along the stereo baseline (horizontal): a jump of more than 5 % of the depth to the
            # next pixel. A D400 camera loses depth there, on both sides of the jump, where one imager sees what
            # the other cannot (occlusion); vertical jumps match fine. ``gaps`` holds, between neighbours (with
            # always-kept borders), whether the jump times the banked gain (20, i.e. > 5 %, or 0 where dropout
            # does not fire) stays within the depth.
            gaps = self._buffer("gaps", (h, w + 1), np.bool_, fill=True)  # only the borders stay as filled
            jump = np.subtract(depth[:, 1:], depth[:, :-1])  # cv2.absdiff took 28 vs 16 us with abs in situ
            np.abs(jump, out=jump)
            jump *= window(edge_gain)[:, 1:]
            np.less_equal(jump, depth[:, 1:], out=gaps[:, 1:w])
            keep = np.logical_and(gaps[:, :-1], gaps[:, 1:])
        if q.depth_dark_dropout > 0:
            # dark: gray level under DARK_GRAY_LEVEL (the banked level is 0 where dropout does not fire)
            lit = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) >= window(dark_level)
            keep = lit if keep is None else np.logical_and(keep, lit, out=keep)
        z = depth if keep is None else depth * keep
        out = np.multiply(z, window(gain))
        out += window(offset)
        out *= z
        if q.depth_unit > 0:
            np.rint(out, out=out)
            out *= np.float32(q.depth_unit)
        return out

    def _depth_banks(self, n: int, focal_px: float) -> tuple[np.ndarray, ...]:
        """This episode's banks for :meth:`depth`, each ``NOISE_BANK * n`` long, drawn once: ``a`` and ``b``
        (float32), the edge gain (float32: 20 where edge dropout fires, else 0) and the dark level (uint8: 40 where
        dark dropout fires, else 0). One uniform draw per pixel serves the three dropout causes: a pixel goes
        missing if any applicable cause fires, i.e. if its draw is below the largest probability that applies to
        it. The standard normal of the noise is bounded below at ``-0.99 / (k max_depth_m)`` so that ``z * a + b``
        stays positive out to ``max_depth_m``: depth never turns negative (64 px wide task images at 10 m: 3.8
        sigma at noise scale 1, 1.9 at scale 2; draws below it read as the bound)."""
        if self._depth_bank is None or self._depth_bank[0].size < NOISE_BANK * n:
            q = self.params
            size = NOISE_BANK * n
            u = self.rng.random(size, dtype=np.float32)
            keep = np.full(size, 1.0 / q.depth_unit if q.depth_unit > 0 else 1.0, dtype=np.float32)
            keep[u < q.depth_random_dropout] = 0.0
            if q.depth_noise_scale > 0:
                # sigma = k z^2 (Intel's model, module docstring); the focal length is the depth image's own
                k = np.float32(q.depth_noise_scale * D435_SUBPIXEL / (focal_px * D435_BASELINE_M))
                normal = self.rng.standard_normal(size, dtype=np.float32)
                np.maximum(normal, np.float32(-0.99 / (float(k) * self.max_depth_m)), out=normal)
                gain = normal * k * keep
            else:
                gain = np.zeros(size, dtype=np.float32)
            edge_gain = np.where(u < q.depth_edge_dropout, np.float32(20.0), np.float32(0.0))
            dark_level = np.where(u < q.depth_dark_dropout, np.uint8(DARK_GRAY_LEVEL), np.uint8(0))
            self._depth_bank = (gain, keep, edge_gain, dark_level)
        return self._depth_bank

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: type, fill: object = None) -> np.ndarray:
        """A scratch array kept between frames (never returned to the caller), set to ``fill`` when created."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self._buffers[name] = np.empty(shape, dtype=dtype) if fill is None else np.full(shape, fill, dtype)
        return buf

"""Image-level randomization: color corruptions with albumentations, RealSense-like depth noise with numpy.

Color: Gaussian sensor noise, Gaussian blur, brightness / contrast, gamma and JPEG artifacts, each with the
episode's sampled strength (a value of 0 / 1 / 100 skips it) and a generator seeded from the env's, so the same
seed gives the same pixels.

Depth (written here: albumentations and imgaug have no stereo-depth sensor model): the RMS error of an active
stereo camera grows with the square of the distance, ``sigma(z) = z^2 * subpixel / (f * baseline)``, Intel's
"Tuning depth cameras for best performance" white paper, with the D435 baseline of 50 mm (datasheet) and a subpixel
accuracy of 0.08; the focal length is the depth image's own. Readings are quantized to the depth unit (1 mm by
default on D400 cameras), and pixels go missing at horizontal depth discontinuities (stereo occlusion), on dark
surfaces and at random.
"""

from __future__ import annotations

from dataclasses import dataclass

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


#: Frames of Gaussian noise drawn per episode; each frame reads a window of this bank at a random offset. Drawing
#: fresh 64x64x3 normals costs about 0.12 ms per frame, as much as the rest of the color pipeline together.
NOISE_BANK = 4


class ImageNoise:
    """Applies :class:`ImageNoiseParams` to rendered frames; one instance per episode.

    Brightness / contrast, gamma and JPEG artifacts are albumentations transforms called through their ``apply``
    methods with the episode's parameters (a ``Compose`` call costs about 0.6 ms per 64x64 frame, measured, as much
    as rendering it); the per-value ones are evaluated once per episode into a lookup table. Sensor noise is added
    with OpenCV's saturating uint8 arithmetic from a per-episode bank of Gaussian noise, and blur is OpenCV's
    Gaussian blur: albumentations' GaussNoise took 0.13 ms per frame.
    """

    def __init__(self, params: ImageNoiseParams, seed: int) -> None:
        self.params = params
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
            self._lut = np.ascontiguousarray(ramp, dtype=np.uint8)
        self._jpeg = A.ImageCompression() if q.jpeg_quality < 100 else None
        self._color_bank: np.ndarray | None = None
        self._buffers: dict[str, np.ndarray] = {}
        self._depth_bank: np.ndarray | None = None
        self._uniform_bank: np.ndarray | None = None
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
        if q.noise_std > 0:
            if self._color_bank is None or self._color_bank.size < NOISE_BANK * rgb.size:
                noise = self.rng.standard_normal(NOISE_BANK * rgb.size, dtype=np.float32)
                noise *= np.float32(q.noise_std * 255)
                self._color_bank = np.clip(np.rint(noise), -255, 255).astype(np.int16)
            # one saturating OpenCV add of signed noise (separate add and subtract of its halves took 2.5x longer)
            out = cv2.add(out, self._window(self._color_bank, rgb.shape, rgb.size), dtype=cv2.CV_8U)
        if q.blur_sigma > 0.3:
            out = cv2.GaussianBlur(out, (0, 0), q.blur_sigma)
        if self._lut is not None:
            out = cv2.LUT(out, self._lut)
        if self._jpeg is not None:
            out = self._jpeg.apply(out, quality=int(round(q.jpeg_quality)), image_type=".jpg")
        return out

    def depth(self, depth: np.ndarray, rgb: np.ndarray, focal_px: float) -> np.ndarray:
        """Noisy copy of a metric depth image (m, 0 = invalid); ``rgb`` marks dark surfaces.

        Written with in-place numpy operations on buffers kept for the episode: the straightforward version took
        75 us per 64x64 frame, this about 25 us.
        """
        q = self.params
        depth = np.asarray(depth, dtype=np.float32)
        out = np.empty_like(depth)
        if q.depth_noise_scale > 0:
            if self._depth_bank is None or self._depth_bank.size < NOISE_BANK * depth.size:
                # the bank holds N(0, 1) draws already scaled by this episode's constant k: sigma = k * z^2
                k = np.float32(q.depth_noise_scale * D435_SUBPIXEL / (focal_px * D435_BASELINE_M))
                self._depth_bank = self.rng.standard_normal(NOISE_BANK * depth.size, dtype=np.float32) * k
            np.multiply(depth, depth, out=out)
            out *= self._window(self._depth_bank, depth.shape, depth.size)
            out += depth
        else:
            np.copyto(out, depth)
        if q.depth_unit > 0:
            out *= np.float32(1.0 / q.depth_unit)
            np.rint(out, out=out)
            out *= np.float32(q.depth_unit)
        if q.depth_edge_dropout > 0 or q.depth_dark_dropout > 0 or q.depth_random_dropout > 0:
            # One uniform draw per pixel (a window of the episode's bank) serves the three causes: a pixel goes
            # missing if any cause fires, i.e. if its draw is below the largest probability that applies to it.
            if self._uniform_bank is None or self._uniform_bank.size < NOISE_BANK * depth.size:
                self._uniform_bank = self.rng.random(NOISE_BANK * depth.size, dtype=np.float32)
            u = self._window(self._uniform_bank, depth.shape, depth.size)
            p = self._buffer("p", depth.shape, np.float32)
            p.fill(q.depth_random_dropout)
            if q.depth_edge_dropout > 0:
                # A discontinuity along the stereo baseline (horizontal): a jump of more than 5 % of the depth
                # to the next pixel. A D400 camera loses depth there, where one imager sees what the other cannot
                # (occlusion); vertical jumps match fine, and skipping them halves the cost.
                diff = self._buffer("diff", (depth.shape[0], depth.shape[1] - 1), np.float32)
                np.subtract(depth[:, 1:], depth[:, :-1], out=diff)
                np.abs(diff, out=diff)
                limit = self._buffer("limit", diff.shape, np.float32)
                np.multiply(depth[:, 1:], np.float32(0.05), out=limit)
                jump = self._buffer("jump", diff.shape, np.bool_)
                np.greater(diff, limit, out=jump)
                pe = np.float32(max(q.depth_edge_dropout, q.depth_random_dropout))
                p[:, 1:][jump] = pe
                p[:, :-1][jump] = pe
            if q.depth_dark_dropout > 0:
                dark = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) < 40  # numpy max over channels took 0.1 ms
                np.maximum(p, dark * np.float32(q.depth_dark_dropout), out=p)
            drop = self._buffer("drop", depth.shape, np.bool_)
            np.less(u, p, out=drop)
            drop |= depth <= 0
            out[drop] = 0.0
        else:
            out[depth <= 0] = 0.0
        np.maximum(out, 0.0, out=out)
        return out

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """A scratch array kept between frames (never returned to the caller)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self._buffers[name] = np.empty(shape, dtype=dtype)
        return buf

"""Image-level randomization: color corruptions with albumentations, RealSense-like depth noise with numpy.

Color: Gaussian sensor noise, Gaussian blur, brightness / contrast, gamma and JPEG artifacts, each with the
episode's sampled strength (a value of 0 / 1 / 100 skips it) and a generator seeded from the env's, so the same
seed gives the same pixels.

Depth (written here: albumentations and imgaug have no stereo-depth sensor model): the RMS error of an active
stereo camera grows with the square of the distance, ``sigma(z) = z^2 * subpixel / (f * baseline)``, Intel's
"Tuning depth cameras for best performance" white paper, with the D435 baseline of 50 mm (datasheet) and a subpixel
accuracy of 0.08; the focal length is the depth image's own. Readings are quantized to the depth unit (1 mm by
default on D400 cameras), and pixels go missing at depth discontinuities, on dark surfaces and at random.
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


class ImageNoise:
    """Applies :class:`ImageNoiseParams` to rendered frames; one instance per episode."""

    def __init__(self, params: ImageNoiseParams, seed: int) -> None:
        self.params = params
        self.rng = np.random.default_rng(seed)
        q = params
        transforms = []
        if q.noise_std > 0:
            transforms.append(A.GaussNoise(std_range=(q.noise_std, q.noise_std), p=1.0))
        if q.blur_sigma > 0.3:
            transforms.append(A.GaussianBlur(blur_limit=0, sigma_limit=(q.blur_sigma, q.blur_sigma), p=1.0))
        if q.brightness != 0.0 or q.contrast != 1.0:
            b, c = q.brightness, q.contrast - 1.0
            transforms.append(A.RandomBrightnessContrast(brightness_limit=(b, b), contrast_limit=(c, c), p=1.0))
        if q.gamma != 1.0:
            g = 100.0 * q.gamma
            transforms.append(A.RandomGamma(gamma_limit=(g, g), p=1.0))
        if q.jpeg_quality < 100:
            jq = int(round(q.jpeg_quality))
            transforms.append(A.ImageCompression(quality_range=(jq, jq), p=1.0))
        self.color_pipeline = A.Compose(transforms, seed=int(self.rng.integers(2**31))) if transforms else None

    def color(self, rgb: np.ndarray) -> np.ndarray:
        """Corrupted copy of an HxWx3 uint8 image."""
        if self.color_pipeline is None:
            return rgb
        return self.color_pipeline(image=rgb)["image"]

    def depth(self, depth: np.ndarray, rgb: np.ndarray, focal_px: float) -> np.ndarray:
        """Noisy copy of a metric depth image (m, 0 = invalid); ``rgb`` marks dark surfaces."""
        q = self.params
        out = depth.astype(np.float32, copy=True)
        valid = out > 0
        if q.depth_noise_scale > 0:
            sigma = q.depth_noise_scale * out * out * D435_SUBPIXEL / (focal_px * D435_BASELINE_M)
            out += (self.rng.standard_normal(out.shape) * sigma).astype(np.float32)
        if q.depth_unit > 0:
            out = np.round(out / q.depth_unit) * q.depth_unit
        drop = np.zeros(out.shape, dtype=bool)
        if q.depth_edge_dropout > 0:
            grad = np.abs(cv2.Laplacian(depth.astype(np.float32), cv2.CV_32F))
            edges = grad > 0.05 * np.maximum(depth, 0.1)
            drop |= edges & (self.rng.uniform(size=out.shape) < q.depth_edge_dropout)
        if q.depth_dark_dropout > 0:
            dark = rgb.max(axis=2) < 40
            drop |= dark & (self.rng.uniform(size=out.shape) < q.depth_dark_dropout)
        if q.depth_random_dropout > 0:
            drop |= self.rng.uniform(size=out.shape) < q.depth_random_dropout
        out[drop | ~valid] = 0.0
        return np.clip(out, 0.0, None)

"""The pinhole camera model every part of the project shares: what a camera driver reports, what calibration
writes, what the simulator renders with. Pixels, origin at the top-left pixel's centre; ``K`` is OpenCV's
``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``. The nominal D435 models and the reader of the calibration file that
``s2r calibrate intrinsics`` writes live here too, so that the simulated and the real camera agree on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: D435 RGB sensor: 69.4 deg horizontal FOV at 1920x1080 (Intel D400 series datasheet, doc 337029), i.e.
#: fx = 960 / tan(34.7 deg) = 1386 px. Other modes scale this by height / 1080 (4:3 modes are a centre crop),
#: which reproduces the ~615 px focal length typical of 640x480 factory calibrations.
D435_COLOR_FOCAL_1080P = 960.0 / math.tan(math.radians(69.4 / 2))

#: D435 depth field of view, 87 deg horizontal at 1280x720 (Intel D400 datasheet, doc 337029); 4:3 modes are a
#: centre crop, so the focal length scales with height / 720, as for color.
D435_DEPTH_FOCAL_720P = 640.0 / math.tan(math.radians(87.0 / 2))


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics (pixels) of a ``width`` x ``height`` image, with the lens distortion when known.

    ``distortion_model`` names the model: ``"none"``, OpenCV's ``"plumb_bob"`` (k1 k2 p1 p2 k3) or
    ``"rational_polynomial"`` (8 values), or librealsense's names (``"brown_conrady"``, ``"inverse_brown_conrady"``,
    ``"kannala_brandt4"``, ...); ``distortion`` holds its coefficients.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = "none"
    distortion: tuple[float, ...] = ()

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the conventional name
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera resized (not cropped) to ``width`` x ``height``, as cv2.resize does."""
        sx, sy = width / self.width, height / self.height
        return replace(
            self,
            width=width,
            height=height,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
        )

    def cropped(self, x: int, y: int, width: int, height: int) -> Intrinsics:
        """The ``width`` x ``height`` region whose top-left pixel is (``x``, ``y``) of this image."""
        if x < 0 or y < 0 or width < 1 or height < 1 or x + width > self.width or y + height > self.height:
            raise ValueError(
                f"crop {width}x{height} at ({x}, {y}) does not fit in the {self.width}x{self.height} image"
            )
        return replace(self, width=width, height=height, cx=self.cx - x, cy=self.cy - y)

    def to_dict(self) -> dict[str, Any]:
        """Plain types (the calibration file's keys)."""
        return {
            "width": int(self.width),
            "height": int(self.height),
            "fx": float(self.fx),
            "fy": float(self.fy),
            "cx": float(self.cx),
            "cy": float(self.cy),
            "distortion_model": self.distortion_model,
            "distortion": [float(v) for v in self.distortion],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Intrinsics:
        """From :meth:`to_dict`'s keys (others are ignored); KeyError names a missing one."""
        return cls(
            int(data["width"]),
            int(data["height"]),
            float(data["fx"]),
            float(data["fy"]),
            float(data["cx"]),
            float(data["cy"]),
            str(data.get("distortion_model", "none")),
            tuple(float(v) for v in data.get("distortion") or ()),
        )


def d435_color_intrinsics(width: int, height: int) -> Intrinsics:
    """Nominal D435 color intrinsics for a stream mode (see :data:`D435_COLOR_FOCAL_1080P`); no distortion."""
    f = D435_COLOR_FOCAL_1080P * height / 1080.0
    return Intrinsics(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def d435_depth_intrinsics(width: int, height: int) -> Intrinsics:
    """Nominal D435 depth intrinsics for a depth mode (see :data:`D435_DEPTH_FOCAL_720P`); no distortion."""
    f = D435_DEPTH_FOCAL_720P * height / 720.0
    return Intrinsics(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def read_calibration(path: str | Path) -> Intrinsics:
    """The intrinsics in a calibration file written by ``s2r calibrate intrinsics`` (YAML); ValueError when the
    file is not one."""
    try:
        data = yaml.safe_load(Path(path).read_text())
        return Intrinsics.from_dict(data)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a camera calibration file (s2r calibrate intrinsics): {exc!r}") from None


def camera_intrinsics(width: int, height: int, calibration: str | Path | None = None) -> Intrinsics:
    """Pinhole color intrinsics of a configured camera at ``width`` x ``height``: its calibration file (the
    pinhole part, scaled to this size) or the nominal D435 model. A calibration of another aspect ratio is an
    error (the stream would be a crop, not a scale)."""
    if calibration is None:
        return d435_color_intrinsics(width, height)
    c = read_calibration(calibration)
    k = Intrinsics(c.width, c.height, c.fx, c.fy, c.cx, c.cy)
    if abs(k.width / k.height - width / height) > 0.01:
        raise ValueError(
            f"{calibration}: calibrated at {k.width}x{k.height}, the stream is {width}x{height} (another aspect "
            "ratio); calibrate at the stream's resolution"
        )
    return k if (k.width, k.height) == (width, height) else k.scaled(width, height)

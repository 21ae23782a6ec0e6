"""What a mock robot's sensors add to the world, for either engine: the reality's camera terms applied to every frame
between the renderer and librealsense, and its proprioceptive noise applied to the servos' readings.

The simulation applies ``image.*`` and ``depth.*`` to the image the policy sees (:mod:`sim.randomization.
image_noise`). The mock camera streams full frames that the robot crops and reduces (:func:`robot.frame_reduction.
reduce_frame`), so the terms are drawn here per *cell* of the policy's view (:class:`PolicyView`): the stream pixels
that become one policy pixel. The policy then sees the simulation's strengths:

- colour noise: one draw per cell (the reduction's area average keeps it whole; drawn per stream pixel, a 5x4 px
  cell would average it down to a fifth, and clipping at black would brighten a dark scene);
- blur: a Gaussian whose sigma is the simulation's times the cell's size in stream pixels;
- brightness, contrast and gamma: per value, at any resolution;
- JPEG: at the stream's resolution, as an MJPEG camera compresses (the simulation compresses the policy's image,
  whose artefacts are coarser);
- depth noise and quantization: per reading, with the stream's focal length, exactly as the simulation's model
  (the robot picks whole readings, nearest neighbour);
- depth dropout (random, dark surfaces, horizontal depth edges): one draw per cell, the missing region grown by
  one pixel, because the robot fills missing readings that have a valid neighbour: a dropped cell stays dropped.

Without a view (a camera used only for logging) a cell is one stream pixel.

``camera.focal_scale`` and ``camera.principal_offset`` are the lens's error against its calibration: frames are
drawn with the perturbed intrinsics while the stream declares the configured ones, as in the simulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from robot.intrinsics import Intrinsics
from robot.servo_models import torque_per_amp, torque_per_effort_unit
from sim.camera_model import RenderedFrame
from sim.randomization.image_noise import (
    D435_BASELINE_M,
    D435_SUBPIXEL,
    DARK_GRAY_LEVEL,
    ImageNoise,
    ImageNoiseParams,
    image_noise_params,
)

#: A horizontal depth jump over this fraction of the depth is a stereo occlusion edge (as the simulation's model).
EDGE_JUMP = 0.05


@dataclass(frozen=True)
class PolicyView:
    """The part of a camera stream a policy sees and the size it is reduced to (what :class:`real.robot.TaskRobot`
    does to each frame): ``image_size`` (width, height) px, ``crop`` (x, y, width, height) px of the stream or
    None for the whole frame."""

    image_size: tuple[int, int]
    crop: tuple[int, int, int, int] | None = None


def view_cells(view: PolicyView | None, width: int, height: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(cell row of each stream row, cell column of each stream column, cell width, cell height in stream px):
    cells are the stream pixels that one policy pixel averages (pixel centres mapped as ``cv2.resize`` maps them),
    continued beyond the crop at the same size; indices start at 0. Without a view a cell is one pixel."""
    if view is None:
        return np.arange(height), np.arange(width), 1.0, 1.0
    x0, y0, cw, ch = view.crop if view.crop is not None else (0, 0, width, height)
    iw, ih = view.image_size
    sx, sy = cw / iw, ch / ih
    cols = np.floor((np.arange(width) + 0.5 - x0) / sx).astype(np.int64)
    rows = np.floor((np.arange(height) + 0.5 - y0) / sy).astype(np.int64)
    return rows - rows.min(), cols - cols.min(), sx, sy


class CameraSensor:
    """A camera's errors for one episode, from a reality's resolved params; ``seed`` draws its noise."""

    def __init__(self, params: Mapping[str, Any], seed: int, view: PolicyView | None = None) -> None:
        self.focal_scale = float(params.get("camera.focal_scale", 1.0))
        self.principal_offset = tuple(float(v) for v in params.get("camera.principal_offset", (0.0, 0.0)))
        self.noise = image_noise_params(params)
        self.view = view
        self.rng = np.random.default_rng(seed)
        q = self.noise
        # brightness / contrast / gamma and JPEG through the simulation's own code (noise and blur are drawn here)
        self._per_value = ImageNoise(
            ImageNoiseParams(brightness=q.brightness, contrast=q.contrast, gamma=q.gamma, jpeg_quality=q.jpeg_quality),
            seed,
        )
        self._cells: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, float, float]] = {}

    @property
    def changes_frames(self) -> bool:
        """Whether any term alters what the renderer draws (nominal params change nothing, at no cost)."""
        return self.noise != ImageNoiseParams() or self.focal_scale != 1.0 or any(self.principal_offset)

    def intrinsics(self, declared: Intrinsics) -> Intrinsics:
        """The intrinsics the lens really has, given the ones the stream declares (px at the stream's size)."""
        dcx, dcy = self.principal_offset
        f = self.focal_scale
        return replace(declared, fx=declared.fx * f, fy=declared.fy * f, cx=declared.cx + dcx, cy=declared.cy + dcy)

    def _cell_map(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray, float, float]:
        key = (width, height)
        if key not in self._cells:
            self._cells[key] = view_cells(self.view, width, height)
        return self._cells[key]

    def _per_cell(self, draw: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return draw[rows][:, cols]

    def apply(self, frame: RenderedFrame, focal_px: float) -> RenderedFrame:
        """``frame`` as this camera delivers it: colour (HxWx3 uint8) and metric depth (HxW m, 0 = no reading, of
        the same size, drawn from the colour camera's view) with the episode's errors; ``focal_px``: the depth
        stream's focal length, for the stereo error model."""
        if not self.changes_frames:
            return frame
        color = self._color(frame.color)
        depth = None if frame.depth is None else self._depth(np.asarray(frame.depth, np.float32), frame.color, focal_px)
        return RenderedFrame(color=color, depth=depth)

    def _color(self, rgb: np.ndarray) -> np.ndarray:
        q = self.noise
        h, w = rgb.shape[:2]
        rows, cols, sx, sy = self._cell_map(w, h)
        out = rgb
        if q.noise_std * 255 >= 0.5:
            draw = self.rng.standard_normal((int(rows[-1]) + 1, int(cols[-1]) + 1, 3), dtype=np.float32)
            noise = self._per_cell(draw * np.float32(q.noise_std * 255), rows, cols)
            out = np.clip(np.rint(out.astype(np.float32) + noise), 0, 255).astype(np.uint8)
        if q.blur_sigma > 0.3:
            out = cv2.GaussianBlur(out, (0, 0), sigmaX=q.blur_sigma * sx, sigmaY=q.blur_sigma * sy)
        return self._per_value.color(out)

    def _depth(self, depth: np.ndarray, rgb: np.ndarray, focal_px: float) -> np.ndarray:
        q = self.noise
        h, w = depth.shape
        rows, cols, sx, sy = self._cell_map(w, h)
        z = np.maximum(depth, np.float32(0.0))
        dropped = np.zeros((h, w), dtype=bool)
        if q.depth_random_dropout > 0 or q.depth_dark_dropout > 0 or q.depth_edge_dropout > 0:
            u = self._per_cell(self.rng.random((int(rows[-1]) + 1, int(cols[-1]) + 1)), rows, cols)
            dropped |= u < q.depth_random_dropout
            if q.depth_dark_dropout > 0:
                dropped |= (u < q.depth_dark_dropout) & (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) < DARK_GRAY_LEVEL)
            if q.depth_edge_dropout > 0:
                jump = np.abs(np.diff(z, axis=1)) > EDGE_JUMP * z[:, 1:]
                edge = np.zeros((h, w), dtype=np.uint8)
                edge[:, 1:] |= jump
                edge[:, :-1] |= jump
                width = max(1, int(math.ceil(sx)))  # an edge takes the cells it crosses, as in the policy's image
                edge = cv2.dilate(edge, np.ones((1, 2 * width - 1), np.uint8)).astype(bool)
                dropped |= edge & (u < q.depth_edge_dropout)
            # the robot fills a missing reading that has a valid neighbour: the region is grown by one pixel
            dropped = cv2.dilate(dropped.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if q.depth_noise_scale > 0:
            # sigma = k z^2 (Intel's model; sim.randomization.image_noise), a fresh draw per reading
            k = q.depth_noise_scale * D435_SUBPIXEL / (focal_px * D435_BASELINE_M)
            z = z + self.rng.standard_normal(z.shape, dtype=np.float32) * np.float32(k) * z * z
            np.maximum(z, np.float32(0.0), out=z)
        if q.depth_unit > 0:
            z = np.rint(z / np.float32(q.depth_unit)) * np.float32(q.depth_unit)
        z[dropped] = 0.0
        return z.astype(np.float32)


class ServoReadingNoise:
    """The proprioceptive terms on the servos' readings, a fresh draw each time the plant writes them:
    ``proprio.position_noise`` and ``proprio.velocity_noise`` (Gaussian, std in the joint's units, rad or m,
    converted to each motor's rad by its scale), and on the effort (Present Current in A, or Present Load as a
    fraction of stall) ``proprio.effort_scale`` times the plant's plus Gaussian noise of std
    ``proprio.effort_noise`` in N*m of the servo's output torque, converted to the register's units as the driver
    converts back (:func:`robot.servo_models.torque_per_effort_unit`). The effort draws come from a stream of their
    own."""

    def __init__(self, params: Mapping[str, Any], motors: Sequence[Any], seed: int) -> None:
        scale = np.abs(np.asarray([m.scale for m in motors], dtype=float))
        self.position_std = float(params.get("proprio.position_noise", 0.0)) / scale
        self.velocity_std = float(params.get("proprio.velocity_noise", 0.0)) / scale
        effort_unit = np.asarray([torque_per_effort_unit(m.model) for m in motors], dtype=float)
        self.effort_std = float(params.get("proprio.effort_noise", 0.0)) / effort_unit  # servo N*m -> register
        self.effort_scale = float(params.get("proprio.effort_scale", 1.0))
        self.effort_attr = ["current" if torque_per_amp(m.model) is not None else "load" for m in motors]
        self.encoder_active = bool(np.any(self.position_std > 0) or np.any(self.velocity_std > 0))
        self.effort_active = bool(np.any(self.effort_std > 0) or self.effort_scale != 1.0)
        self.active = self.encoder_active or self.effort_active
        self.rng = np.random.default_rng(seed)
        self.effort_rng = np.random.default_rng([seed, 1])

    def perturb(self, servos: Sequence[Any]) -> None:
        """Add this draw's noise to each servo's ``position`` (rad), ``velocity`` (rad/s) and effort register value,
        in config order."""
        if self.encoder_active:
            dp = self.rng.standard_normal(len(servos)) * self.position_std
            dv = self.rng.standard_normal(len(servos)) * self.velocity_std
            for s, a, b in zip(servos, dp, dv, strict=True):
                s.position += float(a)
                s.velocity += float(b)
        if self.effort_active:
            de = self.effort_rng.standard_normal(len(servos)) * self.effort_std
            for s, attr, e in zip(servos, self.effort_attr, de, strict=True):
                setattr(s, attr, self.effort_scale * getattr(s, attr) + float(e))

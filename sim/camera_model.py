"""Rendering of color + metric depth in PyBullet through the shared pinhole model (:mod:`robot.intrinsics`).

Conventions: a camera pose is the ``camera_link`` frame (x forward along the optical axis, y left, z up), as
in the hardware config. Images are row-major with the origin at the top-left pixel; ``K`` is the usual
OpenCV matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels. Depth is the metric z along the optical axis
(m), as a RealSense reports it after ``depth_scale``; pixels outside the valid range are 0, as on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pybullet as p

from robot.intrinsics import Intrinsics


def projection_matrix(k: Intrinsics, near: float, far: float) -> list[float]:
    """OpenGL projection matrix (column-major, as PyBullet takes it) that renders exactly ``k.K``.

    Pixel centres are at integer coordinates: u = fx * x/z + cx with u = 0 the centre of the first column.
    """
    w, h = k.width, k.height
    # Map pixel-centre coordinates to NDC: u_edge = u + 0.5 so that u_edge in [0, w] spans [-1, 1].
    m = np.zeros((4, 4))
    m[0, 0] = 2.0 * k.fx / w
    m[0, 2] = 1.0 - 2.0 * (k.cx + 0.5) / w
    m[1, 1] = 2.0 * k.fy / h
    m[1, 2] = 2.0 * (k.cy + 0.5) / h - 1.0
    m[2, 2] = -(far + near) / (far - near)
    m[2, 3] = -2.0 * far * near / (far - near)
    m[3, 2] = -1.0
    return m.T.reshape(-1).tolist()


def rotation_from_rpy(rpy: tuple[float, float, float] | list[float]) -> np.ndarray:
    """3x3 rotation of URDF fixed-axis roll-pitch-yaw: R = Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    q = p.getQuaternionFromEuler(rpy)
    return np.array(p.getMatrixFromQuaternion(q)).reshape(3, 3)


def view_matrix(position: np.ndarray, rotation: np.ndarray) -> list[float]:
    """OpenGL view matrix for a ``camera_link`` pose (x forward, z up) in the world."""
    eye = np.asarray(position, dtype=float)
    forward = rotation[:, 0]
    up = rotation[:, 2]
    return p.computeViewMatrix(eye.tolist(), (eye + forward).tolist(), up.tolist())


def depth_buffer_to_metric(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """PyBullet's non-linear depth buffer (0..1) to metric z along the optical axis (m), float32."""
    b = np.asarray(buffer, dtype=np.float64)
    return (far * near / (far - (far - near) * b)).astype(np.float32)


@dataclass(frozen=True)
class RenderedFrame:
    """One rendered camera frame: color HxWx3 uint8, depth HxW float32 in m (0 = invalid), and when asked for the
    body each pixel shows (HxW int32 PyBullet body ids, -1 where none)."""

    color: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray | None = None


def render(
    client: int,
    intrinsics: Intrinsics,
    position: np.ndarray,
    rotation: np.ndarray,
    depth_range: tuple[float, float] = (0.105, 10.0),
    near: float = 0.01,
    far: float = 12.0,
    shadow: bool = False,
    light: dict[str, Any] | None = None,
    segmentation: bool = False,
) -> RenderedFrame:
    """Render color and metric depth from a camera_link pose with PyBullet's CPU renderer.

    ``depth_range`` (m) mimics the sensor: depth outside it reads 0, like a RealSense's invalid pixels.
    ``light``: PyBullet's lighting arguments (``lightDirection``, ``lightColor``, ``lightDistance``,
    ``lightAmbientCoeff``, ``lightDiffuseCoeff``, ``lightSpecularCoeff``). ``segmentation``: also return which
    body each pixel shows (skipped otherwise: it costs render time).
    """
    # PyBullet's TinyRenderer puts pixel centres half a pixel off the OpenGL convention (measured in
    # tests/test_camera_model.py: +0.5 px in u, -0.5 px in v); shift the principal point to compensate.
    gl = Intrinsics(
        intrinsics.width,
        intrinsics.height,
        intrinsics.fx,
        intrinsics.fy,
        intrinsics.cx - 0.5,
        intrinsics.cy + 0.5,
    )
    kwargs = dict(light or {})
    _, _, rgba, depth_buf, seg = p.getCameraImage(
        intrinsics.width,
        intrinsics.height,
        viewMatrix=view_matrix(position, rotation),
        projectionMatrix=projection_matrix(gl, near, far),
        shadow=int(shadow),
        renderer=p.ER_TINY_RENDERER,
        flags=0 if segmentation else p.ER_NO_SEGMENTATION_MASK,
        physicsClientId=client,
        **kwargs,
    )
    h, w = intrinsics.height, intrinsics.width
    color = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3].copy()
    depth = depth_buffer_to_metric(np.asarray(depth_buf).reshape(h, w), near, far)
    lo, hi = depth_range
    depth[(depth < lo) | (depth > hi)] = 0.0
    bodies = np.asarray(seg, dtype=np.int32).reshape(h, w) if segmentation else None
    return RenderedFrame(color=color, depth=depth, segmentation=bodies)

"""The robot's coordinate frames for log viewers: one transform per URDF joint (parent link to child link at the
joint's measured position), the robot's root in the world (``sim.base_pose``) and each camera's mount and optical
frame and each laser scanner's mount (frame ``<lidar>_link``), as Foxglove's ``foxglove.FrameTransforms`` and ROS's
tf tree expect them (each transform local to its parent,
the viewer composes the chain).

Units: m; rotations as quaternions (x, y, z, w). The URDF is read with the standard library's XML parser (no
simulator). A camera image's frame is ``<camera>_optical``: z forward, x right, y down (the convention of image
coordinates, REP 103 / REP 105), fixed to the ``<camera>_link`` frame of the mount (x forward, y left, z up).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import foxglove.messages as fm
import numpy as np
from scipy.spatial.transform import Rotation

from robot.description import HardwareConfig, Pose
from robot.intrinsics import Intrinsics

WORLD = "world"
# camera_link (x forward, y left, z up) -> optical (z forward, x right, y down): roll -90 deg, then yaw -90 deg
_OPTICAL = Rotation.from_euler("xyz", [-np.pi / 2, 0.0, -np.pi / 2])


@dataclass(frozen=True)
class Transform:
    """``child`` in ``parent``: translation (m) and rotation quaternion (x, y, z, w)."""

    parent: str
    child: str
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]


@dataclass(frozen=True)
class _Joint:
    name: str
    kind: str  # revolute, continuous, prismatic, fixed, ...
    parent: str
    child: str
    xyz: np.ndarray
    rotation: Rotation
    axis: np.ndarray
    mimic: tuple[str, float, float] | None  # (joint, multiplier, offset)


def _origin(element: ET.Element) -> tuple[np.ndarray, Rotation]:
    origin = element.find("origin")
    xyz = [0.0, 0.0, 0.0] if origin is None else [float(v) for v in origin.get("xyz", "0 0 0").split()]
    rpy = [0.0, 0.0, 0.0] if origin is None else [float(v) for v in origin.get("rpy", "0 0 0").split()]
    return np.array(xyz), Rotation.from_euler("xyz", rpy)  # URDF rpy: fixed axes x, y, z


def camera_frame(camera_name: str) -> str:
    """The frame id of a camera's images and calibration."""
    return f"{camera_name}_optical"


def lidar_frame(lidar_name: str) -> str:
    """The frame a laser scanner's scans are in: its mount, x forward (angle 0), z up."""
    return f"{lidar_name}_link"


def laser_scan(ranges_m: np.ndarray, intensities: np.ndarray, frame_id: str, timestamp: fm.Timestamp) -> fm.LaserScan:
    """A scan of equally spaced readings counter-clockwise from forward (m, 0 = no return; the drivers' 360, one
    per degree) as ``foxglove.LaserScan``."""
    n = len(ranges_m)
    return fm.LaserScan(
        timestamp=timestamp,
        frame_id=frame_id,
        pose=fm.Pose(position=fm.Vector3(x=0.0, y=0.0, z=0.0), orientation=fm.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
        start_angle=0.0,
        end_angle=float(2 * np.pi * (n - 1) / n),
        ranges=[float(r) for r in ranges_m],
        intensities=[float(i) for i in intensities],
    )


class RobotFrames:
    """Transforms of one robot from its config and URDF; :meth:`transforms` at given joint positions."""

    def __init__(self, config: HardwareConfig, urdf: Path) -> None:
        root = ET.parse(urdf).getroot()
        self.joints: list[_Joint] = []
        children = set()
        for j in root.iter("joint"):
            parent, child = j.find("parent"), j.find("child")
            if parent is None or child is None:
                continue
            xyz, rotation = _origin(j)
            axis_el = j.find("axis")
            axis = np.array([float(v) for v in (axis_el.get("xyz") if axis_el is not None else "1 0 0").split()])
            mimic_el = j.find("mimic")
            mimic = None
            if mimic_el is not None:
                mimic = (
                    mimic_el.get("joint", ""),
                    float(mimic_el.get("multiplier", 1)),
                    float(mimic_el.get("offset", 0)),
                )
            self.joints.append(
                _Joint(j.get("name", ""), j.get("type", "fixed"), parent.get("link", ""), child.get("link", ""),
                       xyz, rotation, axis / (np.linalg.norm(axis) or 1.0), mimic)
            )  # fmt: skip
            children.add(child.get("link", ""))
        links = [link.get("name", "") for link in root.iter("link")]
        roots = [name for name in links if name not in children]
        self.root = roots[0] if roots else links[0]
        self.joint_names = list(config.joint_names)
        self._fixed = [self._pose(WORLD, self.root, config.sim.base_pose)] if self.root != WORLD else []
        for cam in config.cameras:
            link = f"{cam.name}_link"
            self._fixed.append(self._pose(cam.parent, link, cam.mount))
            self._fixed.append(Transform(link, camera_frame(cam.name), (0.0, 0.0, 0.0), tuple(_OPTICAL.as_quat())))
        for lidar in config.lidars:
            self._fixed.append(self._pose(lidar.parent, lidar_frame(lidar.name), lidar.mount))

    @staticmethod
    def _pose(parent: str, child: str, pose: Pose) -> Transform:
        q = Rotation.from_euler("xyz", pose.rpy).as_quat()
        return Transform(parent, child, tuple(float(v) for v in pose.xyz), tuple(float(v) for v in q))

    def transforms(self, positions: list[float] | np.ndarray) -> list[Transform]:
        """Every transform at joint ``positions`` (the config's joints, in its order; rad or m). A joint the config
        does not drive stays at 0 unless it mimics one that it does."""
        if len(positions) != len(self.joint_names):
            raise ValueError(f"expected {len(self.joint_names)} joint positions, got {len(positions)}")
        q = {name: float(v) for name, v in zip(self.joint_names, positions, strict=True)}
        out = list(self._fixed)
        for j in self.joints:
            value = q.get(j.name, 0.0)
            if j.mimic is not None and j.mimic[0] in q:
                value = q[j.mimic[0]] * j.mimic[1] + j.mimic[2]
            xyz, rotation = j.xyz, j.rotation
            if j.kind in ("revolute", "continuous"):
                rotation = rotation * Rotation.from_rotvec(j.axis * value)
            elif j.kind == "prismatic":
                xyz = xyz + j.rotation.apply(j.axis * value)
            out.append(
                Transform(j.parent, j.child, tuple(float(v) for v in xyz), tuple(float(v) for v in rotation.as_quat()))
            )
        return out


def frame_transforms(transforms: list[Transform]) -> fm.FrameTransforms:
    """``transforms`` as one ``foxglove.FrameTransforms`` message (stamped by the log record's time)."""
    return fm.FrameTransforms(
        transforms=[
            fm.FrameTransform(
                parent_frame_id=t.parent,
                child_frame_id=t.child,
                translation=fm.Vector3(x=t.translation[0], y=t.translation[1], z=t.translation[2]),
                rotation=fm.Quaternion(x=t.rotation[0], y=t.rotation[1], z=t.rotation[2], w=t.rotation[3]),
            )
            for t in transforms
        ]
    )


#: Our distortion model names -> the ROS / Foxglove ``CameraCalibration.distortion_model`` names.
_DISTORTION_MODELS = {"none": "plumb_bob", "brown_conrady": "plumb_bob", "modified_brown_conrady": "plumb_bob",
                      "kannala_brandt4": "kannala_brandt", "inverse_brown_conrady": "plumb_bob"}  # fmt: skip


def camera_calibration(intrinsics: Intrinsics, frame_id: str) -> fm.CameraCalibration:
    """A ``foxglove.CameraCalibration`` of the color stream (K row-major, R identity, P = [K | 0]); the distortion
    coefficients as the camera reports them (all zero for an undistorted stream)."""
    k = intrinsics
    return fm.CameraCalibration(
        frame_id=frame_id,
        width=k.width,
        height=k.height,
        distortion_model=_DISTORTION_MODELS.get(k.distortion_model, k.distortion_model),
        D=[float(c) for c in k.distortion] or [0.0] * 5,
        K=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0],
        R=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        P=[k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    )

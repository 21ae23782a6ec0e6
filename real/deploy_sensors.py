"""The deployment loop's sensors besides the servos: the camera a camera policy acts on and the laser scanner a
base's state policy reads, opened for a real robot or taken from a mock robot's hardware."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from real.cameras.frame import CameraError, FrameTimeout
from real.lidar.reader import LdsReader
from real.lidar.scan import Scan
from real.robot import Robot
from robot.description import HardwareConfig
from robot.lidar import reduce_scan


def policy_view(policy: Any) -> tuple[tuple[int, int] | None, tuple[int, int, int, int] | None]:
    """(image size (width, height) px, crop (x, y, width, height) px or None) of a camera policy's frames: what the
    robot reduces each frame to, the region the student was trained on; (None, None) for a policy without images."""
    if "rgb" not in policy.obs_spec.keys:
        return None, None
    h, w = policy.obs_spec.shapes["rgb"][:2]
    crop = (policy.meta.get("camera") or {}).get("crop")
    return (w, h), None if crop is None else tuple(crop)


def live_camera(config: HardwareConfig, name: str) -> Any:
    """The driver of configured camera ``name``: a RealSense through librealsense, a webcam through OpenCV (with
    its calibrated intrinsics; not connected yet)."""
    cam = config.camera(name)
    if cam.model == "webcam":
        from real.cameras.opencv_camera import OpenCVCamera
        from robot.intrinsics import camera_intrinsics

        c = cam.color
        device = cam.device
        if isinstance(device, str) and device.startswith("/dev/video") and device[10:].isdigit():
            device = int(device[10:])  # OpenCV opens V4L2 devices by index
        return OpenCVCamera(
            device,
            name=cam.name,
            width=c.width,
            height=c.height,
            fps=c.fps,
            intrinsics=camera_intrinsics(c.width, c.height, cam.intrinsics),
        )
    from real.cameras.realsense import RealSenseCamera

    return RealSenseCamera(cam)


def await_first_frame(camera: Any, robot: Robot, timeout_s: float) -> None:
    """Wait for the camera's first frame while the robot holds its pose (each period a read, which feeds the
    servos' bus watchdog, and a hold through the safety filter); :class:`CameraError` after ``timeout_s``."""
    period = 1.0 / robot.config.control.rate_hz
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            camera.read(timeout=period)
            return
        except FrameTimeout:
            if time.monotonic() > deadline:
                raise CameraError(f"camera {camera.name}: no frame within {timeout_s:.0f} s") from None
        robot.read_patiently()
        robot.write(robot.safety.idle())


class ScanSource:
    """The policy's beams from the robot's first laser scanner (``reader``: its driver, connected here): each
    call reduces the newest whole scan (no packet lost but one; :func:`robot.lidar.reduce_scan`, the simulator's
    code) and raises :class:`real.lidar.reader.StaleScan` when it is older than the config's ``max_scan_age_s``."""

    def __init__(self, config: HardwareConfig, reader: LdsReader | None = None) -> None:
        if not config.lidars:
            raise ValueError(f"{config.name}: the policy reads a laser scan, and the config has no lidars section")
        self.lidar = config.lidars[0]
        lidar = self.lidar
        self.reader = reader or LdsReader(lidar.name, lidar.port, lidar.model, lidar.baudrate)
        self.mount = self.lidar.mount_xy_yaw
        self.last: Scan | None = None  # the scan the newest call reduced
        self.ages_ms: list[float] = []

    def connect(self) -> ScanSource:
        self.reader.connect()
        return self

    def __call__(self) -> np.ndarray:
        scan = self.reader.latest(self.lidar.max_scan_age_s, whole=True)
        self.last = scan
        self.ages_ms.append((time.monotonic_ns() - scan.stamp_ns) / 1e6)
        return reduce_scan(scan.ranges_m, *self.mount)

    def acted_on(self) -> tuple[str, Scan] | None:
        """The sensor's name and the scan the newest call reduced (None before the first), for the log."""
        return None if self.last is None else (self.lidar.name, self.last)

    def summary(self) -> dict[str, Any]:
        """The reader's counters and how old the scans the policy acted on were (ms)."""
        out: dict[str, Any] = {"name": self.lidar.name, "model": self.lidar.model, **self.reader.stats}
        if self.ages_ms:
            out |= {f"scan_age_ms_{q}": round(float(np.percentile(self.ages_ms, q)), 1) for q in (50, 90, 100)}
        return out

    def close(self) -> None:
        self.reader.close()

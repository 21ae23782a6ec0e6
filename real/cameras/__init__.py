"""Cameras: a threaded capture base, Intel RealSense (live, recordings, simulated through librealsense's software
device) and OpenCV (webcams, video files). pyrealsense2 is imported only when a RealSense is used."""

from real.cameras.capture import ThreadedCamera
from real.cameras.frame import CameraError, CameraStats, EndOfStream, Frame, FrameTimeout, StaleFrame

__all__ = [
    "CameraError",
    "CameraStats",
    "EndOfStream",
    "Frame",
    "FrameTimeout",
    "StaleFrame",
    "ThreadedCamera",
]

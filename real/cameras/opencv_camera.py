"""Webcams and video files through OpenCV's ``VideoCapture``, behind the same interface as the RealSense (color
only). A video file is read losslessly (every frame once, in order, then :class:`EndOfStream`); a webcam keeps only
its newest frame."""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from real.cameras.capture import ThreadedCamera
from real.cameras.frame import CameraError, EndOfStream, Frame
from robot.intrinsics import Intrinsics


class OpenCVCamera(ThreadedCamera):
    """``source``: a device index (``/dev/videoN``) or a video file path. ``width`` / ``height`` / ``fps``: the
    mode to request from a webcam (ignored for files); checked against what the driver reports after setting.

    ``intrinsics``: from a calibration (``s2r calibrate``); without one, :attr:`intrinsics` raises, as an
    uncalibrated webcam's focal length is unknown.
    """

    def __init__(
        self,
        source: int | str | Path,
        *,
        name: str | None = None,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = "MJPG",
        intrinsics: Intrinsics | None = None,
        grab_timeout_s: float = 1.0,
        reconnect_after: int = 3,
    ) -> None:
        self.is_file = not isinstance(source, int)
        self.source = source if isinstance(source, int) else Path(source)
        super().__init__(
            name or (f"video{source}" if isinstance(source, int) else Path(source).name),
            lossless=self.is_file,
            grab_timeout_s=grab_timeout_s,
            reconnect_after=reconnect_after,
        )
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self._given_intrinsics = intrinsics
        self._capture: cv2.VideoCapture | None = None
        self._count = 0
        self.size: tuple[int, int] | None = None

    @property
    def intrinsics(self) -> Intrinsics:
        if self._given_intrinsics is None:
            raise CameraError(f"camera {self.name!r} has no calibration: pass intrinsics= (see `s2r calibrate`)")
        return self._given_intrinsics

    def _open(self) -> None:
        if self.is_file:
            if not Path(self.source).is_file():
                raise CameraError(f"video file {self.source} does not exist")
            capture = cv2.VideoCapture(str(self.source))
        else:
            capture = cv2.VideoCapture(int(self.source))
        if not capture.isOpened():
            raise CameraError(f"OpenCV cannot open {'video file' if self.is_file else 'camera index'} {self.source}")
        if not self.is_file:
            # V4L2 drivers pick the frame rate per pixel format and size: set the format first, then the size,
            # then the rate, or a later setting resets an earlier one.
            if self.fourcc:
                capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
            if self.width and self.height:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.fps:
                capture.set(cv2.CAP_PROP_FPS, self.fps)
            got = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            if self.width and self.height and got != (self.width, self.height):
                capture.release()
                raise CameraError(
                    f"camera {self.source} does not support {self.width}x{self.height}; the driver chose "
                    f"{got[0]}x{got[1]} (`v4l2-ctl --list-formats-ext` lists the modes)"
                )
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._capture = capture
        self._count = 0

    def _grab(self, timeout_s: float) -> Frame | None:
        assert self._capture is not None
        ok, bgr = self._capture.read()
        host_ns = time.monotonic_ns()
        if not ok:
            if self.is_file:
                raise EndOfStream(f"end of video {self.source} after {self._count} frames", self._count)
            time.sleep(min(timeout_s, 0.05))
            return None
        self._count += 1
        device_ms = float(self._capture.get(cv2.CAP_PROP_POS_MSEC))
        return Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None, host_ns, device_ms, self._count)

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def list_opencv_indices(max_index: int = 10) -> list[int]:
    """Indices of ``/dev/videoN`` capture devices that OpenCV can open (Linux), or that answer (elsewhere)."""
    devs = sorted(Path("/dev").glob("video*"))
    candidates = [int(d.name[5:]) for d in devs if d.name[5:].isdigit()] if devs else []
    found = []
    for index in candidates[:max_index]:
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            found.append(index)
        capture.release()
    return found

"""OpenCVCamera on video files written by OpenCV itself, and the `s2r cameras list` command."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from policies.cli import main as s2r
from real.cameras import CameraError, EndOfStream
from real.cameras.opencv_camera import OpenCVCamera
from robot.intrinsics import Intrinsics

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]  # RGB


@pytest.fixture
def video(tmp_path):
    """An MJPG AVI with 10 frames: each 64x48, a flat colour from COLORS, two frames per colour."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for i in range(10):
        rgb = np.zeros((48, 64, 3), np.uint8)
        rgb[:] = COLORS[i // 2]
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video_file_is_read_whole_in_order_as_rgb(video):
    cam = OpenCVCamera(video)
    frames = []
    with cam:
        while True:
            try:
                frames.append(cam.read(timeout=2.0))
            except EndOfStream as end:
                assert end.frames == 10
                break
        assert cam.stats.dropped == 0
    assert [f.frame_number for f in frames] == list(range(1, 11))
    for i, f in enumerate(frames):
        assert f.color.shape == (48, 64, 3) and f.depth is None
        np.testing.assert_allclose(f.color.reshape(-1, 3).mean(0), COLORS[i // 2], atol=6)
    assert [f.device_time_ms for f in frames] == sorted(f.device_time_ms for f in frames)
    assert cam.size == (64, 48)


def test_opencv_errors(video, tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        OpenCVCamera(tmp_path / "nothing.avi").connect()
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video")
    with pytest.raises(CameraError, match="cannot open"):
        OpenCVCamera(bad).connect()
    cam = OpenCVCamera(video)
    with pytest.raises(CameraError, match="no calibration"):
        _ = cam.intrinsics
    k = Intrinsics(64, 48, 60.0, 60.0, 31.5, 23.5)
    assert OpenCVCamera(video, intrinsics=k).intrinsics == k


def test_cameras_list_command(capsys):
    assert s2r(["cameras", "list"]) == 0
    out = capsys.readouterr().out
    assert "RealSense" in out and "OpenCV capture indices" in out

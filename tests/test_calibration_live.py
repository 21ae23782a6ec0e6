"""Live intrinsics capture through the real librealsense code: a simulated D435 (software device) watches a
ChArUco board that a scripted hand moves through a few poses, holding each for several frames."""

from __future__ import annotations

import numpy as np
import pybullet as p
import pytest

pytestmark = pytest.mark.realsense

from board_scene import BOARD, add_board, place  # noqa: E402

from calibration.hand_eye import transform  # noqa: E402
from calibration.intrinsics import calibrate  # noqa: E402
from calibration.live_capture import capture_views  # noqa: E402
from mock.simulated_realsense import SimulatedRealSense, pybullet_renderer  # noqa: E402
from real.cameras.realsense import RealSenseCamera, SoftwareSource  # noqa: E402
from robot.description import Camera  # noqa: E402
from robot.intrinsics import d435_color_intrinsics  # noqa: E402
from sim.camera_model import rotation_from_rpy  # noqa: E402

#: Board poses in front of a camera at the origin looking along +x (camera_link), each held for HOLD frames.
POSES = [
    ([0.40, 0.00, 0.00], [0.0, 0.0, 0.0]),
    ([0.45, 0.08, 0.05], [0.6, 0.0, 0.0]),
    ([0.45, -0.08, -0.05], [-0.6, 0.0, 0.0]),
    ([0.50, 0.06, -0.06], [0.0, 0.6, 0.0]),
    ([0.50, -0.06, 0.06], [0.0, -0.6, 0.0]),
    ([0.35, 0.03, 0.03], [0.45, 0.45, 0.2]),
    ([0.55, -0.05, 0.0], [-0.45, -0.45, -0.2]),
    ([0.42, 0.07, -0.07], [0.4, -0.5, 0.4]),
    ([0.42, -0.07, 0.07], [-0.4, 0.5, -0.4]),
    ([0.30, 0.0, 0.0], [0.0, 0.3, 1.0]),
]
HOLD = 4


def test_live_capture_keeps_informative_views_and_calibrates(tmp_path):
    client = p.connect(p.DIRECT)
    try:
        board = add_board(client, tmp_path)
        # The board faces the camera: its z axis along -x, rotated by each pose's rpy.
        facing = rotation_from_rpy([0.0, -np.pi / 2, 0.0]) @ rotation_from_rpy([0.0, 0.0, np.pi / 2])
        frames = {"n": 0}

        def camera_pose():
            k = min(frames["n"] // HOLD, len(POSES) - 1)
            xyz, rpy = POSES[k]
            place(client, board, transform(rotation_from_rpy(rpy) @ facing, xyz))
            frames["n"] += 1
            return np.zeros(3), np.eye(3)

        cfg = Camera(
            name="hand",
            model="D435",
            color={"width": 640, "height": 480, "fps": 30},
            mount={"xyz": [0, 0, 0], "rpy": [0, 0, 0]},
            warmup_frames=0,
        )
        sim = SimulatedRealSense(cfg, pybullet_renderer(client, camera_pose))
        with RealSenseCamera(cfg, SoftwareSource(sim), grab_timeout_s=1.0) as camera:
            files = capture_views(camera, BOARD, tmp_path / "views", views=len(POSES), timeout_s=30, status=False)
            seen = frames["n"]
    finally:
        p.disconnect(client)
    # Every pose gave a view, and the frames holding a pose did not add copies of it.
    assert len(POSES) - 1 <= len(files) <= len(POSES), (len(files), seen)
    assert seen > len(files) + 4
    result = calibrate(files, BOARD, ["zero_tangent_dist", "fix_k3"])
    k_ = result.intrinsics
    truth = d435_color_intrinsics(640, 480)
    assert k_.fx == pytest.approx(truth.fx, rel=0.01) and k_.fy == pytest.approx(truth.fy, rel=0.01)
    assert result.rms_px < 0.5

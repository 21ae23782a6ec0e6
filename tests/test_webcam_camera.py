"""A USB webcam as a robot's camera (issue 28: the camera most SO-101 owners have): `model: webcam` in a hardware
config, opened through OpenCV's VideoCapture with its calibrated intrinsics (here on a recorded video file, the
same OpenCV read path a /dev/videoN device takes), refused where it cannot serve."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from robot.config_file import load_hardware_config
from robot.description import ConfigError
from robot.intrinsics import Intrinsics

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = Intrinsics(640, 480, 600.0, 601.0, 321.0, 238.0, "plumb_bob", (0.1, -0.2, 0.0, 0.0, 0.05))


def _config(tmp_path: Path, camera: dict, robot: str = "so101") -> Path:
    """hardware_configs/ROBOT.yaml with its camera replaced by ``camera`` (a calibration file beside it)."""
    (tmp_path / "webcam.yaml").write_text(yaml.safe_dump(CALIBRATION.to_dict()))
    data = yaml.safe_load((ROOT / f"hardware_configs/{robot}.yaml").read_text())
    mount = data["cameras"][0]["mount"]
    data["cameras"] = [{"name": "wrist", "mount": mount, "color": {"width": 640, "height": 480, "fps": 30}, **camera}]
    path = tmp_path / "so101_webcam.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _video(tmp_path: Path, frames: int = 5) -> Path:
    """A 640x480 MJPG video whose frame i is grey level 40 * (i + 1)."""
    path = tmp_path / "webcam.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(frames):
        writer.write(np.full((480, 640, 3), 40 * (i + 1), np.uint8))
    writer.release()
    return path


def test_a_webcam_reads_through_opencv_with_its_calibration(tmp_path):
    from real.deploy_sensors import live_camera

    video = _video(tmp_path)
    config = load_hardware_config(
        _config(tmp_path, {"model": "webcam", "device": str(video), "intrinsics": "webcam.yaml"})
    )
    camera = live_camera(config, "wrist")
    with camera:
        frames = [camera.read(timeout=2.0) for _ in range(3)]
        k = camera.intrinsics
    assert [f.color.shape for f in frames] == [(480, 640, 3)] * 3 and all(f.depth is None for f in frames)
    assert [int(round(f.color.mean() / 40)) for f in frames] == [1, 2, 3]  # every frame, in order
    assert (k.fx, k.fy, k.cx, k.cy) == (600.0, 601.0, 321.0, 238.0)


@pytest.mark.parametrize(
    ("camera", "says"),
    [
        ({"model": "webcam", "intrinsics": "webcam.yaml"}, "device"),
        ({"model": "webcam", "device": 0}, "intrinsics"),
        (
            {
                "model": "webcam",
                "device": 0,
                "intrinsics": "webcam.yaml",
                "depth": {"width": 640, "height": 480, "fps": 30},
            },
            "no depth",
        ),
        ({"model": "webcam", "device": 0, "intrinsics": "webcam.yaml", "filters": ["spatial"]}, "RealSense options"),
        ({"model": "D435", "device": 0}, "serial"),
    ],
)
def test_a_camera_section_that_cannot_work_is_refused_naming_why(tmp_path, camera, says):
    with pytest.raises(ConfigError, match=says):
        load_hardware_config(_config(tmp_path, camera))


def test_a_depth_policy_is_refused_on_a_webcam_robot_before_anything_starts(tmp_path):
    """The bundle's robot check compares the cameras: a student trained on colour and depth is refused on a robot
    whose camera streams colour only, naming both."""
    from policies.deploy import deploy
    from real.deploy_config import DeployConfig

    camera = {"model": "webcam", "device": str(_video(tmp_path)), "intrinsics": "webcam.yaml", "name": "table"}
    path = _config(tmp_path, camera, robot="openmanipulator_x")
    with pytest.raises(ValueError, match="cameras: bundle expects .*'depth': \\[640, 480\\].*'depth': None"):
        deploy(DeployConfig(str(path), "grasp_rgbd", episodes=1, status=False))

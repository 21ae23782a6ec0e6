"""Hand-eye calibration on views rendered in the simulator: a ChArUco board on the arm's gripper seen by the
fixed table camera of the OpenManipulator-X config (eye-to-hand), whose pose is known, so the error is measured;
and the eye-in-hand convention on exact poses."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pybullet as p
import pytest
import yaml
from board_scene import BOARD, BOARD_SPEC, add_board, quaternion
from hand_eye_capture import capture_held_arm, true_mount

from calibration.hand_eye import board_pose, calibrate_hand_eye, invert, pose_error, transform
from policies.cli import main
from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config
from robot.intrinsics import d435_color_intrinsics
from sim.camera_model import render, rotation_from_rpy
from sim.pybullet_robot import PyBulletRobot

#: optical axes (x right, y down, z forward) in camera_link coordinates (x forward, y left, z up)
OPTICAL = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)


@pytest.fixture
def world(tmp_path):
    """The arm, and a textured quad carrying a ChArUco board (explicit UVs: a textured box shows only part of it)."""
    client = p.connect(p.DIRECT)
    config = load_hardware_config("openmanipulator_x")
    robot = PyBulletRobot(client, config)
    board = add_board(client, tmp_path)
    yield client, config, robot, board
    p.disconnect(client)


def _views(world, samples: int = 70):
    client, config, robot, board = world
    K = d435_color_intrinsics(1280, 720)  # a D435 color mode: corner accuracy at 640x480 left ~1 deg
    Km = np.array([[K.fx, 0, K.cx], [0, K.fy, K.cy], [0, 0, 1]])
    mount = config.cameras[0].mount
    base_link = transform(rotation_from_rpy(mount.rpy), mount.xyz)  # the table camera's camera_link
    ee_board = transform(rotation_from_rpy([0, np.pi / 2, 0]) @ rotation_from_rpy([0, 0, np.pi / 2]), [0.03, 0, 0])
    rng = np.random.default_rng(0)
    robot_poses, board_poses = [], []
    for _ in range(samples):
        q = [rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.3), rng.uniform(-0.4, 0.6), rng.uniform(-0.9, 0.9), 0.0]
        robot.reset_joints(np.array(q))
        pos, orn = robot.link_pose(config.arm.ee_link)
        base_ee = transform(np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3), pos)
        place = base_ee @ ee_board
        p.resetBasePositionAndOrientation(board, place[:3, 3], quaternion(place[:3, :3]), physicsClientId=client)
        frame = render(client, K, base_link[:3, 3], base_link[:3, :3])
        gray = cv2.cvtColor(frame.color, cv2.COLOR_RGB2GRAY)
        T = board_pose(gray, BOARD, Km)
        if T is not None:
            robot_poses.append(base_ee)
            board_poses.append(T)
    truth = base_link @ transform(OPTICAL, np.zeros(3))
    return robot_poses, board_poses, truth


def test_eye_in_hand_convention_on_exact_poses():
    """Camera on the gripper, board fixed: exact poses give back the camera's pose in the gripper frame."""
    rng = np.random.default_rng(1)
    ee_camera = transform(rotation_from_rpy([0.1, 0.8, -0.2]), [0.02, -0.01, 0.05])
    base_board = transform(rotation_from_rpy([0.0, 0.0, 0.3]), [0.25, 0.05, 0.0])
    robot_poses, board_poses = [], []
    for _ in range(12):
        base_ee = transform(
            rotation_from_rpy(rng.uniform(-0.6, 0.6, 3)), rng.uniform([0.1, -0.1, 0.1], [0.3, 0.1, 0.3])
        )
        robot_poses.append(base_ee)
        board_poses.append(invert(base_ee @ ee_camera) @ base_board)
    rotation_deg, translation_m = pose_error(calibrate_hand_eye(robot_poses, board_poses, eye_in_hand=True), ee_camera)
    assert rotation_deg < 1e-3 and translation_m < 1e-6


def test_eye_to_hand_recovers_the_rendering_camera(world):
    robot_poses, board_poses, truth = _views(world)
    assert len(robot_poses) >= 10
    estimate = calibrate_hand_eye(robot_poses, board_poses, eye_in_hand=False)
    rotation_deg, translation_m = pose_error(estimate, truth)
    assert rotation_deg < 0.5 and translation_m < 0.005  # issue 9's targets
    # the board seen from the estimated camera stays where it is attached, view after view
    spread = np.std([(invert(B) @ estimate @ C)[:3, 3] for B, C in zip(robot_poses, board_poses, strict=True)], 0)
    assert np.all(spread < 0.003)


def test_hand_eye_needs_enough_pairs():
    with pytest.raises(ValueError, match="3 pose pairs"):
        calibrate_hand_eye([np.eye(4)] * 2, [np.eye(4)] * 2, eye_in_hand=True)
    with pytest.raises(ValueError, match="robot poses but"):
        calibrate_hand_eye([np.eye(4)] * 3, [np.eye(4)] * 4, eye_in_hand=True)


def test_eye_in_hand_from_rendered_samples_through_the_cli(world, tmp_path, capsys):
    """A camera on the wrist (link5) looks at a board lying on the table; samples (rendered images + joint
    readings, one of them misread) go through `s2r calibrate hand-eye`, which leaves the bad view out, finds the
    mount and writes it into the config."""
    client, config, robot, board = world
    base_board = transform(rotation_from_rpy([0, 0, 0.2]), [0.24, 0.0, 0.001])
    p.resetBasePositionAndOrientation(board, base_board[:3, 3], quaternion(base_board[:3, :3]), physicsClientId=client)
    link5_camera = transform(rotation_from_rpy([0.05, 0.35, -0.04]), [0.02, 0.01, 0.06])  # camera_link in link5
    K = d435_color_intrinsics(1280, 720)
    folder = tmp_path / "samples"
    folder.mkdir()
    rng = np.random.default_rng(3)
    rows, seen = [], []
    for k in range(40):
        q = np.array([rng.uniform(-0.35, 0.35), rng.uniform(-0.5, 0.2), rng.uniform(-0.2, 0.5), 0.0, 0.0])
        q[3] = 1.1 - q[1] - q[2] + rng.uniform(-0.3, 0.3)  # keep the wrist looking down at the table
        robot.reset_joints(q)
        pos, orn = robot.link_pose("link5")
        cam = transform(np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3), pos) @ link5_camera
        frame = render(client, K, cam[:3, 3], cam[:3, :3])
        cv2.imwrite(str(folder / f"{k:03d}.png"), cv2.cvtColor(frame.color, cv2.COLOR_RGB2BGR))
        rows.append({"image": f"{k:03d}.png", "joints": q.tolist()})
        if board_pose(cv2.cvtColor(frame.color, cv2.COLOR_RGB2GRAY), BOARD, K.K) is not None:
            seen.append(k)
    misread = rows[seen[3]]
    misread["joints"][1] += 0.3  # a joint misread in one view: its board lands far from the others'
    (folder / "samples.json").write_text(json.dumps({"joints": config.joint_names, "samples": rows}))

    text = (HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml").read_text()
    text = text.replace("color: {width: 640, height: 480, fps: 30}", "color: {width: 1280, height: 720, fps: 30}")
    robot_file = tmp_path / "arm.yaml"
    robot_file.write_text(text)
    code = main(
        ["calibrate", "hand-eye", "--robot", str(robot_file), "--camera", "table", "--samples", str(folder)]
        + ["--board", BOARD_SPEC, "--parent", "link5"]
        + ["--out", str(tmp_path / "hand_eye.yaml"), "--save"]
    )
    assert code == 0, capsys.readouterr()
    result = yaml.safe_load((tmp_path / "hand_eye.yaml").read_text())
    assert result["views"] >= 10 and result["parent"] == "link5"
    assert [o.split()[0] for o in result["outliers"]] == [misread["image"]]  # left out, and said so
    estimate = transform(rotation_from_rpy(result["rpy"]), result["xyz"])
    rotation_deg, translation_m = pose_error(estimate, link5_camera)
    assert rotation_deg < 0.5 and translation_m < 0.005, (rotation_deg, translation_m)  # issue 9's targets
    saved = load_hardware_config(robot_file).cameras[0]
    assert saved.parent == "link5" and np.allclose(saved.mount.xyz, result["xyz"], atol=1e-5)
    assert "# in front of the arm, looking back and down" in robot_file.read_text()  # comments kept
    assert (tmp_path / "arm.yaml.bak").read_text() == text


@pytest.mark.realsense
def test_captured_samples_give_the_fixed_cameras_mount(tmp_path, capsys):
    """End to end, eye-to-hand: `s2r calibrate capture`'s recorder reads the joints through the real driver bytes
    (emulator, arm held by hand) and frames through librealsense (a simulated D435 rendering the board carried by
    the arm); `s2r calibrate hand-eye` on that folder finds the camera where it is mounted."""
    text = (HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml").read_text()
    text = text.replace("/dev/ttyUSB0", str(tmp_path / "ttyOMX"))
    text = text.replace("color: {width: 640, height: 480, fps: 30}", "color: {width: 1280, height: 720, fps: 30}")
    text = "\n".join(line for line in text.splitlines() if "depth: {" not in line) + "\n"
    robot_file = tmp_path / "arm.yaml"
    robot_file.write_text(text)
    config = load_hardware_config(robot_file)
    cam = config.cameras[0]
    truth = true_mount(config, cam.name)
    index = capture_held_arm(config, config, cam.name, tmp_path / "samples")
    assert len(json.loads(index.read_text())["samples"]) == 24
    code = main(
        ["calibrate", "hand-eye", "--robot", str(robot_file), "--camera", cam.name, "--samples", str(index.parent)]
        + ["--board", BOARD_SPEC, "--out", str(tmp_path / "hand_eye.yaml")]
    )
    assert code == 0, capsys.readouterr()
    result = yaml.safe_load((tmp_path / "hand_eye.yaml").read_text())
    assert result["parent"] == "world" and result["views"] >= 10
    rotation_deg, translation_m = pose_error(transform(rotation_from_rpy(result["rpy"]), result["xyz"]), truth)
    assert rotation_deg < 0.5 and translation_m < 0.005, (rotation_deg, translation_m)

"""Hand-eye calibration: where a camera is relative to the robot, from robot poses (forward kinematics of joint
readings) and the poses of a calibration board seen by the camera, with OpenCV's ``calibrateHandEye``.

- eye-in-hand: the camera rides on the gripper and the board is fixed in the world; the result is the camera's
  pose in the gripper frame;
- eye-to-hand: the camera is fixed and the board rides on the gripper; the result is the camera's pose in the
  robot base frame (OpenCV's solver run on base-to-gripper poses instead of gripper-to-base).

Poses are 4x4 homogeneous transforms, ``A_B`` meaning the pose of frame B in frame A (a point in B maps into A).
The camera frame is the optical one (x right, y down, z forward), in which ``solvePnP`` returns board poses. Use a
ChArUco board: its corners are identified, so the board frame is the same in every view (a chessboard's corner
order can flip by 180 degrees between views, which ruins the solution).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from calibration.intrinsics import Board, CalibrationError, detect
from robot.description import HardwareConfig

METHODS = {
    "tsai": cv2.CALIB_HAND_EYE_TSAI,
    "park": cv2.CALIB_HAND_EYE_PARK,
    "horaud": cv2.CALIB_HAND_EYE_HORAUD,
    "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS,
}


def transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.asarray(t, dtype=float).ravel()
    return T


def invert(T: np.ndarray) -> np.ndarray:
    R, t = T[:3, :3], T[:3, 3]
    return transform(R.T, -R.T @ t)


def board_pose(
    gray: np.ndarray, board: Board, K: np.ndarray, distortion: np.ndarray | None = None
) -> np.ndarray | None:
    """camera_board: the board's pose in the (optical) camera frame, or None where the board is not found."""
    found = detect(board, gray)
    if found is None:
        return None
    obj, img = found
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, distortion)
    if not ok:
        return None
    return transform(cv2.Rodrigues(rvec)[0], tvec)


def calibrate_hand_eye(
    base_gripper: list[np.ndarray], camera_board: list[np.ndarray], eye_in_hand: bool, method: str = "park"
) -> np.ndarray:
    """gripper_camera (eye-in-hand) or base_camera (eye-to-hand) from paired robot and board poses."""
    if len(base_gripper) != len(camera_board):
        raise ValueError(f"{len(base_gripper)} robot poses but {len(camera_board)} board poses")
    if len(base_gripper) < 3:
        raise ValueError("hand-eye calibration needs at least 3 pose pairs (with rotations about 2 axes)")
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}")
    robot = base_gripper if eye_in_hand else [invert(T) for T in base_gripper]
    R, t = cv2.calibrateHandEye(
        [T[:3, :3] for T in robot],
        [T[:3, 3] for T in robot],
        [T[:3, :3] for T in camera_board],
        [T[:3, 3] for T in camera_board],
        method=METHODS[method],
    )
    return transform(R, t)


def pose_error(A: np.ndarray, B: np.ndarray) -> tuple[float, float]:
    """(rotation error in degrees, translation error in metres) between two poses."""
    dR = A[:3, :3].T @ B[:3, :3]
    angle = np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1.0, 1.0)))
    return float(angle), float(np.linalg.norm(A[:3, 3] - B[:3, 3]))


# -- from recorded samples to a camera mount ----------------------------------------------------------------------

#: The optical frame's axes (x right, y down, z forward) in ``camera_link`` coordinates (x forward, y left, z up).
OPTICAL_IN_LINK = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])

#: A view whose board position lies farther than this many times the views' median distance from their median (and
#: more than OUTLIER_MIN_M, m) is left out and the mount solved again, one view at a time, down to MIN_VIEWS_KEPT.
OUTLIER_FACTOR = 5.0
OUTLIER_MIN_M = 0.005
MIN_VIEWS_KEPT = 4
#: Above this spread (m) of the board's position over the views kept, the result is refused.
MAX_SPREAD_M = 0.01


def rpy_from_rotation(R: np.ndarray) -> list[float]:
    """URDF fixed-axis roll, pitch, yaw (rad) of a rotation matrix: ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    pitch = float(np.arcsin(np.clip(-R[2, 0], -1.0, 1.0)))
    if abs(R[2, 0]) < 1 - 1e-9:
        roll, yaw = float(np.arctan2(R[2, 1], R[2, 2])), float(np.arctan2(R[1, 0], R[0, 0]))
    else:  # gimbal lock: roll and yaw share one axis; put it all in yaw
        roll, yaw = 0.0, float(np.arctan2(-R[0, 1], R[1, 1]))
    return [roll, pitch, yaw]


@dataclass
class HandEyeSample:
    image: Path
    joints: np.ndarray  # config order, SI


def load_samples(folder: str | Path, joint_names: list[str]) -> list[HandEyeSample]:
    """``folder/samples.json``: ``{"joints": [names...], "samples": [{"image": FILE, "joints": [values...]}]}``,
    images relative to the folder (what ``s2r calibrate capture`` writes)."""
    folder = Path(folder)
    index = folder / "samples.json"
    try:
        data = json.loads(index.read_text())
        names, rows = data["joints"], data["samples"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CalibrationError(f"{index}: not a samples file ({exc})") from None
    if names != joint_names:
        raise CalibrationError(f"{index}: joints {names}, the robot's are {joint_names}")
    samples = []
    for k, row in enumerate(rows):
        joints = np.asarray(row.get("joints", []), dtype=float)
        if joints.shape != (len(names),) or not np.all(np.isfinite(joints)):
            raise CalibrationError(f"{index}: sample {k} needs {len(names)} finite joint values")
        samples.append(HandEyeSample(folder / row["image"], joints))
    return samples


def link_poses(config: HardwareConfig, joints: list[np.ndarray], link: str) -> list[np.ndarray]:
    """base_link: the pose of ``link`` in the robot's base frame for each joint vector (forward kinematics of the
    simulator's URDF, the model the policies were trained on)."""
    import pybullet as p

    from sim.pybullet_robot import PyBulletRobot

    client = p.connect(p.DIRECT)
    try:
        robot = PyBulletRobot(client, config)
        poses = []
        for q in joints:
            robot.reset_joints(np.asarray(q, dtype=float))
            pos, orn = robot.link_pose(link)
            poses.append(transform(np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3), pos))
        return poses
    finally:
        p.disconnect(client)


@dataclass
class HandEyeResult:
    """The camera's ``camera_link`` pose in ``parent`` (m, rad), as the hardware config's ``mount`` takes it, and
    how consistent the views are: the spread (std over views) of the board's position in the frame it is fixed to,
    seen through the result (m). ``rejected``: images without the board; ``outliers``: views left out because
    their board position disagreed with the others (a misread board)."""

    camera: str
    parent: str
    xyz: list[float]
    rpy: list[float]
    method: str
    views: int
    rejected: list[str]
    board_spread_m: float
    outliers: list[str]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(asdict(self), sort_keys=False))
        return path


def _solve(
    robot: list[np.ndarray], board_poses: list[np.ndarray], eye_in_hand: bool, method: str
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The optical frame's pose, and the board's pose through each view in the frame it is fixed to: the world
    (eye-in-hand) or its link (eye-to-hand)."""
    try:
        optical = calibrate_hand_eye(robot, board_poses, eye_in_hand=eye_in_hand, method=method)
    except ValueError as exc:
        raise CalibrationError(str(exc)) from None
    if eye_in_hand:
        return optical, [B @ optical @ C for B, C in zip(robot, board_poses, strict=True)]
    return optical, [invert(B) @ optical @ C for B, C in zip(robot, board_poses, strict=True)]


def hand_eye_from_samples(
    config: HardwareConfig,
    camera: str,
    samples: list[HandEyeSample],
    board: Board,
    K: np.ndarray,
    distortion: np.ndarray | None = None,
    parent: str | None = None,
    board_link: str | None = None,
    method: str = "park",
) -> HandEyeResult:
    """Solve for camera ``camera``'s mount. ``parent`` (default: the config's) is ``world`` for a fixed camera
    (eye-to-hand; the board rides on ``board_link``, default the arm's end-effector link) or the link the camera
    rides on (eye-in-hand; the board is fixed in the world)."""
    try:
        cam = config.camera(camera)
    except KeyError as exc:
        raise CalibrationError(exc.args[0]) from None
    parent = parent or cam.parent
    eye_in_hand = parent != "world"
    if not eye_in_hand and board_link is None:
        if config.arm is None:
            raise CalibrationError(f"{config.name}: eye-to-hand needs the link carrying the board (board_link)")
        board_link = config.arm.ee_link
    used, board_poses, rejected = [], [], []
    for s in samples:
        gray = cv2.imread(str(s.image), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise CalibrationError(f"{s.image}: not a readable image")
        T = board_pose(gray, board, K, distortion)
        if T is None:
            rejected.append(s.image.name)
            continue
        used.append(s)
        board_poses.append(T)
    if len(used) < 3:
        raise CalibrationError(f"the board was found in {len(used)} of {len(samples)} images; at least 3 are needed")
    robot = link_poses(config, [s.joints for s in used], parent if eye_in_hand else board_link)
    outliers: list[str] = []
    while True:
        optical, fixed = _solve(robot, board_poses, eye_in_hand, method)
        # each view's board position in the frame it is fixed to, from the views' median: a view whose board pose
        # is wrong (a misread board) lands far from the others and drags the whole solution with it
        positions = np.array([T[:3, 3] for T in fixed])
        residual = np.linalg.norm(positions - np.median(positions, axis=0), axis=1)
        worst = int(np.argmax(residual))
        limit = max(OUTLIER_FACTOR * float(np.median(residual)), OUTLIER_MIN_M)
        if residual[worst] <= limit or len(used) <= MIN_VIEWS_KEPT:
            break
        outliers.append(f"{used[worst].image.name} ({residual[worst] * 1e3:.0f} mm off)")
        del used[worst], robot[worst], board_poses[worst]
    spread = float(np.linalg.norm(np.std([T[:3, 3] for T in fixed], axis=0)))
    if spread > MAX_SPREAD_M:
        raise CalibrationError(
            f"the views disagree: the board's position spreads {spread * 1e3:.0f} mm over {len(used)} views (at most "
            f"{MAX_SPREAD_M * 1e3:.0f}); check the joint readings, the board spec and the intrinsics, and recapture"
        )
    link = optical @ invert(transform(OPTICAL_IN_LINK, np.zeros(3)))
    return HandEyeResult(
        camera=camera,
        parent=parent,
        xyz=[round(float(v), 6) for v in link[:3, 3]],
        rpy=[round(v, 6) for v in rpy_from_rotation(link[:3, :3])],
        method=method,
        views=len(used),
        rejected=rejected,
        board_spread_m=round(spread, 6),
        outliers=outliers,
    )

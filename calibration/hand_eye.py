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

import cv2
import numpy as np

from calibration.intrinsics import Board, detect

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

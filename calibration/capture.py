"""Recording hand-eye samples: joint readings and camera images, pose after pose, into a folder with
``samples.json`` (the input of ``s2r calibrate hand-eye``).

Torque stays off: a person moves the arm (or the board on it) between samples. Each sample is one camera frame
(PNG, as captured) and the joint positions read right after it, in the config's joint order and SI units. When a
board is given, each sample reports whether the board was found, so a useless pose can be repeated at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from calibration.intrinsics import Board, CalibrationError, detect
from real.cameras.capture import ThreadedCamera
from real.cameras.frame import CameraError, Frame
from robot.joint_state import JointState


def fresh_frame(camera: ThreadedCamera, timeout_s: float = 3.0) -> Frame:
    """The second frame to arrive after this call: the first may have been exposed before it (the pose was not
    yet held); older queued frames are dropped."""
    start = time.monotonic_ns()
    deadline = time.monotonic() + timeout_s
    arrived = 0
    while True:
        try:
            frame = camera.read(timeout=max(0.01, deadline - time.monotonic()))
        except CameraError as exc:
            raise CalibrationError(f"camera {camera.name}: {exc}") from None
        if frame.host_time_ns > start:
            arrived += 1
            if arrived == 2:
                return frame


def capture_samples(
    read_joints: Callable[[], JointState],
    camera: ThreadedCamera,
    joint_names: list[str],
    out_dir: str | Path,
    next_pose: Callable[[int], bool],
    board: Board | None = None,
    report: Callable[[str], None] = print,
) -> Path:
    """Take samples while ``next_pose(k)`` returns True (it returns once the robot is held in pose k); returns
    the samples file. The file is rewritten after every sample, so an interrupted session keeps what it took."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "samples.json"
    rows: list[dict] = []
    k = 0
    while next_pose(k):
        frame = fresh_frame(camera)
        joints = read_joints().position
        name = f"sample_{k:03d}.png"
        cv2.imwrite(str(out_dir / name), cv2.cvtColor(frame.color, cv2.COLOR_RGB2BGR))
        rows.append({"image": name, "joints": [round(float(v), 6) for v in np.asarray(joints)]})
        index.write_text(json.dumps({"joints": joint_names, "samples": rows}, indent=1))
        seen = ""
        if board is not None:
            found = detect(board, cv2.cvtColor(frame.color, cv2.COLOR_RGB2GRAY))
            seen = f", board: {len(found[1])} corners" if found is not None else ", board NOT found: change the pose"
        report(f"  sample {k}: joints {np.round(joints, 3).tolist()}{seen}")
        k += 1
    return index

"""Capturing calibration views from a live camera, keeping only views that add information.

Each frame's board detection is summarized by where the board is in the image and how it is seen: the centroid of
its detected corners (x, y as fractions of the image), its apparent size (square root of the corners' hull area
over the image area) and its tilt about the image axes (log ratios of opposite edges of the board's outline,
projected through the board-to-image homography). A view is kept when this 5-vector differs from every kept
view's by more than ``min_change`` (Euclidean): a person moving the board around gets a spread of positions,
distances and tilts instead of many copies of the first pose. Kept views are written as PNG files, so the
calibration runs on files (the same code as ``--images``) and nothing captured is lost.

Feedback: a status line per processed frame, and with ``show`` an OpenCV window with the detected corners drawn.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from calibration.intrinsics import Board, CalibrationError, detect
from real.cameras.capture import ThreadedCamera
from real.cameras.frame import CameraError


def describe(board: Board, obj: np.ndarray, img: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """(x, y, size, tilt_x, tilt_y) of a detection, or None when too few corners to tell."""
    if len(img) < 6:
        return None
    hull = cv2.convexHull(img.astype(np.float32))
    size = float(np.sqrt(cv2.contourArea(hull) / (width * height)))
    H, _ = cv2.findHomography(obj[:, :2].astype(np.float32), img.astype(np.float32))
    if H is None:
        return None
    if board.kind == "chessboard":
        w, h = (board.cols - 1) * board.square_m, (board.rows - 1) * board.square_m
    else:
        w, h = board.cols * board.square_m, board.rows * board.square_m
    outline = cv2.perspectiveTransform(np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float32), H)[0]
    edge = [np.linalg.norm(outline[(i + 1) % 4] - outline[i]) + 1e-6 for i in range(4)]  # top, right, bottom, left
    cx, cy = img.mean(axis=0)
    return np.array([cx / width, cy / height, size, np.log(edge[3] / edge[1]), np.log(edge[0] / edge[2])])


def capture_views(
    camera: ThreadedCamera,
    board: Board,
    out_dir: str | Path,
    views: int = 15,
    min_change: float = 0.12,
    timeout_s: float = 120.0,
    show: bool = False,
    status: bool = True,
) -> list[Path]:
    """Read frames from ``camera`` (connected) until ``views`` informative views are kept or ``timeout_s`` passes;
    returns the PNG files written to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kept: list[np.ndarray] = []
    files: list[Path] = []
    frames = 0
    deadline = time.monotonic() + timeout_s
    try:
        while len(files) < views and time.monotonic() < deadline:
            try:
                frame = camera.read(timeout=1.0)
            except CameraError as exc:
                raise CalibrationError(f"camera {camera.name}: {exc}") from None
            frames += 1
            bgr = cv2.cvtColor(frame.color, cv2.COLOR_RGB2BGR)
            gray = cv2.cvtColor(frame.color, cv2.COLOR_RGB2GRAY)
            found = detect(board, gray)
            h, w = gray.shape
            d = describe(board, found[0], found[1], w, h) if found is not None else None
            if d is None:
                note = "no board"
            else:
                change = min((float(np.linalg.norm(d - k)) for k in kept), default=np.inf)
                if change > min_change:
                    kept.append(d)
                    path = out_dir / f"view_{len(files):03d}.png"
                    cv2.imwrite(str(path), bgr)
                    files.append(path)
                    note = f"kept ({len(found[1])} corners)"
                else:
                    note = f"board found, too like a kept view (change {change:.2f} < {min_change}): move or tilt it"
            if status:
                print(
                    f"\r  frame {frames}: {len(files)}/{views} views kept; {note}".ljust(100), end="", file=sys.stderr
                )
            if show:
                if found is not None:
                    for u, v in found[1]:
                        cv2.circle(bgr, (int(u), int(v)), 3, (0, 255, 0), -1)
                cv2.putText(
                    bgr, f"{len(files)}/{views} {note}", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2
                )
                cv2.imshow("s2r calibrate intrinsics", bgr)
                cv2.waitKey(1)
    finally:
        if status:
            print(file=sys.stderr)
        if show:
            cv2.destroyAllWindows()
    return files

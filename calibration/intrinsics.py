"""Camera intrinsics from photos of a calibration board, with OpenCV's detectors and ``calibrateCamera``.

Boards: ``chessboard:COLSxROWS:SQUARE_M`` (inner corners, square side in m) or
``charuco:COLSxROWS:SQUARE_M:MARKER_M:DICT`` (squares, square and marker sides in m, an ``cv2.aruco`` dictionary
name such as ``DICT_4X4_50``). Chessboard corners are refined with ``cornerSubPix`` (11x11 window, 30 iterations
or 0.1 px), as OpenCV's own calibration sample does. The result keeps the RMS reprojection error, the per-view
errors (RMS over each view's corners) and the images where the board was not found.
"""

from __future__ import annotations

import glob
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from robot.intrinsics import Intrinsics

SUBPIX_WINDOW = (11, 11)
SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 30, 0.1)

#: Command-line flag -> OpenCV calibration flag.
FLAGS = {
    "fix_aspect_ratio": cv2.CALIB_FIX_ASPECT_RATIO,
    "zero_tangent_dist": cv2.CALIB_ZERO_TANGENT_DIST,
    "fix_principal_point": cv2.CALIB_FIX_PRINCIPAL_POINT,
    "fix_k3": cv2.CALIB_FIX_K3,
    "rational_model": cv2.CALIB_RATIONAL_MODEL,
}


class CalibrationError(ValueError):
    """Bad board spec, unreadable images, or too few views; the message says which."""


@dataclass(frozen=True)
class Board:
    kind: str  # chessboard or charuco
    cols: int  # inner corners (chessboard) or squares (charuco) across
    rows: int
    square_m: float
    marker_m: float = 0.0
    dictionary: str = ""

    @classmethod
    def parse(cls, spec: str) -> Board:
        parts = spec.split(":")
        try:
            kind = parts[0]
            cols, rows = (int(v) for v in parts[1].lower().split("x"))
            if kind == "chessboard" and len(parts) == 3:
                board = cls(kind, cols, rows, float(parts[2]))
            elif kind == "charuco" and len(parts) == 5:
                board = cls(kind, cols, rows, float(parts[2]), float(parts[3]), parts[4])
            else:
                raise ValueError
        except (ValueError, IndexError):
            raise CalibrationError(
                f"board {spec!r}: expected chessboard:COLSxROWS:SQUARE_M or charuco:COLSxROWS:SQUARE_M:MARKER_M:DICT"
            ) from None
        if board.cols < 2 or board.rows < 2 or board.square_m <= 0:
            raise CalibrationError(f"board {spec!r}: needs at least 2x2 corners and a positive square size")
        if kind == "charuco" and not (0 < board.marker_m < board.square_m and hasattr(cv2.aruco, board.dictionary)):
            raise CalibrationError(f"board {spec!r}: marker must be smaller than the square and DICT a cv2.aruco name")
        return board

    def object_points(self) -> np.ndarray:
        """Chessboard inner corners in the board frame (m), row by row, z = 0."""
        grid = np.zeros((self.rows * self.cols, 3), np.float32)
        grid[:, :2] = np.mgrid[0 : self.cols, 0 : self.rows].T.reshape(-1, 2) * self.square_m
        return grid


def detect(board: Board, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(object points, image points) of the board in a grayscale image, or None where it is not found."""
    if board.kind == "chessboard":
        found, corners = cv2.findChessboardCorners(gray, (board.cols, board.rows))
        if not found:
            return None
        corners = cv2.cornerSubPix(gray, corners, SUBPIX_WINDOW, (-1, -1), SUBPIX_CRITERIA)
        return board.object_points(), corners.reshape(-1, 2)
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, board.dictionary))
    charuco = cv2.aruco.CharucoBoard((board.cols, board.rows), board.square_m, board.marker_m, dictionary)
    corners, ids, _, _ = cv2.aruco.CharucoDetector(charuco).detectBoard(gray)
    if ids is None or len(ids) < 6:
        return None
    obj, img = charuco.matchImagePoints(corners, ids)
    return obj.reshape(-1, 3).astype(np.float32), img.reshape(-1, 2).astype(np.float32)


@dataclass
class IntrinsicsCalibration:
    """A calibration result: the camera's :class:`~robot.intrinsics.Intrinsics` (pinhole K and OpenCV distortion:
    plumb_bob k1 k2 p1 p2 k3, or rational_polynomial, 8 values) and how well they fit the views.

    Saved as one flat YAML mapping: the intrinsics' keys (what :func:`robot.intrinsics.read_calibration` reads)
    followed by the report (RMS errors in px, the images without the board, the board, the flags)."""

    intrinsics: Intrinsics
    rms_px: float
    per_view_rms_px: dict[str, float] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)  # images where the board was not found
    board: str = ""
    flags: list[str] = field(default_factory=list)
    std_px: dict[str, float] = field(default_factory=dict)  # standard deviations of fx, fy, cx, cy (px)

    @property
    def views(self) -> int:
        return len(self.per_view_rms_px)

    def focal_warning(self) -> str | None:
        """A warning when the views are few (under :data:`FEW_VIEWS`): how well they pin the focal length."""
        if self.views >= FEW_VIEWS or "fx" not in self.std_px:
            return None
        sd, fx = self.std_px["fx"], self.intrinsics.fx
        return (
            f"only {self.views} views: fx is known to +-{sd:.1f} px ({100 * sd / fx:.2f} %, one standard deviation); "
            f"{FEW_VIEWS} or more views at varied tilts pin it better"
        )

    def to_dict(self) -> dict[str, Any]:
        report = {k: v for k, v in asdict(self).items() if k != "intrinsics"}
        return {**self.intrinsics.to_dict(), **report}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, width=120))
        return path

    @classmethod
    def load(cls, path: str | Path) -> IntrinsicsCalibration:
        data = yaml.safe_load(Path(path).read_text())
        keys = ("rms_px", "per_view_rms_px", "rejected", "board", "flags", "std_px")
        report = {k: data[k] for k in keys if k in data}
        return cls(Intrinsics.from_dict(data), **report)


#: Fewest views a calibration accepts by default (OpenCV's own ChArUco sample calibrates from 4), and below how
#: many the report warns how loosely the focal length is pinned.
MIN_VIEWS = 4
FEW_VIEWS = 6


def calibrate(
    images: list[str | Path], board: Board, flags: list[str] | None = None, min_views: int = MIN_VIEWS
) -> IntrinsicsCalibration:
    """Calibrate from image files (all the same size); raises :class:`CalibrationError` when fewer than
    ``min_views`` images show the board or an image cannot be read. The result carries the standard deviations of
    fx, fy, cx and cy that OpenCV estimates (``calibrateCameraExtended``)."""
    flags = list(flags or [])
    unknown = [f for f in flags if f not in FLAGS]
    if unknown:
        raise CalibrationError(f"unknown calibration flags {unknown}; known: {sorted(FLAGS)}")
    if not images:
        raise CalibrationError("no images given")
    obj_pts, img_pts, names, rejected = [], [], [], []
    size = None
    for path in sorted(str(p) for p in images):
        gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise CalibrationError(f"{path}: not a readable image")
        if size is None:
            size = gray.shape[::-1]
        elif gray.shape[::-1] != size:
            raise CalibrationError(f"{path}: {gray.shape[1]}x{gray.shape[0]}, the others are {size[0]}x{size[1]}")
        found = detect(board, gray)
        if found is None:
            rejected.append(path)
            continue
        obj_pts.append(found[0])
        img_pts.append(found[1])
        names.append(path)
    if len(obj_pts) < min_views:
        raise CalibrationError(
            f"the board was found in {len(obj_pts)} of {len(images)} images; at least {min_views} are needed "
            "(--min-views)"
        )
    cv_flags = 0
    for f in flags:
        cv_flags |= FLAGS[f]
    K0 = np.eye(3)  # with CALIB_FIX_ASPECT_RATIO, OpenCV keeps the initial fx/fy ratio: 1
    rms, K, dist, rvecs, tvecs, std, *_ = cv2.calibrateCameraExtended(obj_pts, img_pts, size, K0, None, flags=cv_flags)
    per_view = {}
    for name, obj, img, r, t in zip(names, obj_pts, img_pts, rvecs, tvecs, strict=True):
        proj, _ = cv2.projectPoints(obj, r, t, K, dist)
        per_view[Path(name).name] = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
    dist = dist.ravel().tolist()
    intrinsics = Intrinsics(
        width=int(size[0]),
        height=int(size[1]),
        fx=float(K[0, 0]),
        fy=float(K[1, 1]),
        cx=float(K[0, 2]),
        cy=float(K[1, 2]),
        distortion_model="rational_polynomial" if "rational_model" in flags else "plumb_bob",
        distortion=tuple(float(v) for v in dist),
    )
    return IntrinsicsCalibration(
        intrinsics=intrinsics,
        rms_px=float(rms),
        per_view_rms_px=per_view,
        rejected=[Path(r).name for r in rejected],
        board=f"{board.kind}:{board.cols}x{board.rows}:{board.square_m:g}",
        flags=flags,
        std_px={name: float(v) for name, v in zip(("fx", "fy", "cx", "cy"), std.ravel()[:4], strict=True)},
    )


def expand(pattern: str) -> list[str]:
    """Image paths matching a glob (sorted); a clear error when none do."""
    paths = sorted(glob.glob(pattern))
    if not paths:
        raise CalibrationError(f"no images match {pattern!r}")
    return paths


def summary(result: IntrinsicsCalibration) -> dict[str, Any]:
    return {k: v for k, v in result.to_dict().items() if k not in ("per_view_rms_px",)}

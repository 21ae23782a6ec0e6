"""A ChArUco board in a PyBullet scene, for calibration tests that render views of it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pybullet as p

from calibration.intrinsics import Board

SQUARE, MARKER, COLS, ROWS = 0.03, 0.022, 7, 5
BOARD_SPEC = f"charuco:{COLS}x{ROWS}:{SQUARE}:{MARKER}:DICT_5X5_100"
BOARD = Board.parse(BOARD_SPEC)


def quaternion(R: np.ndarray) -> list[float]:
    """(x, y, z, w) of a rotation matrix (away from 180 degree rotations)."""
    w = np.sqrt(max(1e-12, 1 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    return [(R[2, 1] - R[1, 2]) / (4 * w), (R[0, 2] - R[2, 0]) / (4 * w), (R[1, 0] - R[0, 1]) / (4 * w), w]


def add_board(client: int, folder: Path) -> int:
    """A textured quad carrying the board, centred on its body origin, in the body's xy plane (explicit UVs: a
    textured box shows only part of its texture). Returns the body id."""
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_5X5_100)
    image = cv2.aruco.CharucoBoard((COLS, ROWS), SQUARE, MARKER, dictionary).generateImage((COLS * 100, ROWS * 100))
    cv2.imwrite(str(folder / "board.png"), cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    w, h = COLS * SQUARE / 2, ROWS * SQUARE / 2
    shape = p.createVisualShape(
        p.GEOM_MESH,
        vertices=[[-w, -h, 0], [w, -h, 0], [w, h, 0], [-w, h, 0]],
        indices=[0, 1, 2, 0, 2, 3, 0, 2, 1, 0, 3, 2],
        uvs=[[1, 1], [0, 1], [0, 0], [1, 0]],
        normals=[[0, 0, 1]] * 4,
        physicsClientId=client,
    )
    board = p.createMultiBody(0, -1, shape, physicsClientId=client)
    texture = p.loadTexture(str(folder / "board.png"), physicsClientId=client)
    p.changeVisualShape(board, -1, textureUniqueId=texture, rgbaColor=[1, 1, 1, 1], physicsClientId=client)
    return board


def place(client: int, board: int, T: np.ndarray) -> None:
    p.resetBasePositionAndOrientation(board, T[:3, 3], quaternion(T[:3, :3]), physicsClientId=client)

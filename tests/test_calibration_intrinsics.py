"""Camera intrinsics: OpenCV's own published calibration reproduced from the same real photos, a ChArUco board
rendered through a known camera recovered, and clear errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from calibration.intrinsics import Board, CalibrationError, IntrinsicsCalibration, calibrate, expand
from policies.cli import main as s2r


def test_reproduces_opencvs_published_calibration_of_the_real_photos(shared_data, tmp_path, capsys):
    """left_intrinsics.yml (OpenCV samples): fx = fy = 535.9157, RMS 0.3926 px, flags FIX_ASPECT_RATIO."""
    folder = shared_data / "calibration" / "opencv_chessboard"
    published = yaml.safe_load(
        (folder / "left_intrinsics.yml").read_text().split("---", 1)[1].replace("!!opencv-matrix", "")
    )
    k = published["camera_matrix"]["data"]
    out = tmp_path / "left.yaml"
    argv = ["calibrate", "intrinsics", "--images", str(folder / "left*.jpg"), "--board", "chessboard:9x6:0.025"]
    assert s2r([*argv, "--fix-aspect-ratio", "--out", str(out)]) == 0
    result = IntrinsicsCalibration.load(out)
    k_ = result.intrinsics
    assert k_.fx == pytest.approx(k[0], rel=0.005) and k_.fy == k_.fx  # issue 9: within 0.5 %
    assert result.rms_px == pytest.approx(published["avg_reprojection_error"], abs=0.02)  # and 0.02 px
    assert k_.cx == pytest.approx(k[2], abs=1.0) and k_.cy == pytest.approx(k[5], abs=1.0)
    np.testing.assert_allclose(k_.distortion, published["distortion_coefficients"]["data"], atol=0.01)
    views = published["per_view_reprojection_errors"]["data"]
    np.testing.assert_allclose(list(result.per_view_rms_px.values()), views, atol=0.01)
    assert len(result.per_view_rms_px) == 13 and result.rejected == []
    assert "worst view left02.jpg" in capsys.readouterr().out  # the published outlier, 1.18 px


def _charuco_views(tmp_path, K, n=8):
    """Photos of a ChArUco board seen by the camera K from several poses (plane homographies, no distortion)."""
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_5X5_100)
    board = cv2.aruco.CharucoBoard((7, 5), 0.04, 0.03, dictionary)
    px_per_m = 4000
    image = board.generateImage((int(7 * 0.04 * px_per_m), int(5 * 0.04 * px_per_m)), marginSize=0)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        rvec = rng.uniform(-0.35, 0.35, 3)
        tvec = np.array([-0.14 + rng.uniform(-0.03, 0.03), -0.1 + rng.uniform(-0.03, 0.03), rng.uniform(0.45, 0.6)])
        R, _ = cv2.Rodrigues(rvec)
        # board pixel (u, v) -> board point (u, v) / px_per_m on z = 0 -> camera
        H = K @ np.column_stack([R[:, 0] / px_per_m, R[:, 1] / px_per_m, tvec])
        view = cv2.warpPerspective(image, H, (640, 480), flags=cv2.INTER_AREA, borderValue=255)
        path = tmp_path / f"charuco_{i:02d}.png"
        cv2.imwrite(str(path), view)
        paths.append(path)
    return paths


def test_charuco_board_through_a_known_camera_is_recovered(tmp_path):
    K = np.array([[600.0, 0, 330.0], [0, 600.0, 242.0], [0, 0, 1]])
    paths = _charuco_views(tmp_path, K)
    result = calibrate(paths, Board.parse("charuco:7x5:0.04:0.03:DICT_5X5_100"), ["zero_tangent_dist", "fix_k3"])
    k_ = result.intrinsics
    assert k_.fx == pytest.approx(600.0, rel=0.01) and k_.fy == pytest.approx(600.0, rel=0.01)
    assert k_.cx == pytest.approx(330.0, abs=3.0) and k_.cy == pytest.approx(242.0, abs=3.0)
    assert result.rms_px < 0.5


def test_four_views_calibrate_with_a_warning_that_says_how_well_fx_is_pinned(tmp_path, capsys):
    """OpenCV's ChArUco sample calibrates from 4 views: so do we, and say how loosely fx is known; 3 are refused
    by default, and --min-views decides."""
    K = np.array([[600.0, 0, 330.0], [0, 600.0, 242.0], [0, 0, 1]])
    paths = _charuco_views(tmp_path, K, n=8)
    board = "charuco:7x5:0.04:0.03:DICT_5X5_100"
    few = calibrate(paths[:4], Board.parse(board), ["zero_tangent_dist", "fix_k3"])
    many = calibrate(paths, Board.parse(board), ["zero_tangent_dist", "fix_k3"])
    assert few.views == 4 and few.intrinsics.fx == pytest.approx(600.0, rel=0.02)
    assert 0 < many.std_px["fx"] < few.std_px["fx"]  # more views, a tighter focal length
    assert many.focal_warning() is None and f"+-{few.std_px['fx']:.1f} px" in few.focal_warning()
    with pytest.raises(CalibrationError, match="at least 4 are needed"):
        calibrate(paths[:3], Board.parse(board))
    for p in paths[4:]:
        p.unlink()
    argv = ["calibrate", "intrinsics", "--images", str(tmp_path / "charuco_*.png"), "--board", board]
    assert s2r([*argv, "--zero-tangent-dist", "--fix-k3", "--out", str(tmp_path / "k.yaml")]) == 0
    assert "warning: only 4 views: fx is known to +-" in capsys.readouterr().out
    assert IntrinsicsCalibration.load(tmp_path / "k.yaml").std_px["fx"] == pytest.approx(few.std_px["fx"])
    assert s2r([*argv, "--min-views", "5", "--out", str(tmp_path / "k5.yaml")]) != 0


def test_bad_inputs_fail_clearly(tmp_path):
    for spec in ("chessboard:9x6", "chessboard:9by6:0.025", "charuco:7x5:0.04:0.05:DICT_5X5_100", "circles:4x11:0.02"):
        with pytest.raises(CalibrationError, match="board"):
            Board.parse(spec)
    with pytest.raises(CalibrationError, match="no images match"):
        expand(str(tmp_path / "*.jpg"))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640), 255, np.uint8))
    with pytest.raises(CalibrationError, match="found in 0 of 1"):
        calibrate([blank], Board.parse("chessboard:9x6:0.025"))
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    with pytest.raises(CalibrationError, match="not a readable image"):
        calibrate([junk], Board.parse("chessboard:9x6:0.025"))
    with pytest.raises(CalibrationError, match="unknown calibration flags"):
        calibrate([blank], Board.parse("chessboard:9x6:0.025"), ["fix_everything"])
    assert (
        s2r(
            [
                "calibrate",
                "intrinsics",
                "--images",
                str(tmp_path / "none*.png"),
                "--board",
                "chessboard:9x6:0.025",
                "--out",
                str(tmp_path / "x.yaml"),
            ]
        )
        != 0
    )


@pytest.mark.realsense
def test_the_config_and_the_sim_camera_read_the_calibration(tmp_path, capsys):
    """`--robot --camera` points the config's camera at the result; the simulated camera then renders with it."""
    from mock.simulated_realsense import SimulatedRealSense
    from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config
    from robot.description import ConfigError
    from robot.intrinsics import camera_intrinsics

    K = np.array([[600.0, 0, 330.0], [0, 600.0, 242.0], [0, 0, 1]])
    _charuco_views(tmp_path, K)
    robot = tmp_path / "robot" / "arm.yaml"
    robot.parent.mkdir()
    robot.write_text((HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml").read_text())
    out = tmp_path / "table.yaml"
    argv = ["calibrate", "intrinsics", "--images", str(tmp_path / "charuco_*.png"), "--out", str(out)]
    argv += ["--board", "charuco:7x5:0.04:0.03:DICT_5X5_100", "--zero-tangent-dist", "--fix-k3"]
    assert s2r([*argv, "--robot", str(robot), "--camera", "table"]) == 0
    assert 'intrinsics: "../table.yaml"' in robot.read_text()
    camera = load_hardware_config(robot).cameras[0]
    assert camera.intrinsics == str(out.resolve())
    k = camera_intrinsics(640, 480, camera.intrinsics)
    assert k.fx == pytest.approx(600.0, rel=0.01) and k.cx == pytest.approx(330.0, abs=2.0)
    half = camera_intrinsics(320, 240, camera.intrinsics)  # the same camera at half resolution
    assert half.fx == pytest.approx(k.fx / 2) and half.cx == pytest.approx((k.cx + 0.5) / 2 - 0.5)
    with pytest.raises(ValueError, match="another aspect ratio"):
        camera_intrinsics(1280, 720, camera.intrinsics)
    sim = SimulatedRealSense(camera, lambda intrinsics, offset: None)
    assert sim.color_intrinsics == k
    out.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        load_hardware_config(robot)

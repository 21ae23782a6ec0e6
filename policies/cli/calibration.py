"""``s2r`` commands. Calibration: camera intrinsics, hand-eye, servo homing, system identification.

Each command is a dataclass (its fields are the flags, their docstrings the help) and a ``run_*`` function."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tyro

from calibration.intrinsics import CalibrationError


@dataclass(kw_only=True)
class CalibrateIntrinsics:
    """Camera matrix and distortion from photos of a chessboard or ChArUco."""

    images: str | None = None
    """glob of the photos, e.g. 'calib/left*.jpg'"""
    live: Annotated[str | None, tyro.conf.arg(metavar="CONFIG")] = None
    """capture from this hardware config's camera instead of --images"""
    views: int = 15
    """--live: informative views to keep"""
    timeout: float = 180.0
    """--live: give up after this many seconds"""
    show: bool = False
    """--live: a window with the detection drawn"""
    board: str
    """chessboard:COLSxROWS:SQUARE_M (inner corners) or charuco:COLSxROWS:SQUARE_M:MARKER_M:DICT"""
    out: str
    """YAML result: K, distortion, RMS and per-view errors"""
    fix_aspect_ratio: bool = False
    """keep fx = fy"""
    zero_tangent_dist: bool = False
    """no tangential distortion (p1 = p2 = 0)"""
    fix_principal_point: bool = False
    """keep the principal point at the image centre"""
    fix_k3: bool = False
    """no sixth-order radial term"""
    rational_model: bool = False
    """8-coefficient rational distortion model"""
    min_views: int = 4
    """fewest views with the board (a warning below 6 says how well fx is pinned)"""
    robot: str | None = None
    """also point this hardware config's --camera at the result (config edited)"""
    camera: str | None = None
    """the camera's name in the config (--robot; --live: default the first)"""


def run_calibrate_intrinsics(args: CalibrateIntrinsics) -> int:
    from calibration.intrinsics import FLAGS, Board, calibrate, expand

    flags = [f for f in FLAGS if getattr(args, f)]  # OpenCV's calibration flags, by their names
    if (args.images is None) == (args.live is None):
        raise CalibrationError("give --images GLOB (photos) or --live CONFIG (capture from the config's camera)")
    if args.robot is not None and args.camera is None:
        raise CalibrationError("--robot needs --camera (the camera whose intrinsics these are)")
    if args.min_views < 3:
        raise CalibrationError(f"--min-views {args.min_views}: a camera matrix needs at least 3 views")
    board = Board.parse(args.board)
    images = expand(args.images) if args.images else _capture_live(args, board)
    result = calibrate(images, board, flags, min_views=args.min_views)
    path = result.save(args.out)
    views, k = result.per_view_rms_px, result.intrinsics
    print(
        f"{len(views)} views, {k.width}x{k.height}: fx {k.fx:.2f} fy {k.fy:.2f} cx {k.cx:.2f} "
        f"cy {k.cy:.2f} px, RMS reprojection error {result.rms_px:.4f} px -> {path}"
    )
    worst = max(views, key=views.get)
    print(f"  worst view {worst}: {views[worst]:.3f} px")
    if (warning := result.focal_warning()) is not None:
        print(f"  warning: {warning}")
    if result.rejected:
        print(f"  board not found in {len(result.rejected)} image(s): {', '.join(result.rejected)}")
    if args.robot:
        _save_camera_intrinsics(args.robot, args.camera, path)
    return 0


@dataclass(kw_only=True)
class CalibrateCapture:
    """Record hand-eye samples: camera images and joint readings, torque off."""

    robot: str
    """hardware config (path or name)"""
    camera: str
    """the camera's name in the config"""
    out: str
    """folder for the images and samples.json"""
    samples: int = 20
    """poses to record"""
    board: str | None = None
    """report for each sample whether this board is seen"""
    port: str | None = None
    """serial port"""


def run_calibrate_capture(args: CalibrateCapture) -> int:
    from calibration.capture import capture_samples
    from calibration.intrinsics import Board
    from real.cameras.realsense import RealSenseCamera
    from real.dynamixel.bus import DynamixelBus
    from real.dynamixel.motor_bus import MotorBus
    from robot.config_file import load_hardware_config

    config = load_hardware_config(args.robot)
    cam = _config_camera(config, args.camera)
    board = Board.parse(args.board) if args.board else None

    def next_pose(k: int) -> bool:
        if k >= args.samples:
            return False
        answer = input(f"Pose {k + 1}/{args.samples}: move the arm, hold it still, Enter to capture (q: finish) ")
        return answer.strip().lower() != "q"

    input("Hold the arm: its torque goes off when you press Enter (it would fall otherwise)... ")
    with DynamixelBus(args.port or config.bus.port, config.bus.baudrate) as bus, RealSenseCamera(cam) as camera:
        motors = MotorBus(config, bus)
        motors.set_torque(False)  # the arm is moved by hand
        index = capture_samples(motors.read, camera, config.joint_names, args.out, next_pose, board)
    print(f"  samples: {index}")
    return 0


@dataclass(kw_only=True)
class CalibrateHandEye:
    """A camera's mount from robot poses and board views (eye-in-hand or eye-to-hand)."""

    robot: str
    """hardware config (path or name)"""
    camera: str
    """the camera's name in the config"""
    samples: str
    """folder with samples.json (images and joint readings)"""
    board: str
    """charuco:COLSxROWS:SQUARE_M:MARKER_M:DICT (a chessboard can flip)"""
    intrinsics: str | None = None
    """camera calibration file"""
    parent: str | None = None
    """'world' (camera fixed: eye-to-hand) or the link it rides on"""
    board_link: str | None = None
    """eye-to-hand: the link carrying the board"""
    method: Literal["park", "tsai", "horaud", "daniilidis"] = "park"
    out: str
    """YAML result: parent, xyz, rpy, views, consistency"""
    save: bool = False
    """write parent and mount into the config (backup kept)"""


def run_calibrate_hand_eye(args: CalibrateHandEye) -> int:
    from calibration.config_edit import flow_list, set_camera_fields
    from calibration.hand_eye import hand_eye_from_samples, load_samples
    from calibration.intrinsics import Board
    from robot.config_file import load_hardware_config, resolve_config_path
    from robot.intrinsics import camera_intrinsics, read_calibration

    config_path = resolve_config_path(args.robot)
    config = load_hardware_config(config_path)
    samples = load_samples(args.samples, config.joint_names)
    if not samples:
        raise CalibrationError(f"{args.samples}: no samples")
    cam = _config_camera(config, args.camera)
    distortion = None
    if args.intrinsics or cam.intrinsics:
        calib = read_calibration(args.intrinsics or cam.intrinsics)
        K, distortion = calib.K, np.asarray(calib.distortion)
        source = args.intrinsics or cam.intrinsics
    else:
        import cv2

        h, w = cv2.imread(str(samples[0].image), cv2.IMREAD_GRAYSCALE).shape
        K = camera_intrinsics(w, h).K
        source = f"the D435 datasheet model at {w}x{h} (no calibration file: give --intrinsics)"
    result = hand_eye_from_samples(
        config, args.camera, samples, Board.parse(args.board), K, distortion, args.parent, args.board_link, args.method
    )
    result.save(args.out)
    kind = "eye-in-hand" if result.parent != "world" else "eye-to-hand"
    print(
        f"{kind}, {result.views} views ({len(result.rejected)} without the board), intrinsics from {source}:\n"
        f"  camera {result.camera} in {result.parent}: xyz {flow_list(result.xyz)} m, rpy {flow_list(result.rpy)} rad"
        f"\n  board position spread over views {1000 * result.board_spread_m:.2f} mm -> {args.out}"
    )
    if result.outliers:
        print(f"  left out, their board disagreeing with the other views: {', '.join(result.outliers)}")
    if args.save:
        mount = f"{{xyz: {flow_list(result.xyz)}, rpy: {flow_list(result.rpy)}}}"

        def check(cfg) -> bool:
            c = cfg.camera(args.camera)
            return c.parent == result.parent and np.allclose(c.mount.xyz, result.xyz, atol=1e-5)

        set_camera_fields(config_path, args.camera, {"parent": result.parent, "mount": mount}, check)
        print(f"  saved into {config_path} (previous version: {config_path}.bak)")
    return 0


@dataclass(kw_only=True)
class CalibrateMotors:
    """Home the servos: offsets, directions and ranges of motion, saved into the robot's config."""

    robot: str
    """hardware config (path or name); updated in place (backup .bak)"""
    port: str | None = None
    """serial port"""
    dry_run: bool = False
    """measure and print, do not change the config"""


def run_calibrate_motors(args: CalibrateMotors) -> int:
    from calibration.motors import ConsoleOperator, home_motors
    from real.dynamixel.bus import DynamixelBus
    from robot.config_file import load_hardware_config, resolve_config_path
    from robot.description import ConfigError

    path = resolve_config_path(args.robot)
    config = load_hardware_config(path)
    if config.bus.protocol != "dynamixel2":
        raise ConfigError(
            f"{config.name}: `s2r calibrate motors` homes Dynamixel arms; calibrate a Feetech arm with LeRobot and "
            "import it (`s2r calibrate lerobot`)"
        )
    print(f"{config.name}: homing on {config.bus.port}.")
    input("Hold the arm: its torque goes off when you press Enter (it would fall otherwise)... ")
    with DynamixelBus(args.port or config.bus.port, config.bus.baudrate) as bus:
        result = home_motors(config, bus, ConsoleOperator())
    return _report_and_save(result, path, args.dry_run)


def _report_and_save(result, path, dry_run: bool) -> int:
    """Print a homing result (calibration.motors.HomingResult) motor by motor and, unless ``dry_run``, save it into
    the config file at ``path``."""
    from calibration.motors import save

    for cal in result.motors:
        homing = f"homing_offset {cal.homing_offset}, " if cal.homing_offset is not None else ""
        print(
            f"  {cal.joint} (id {cal.ident}): {homing}offset {cal.offset:+.4f} rad, direction {cal.direction:+d}"
            f"{'' if cal.direction_checked else ' (not checked)'}, limits {cal.lower:+.4f}..{cal.upper:+.4f}"
            f"{'' if cal.limits_measured else ' (kept)'}"
        )
    for warning in result.warnings:
        print(f"  warning: {warning}")
    if dry_run:
        print("  dry run: config not changed")
    else:
        print(f"  saved into {save(result, path)} (previous version: {path}.bak)")
    return 0


@dataclass(kw_only=True)
class CalibrateLerobot:
    """Import a LeRobot calibration file (so101_follower) into a Feetech robot's config: no re-calibration."""

    file: str
    """LeRobot's calibration JSON (~/.cache/huggingface/lerobot/calibration/robots/so101_follower/<id>.json)"""
    robot: str
    """hardware config (path or name); updated in place (backup .bak)"""
    dry_run: bool = False
    """print what would be written, do not change the config"""


def run_calibrate_lerobot(args: CalibrateLerobot) -> int:
    from calibration.lerobot_calibration import homing_from_lerobot, read_lerobot_calibration
    from robot.config_file import load_hardware_config, resolve_config_path

    path = resolve_config_path(args.robot)
    result = homing_from_lerobot(load_hardware_config(path), read_lerobot_calibration(args.file))
    return _report_and_save(result, path, args.dry_run)


@dataclass(kw_only=True)
class Sysid:
    """Fit servo models to logs (.json servo test bench, or a robot's .mcap) and score them on other logs."""

    logs: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """glob of the logs to fit (repeatable)"""
    eval: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """glob of logs to score on (repeatable; not used by the fit)"""
    params: str | None = None
    """score these fitted parameters (a file written by --out) instead of fitting"""
    out: str | None = None
    """write the fitted parameters here (YAML)"""
    model: (
        Literal[
            "auto",
            "coulomb_viscous",
            "stribeck",
            "load",
            "stribeck_load",
            "quadratic",
            "stribeck_quadratic",
            "directional",
            "sim",
        ]
        | None
    ) = None
    """auto (test-bench logs' default): every voltage servo friction model cross-validated across each condition
    the logs vary (trajectory family, P gain, load), the best on validation fitted; coulomb_viscous / stribeck /
    load / stribeck_load / quadratic / stribeck_quadratic / directional: that one (calibration/servo_sysid.py
    MODELS); sim: the simulated robot's servo parameters the tasks randomize (robot logs only; their default)"""
    iterations: int | None = None
    """most generations of the search"""
    seed: int = 0
    robot: str | None = None
    """robot logs: hardware config, when the logs do not name theirs"""
    plot: str | None = None
    """PNG of logged vs simulated trajectories (eval logs, else fit logs)"""
    json: str | None = None
    """write the report (per-log MAE and RMS, fitted vs default) here"""
    emit_domain: str | None = None
    """robot logs: write the fitted values as a domain file (pins them)"""
    emit_ranges: str | None = None
    """robot logs: write the task's randomization centred on the fitted values"""


def run_sysid(args: Sysid) -> int:
    from calibration import sysid

    report = sysid.run(
        list(args.logs) or None,
        list(args.eval) or None,
        params=args.params,
        out=args.out,
        model=args.model,
        iterations=args.iterations,
        seed=args.seed,
        plot=args.plot,
        robot=args.robot,
        emit_domain=args.emit_domain,
        emit_ranges=args.emit_ranges,
    )
    if args.json:  # before anything is printed: a closed pipe must not lose the file
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    for line in sysid.summary_lines(report):
        print(line)
    for key in ("plot", "domain_file", "ranges_file"):
        if key in report:
            print(f"  {key.replace('_', ' ')}: {report[key]}")
    if args.out and not args.params:
        print(f"  parameters: {args.out}")
    return 0


def _config_camera(config, name: str | None):
    """``config.camera(name)``, its KeyError as a CalibrationError (a clear message, exit status 2)."""
    try:
        return config.camera(name)
    except KeyError as exc:
        raise CalibrationError(exc.args[0]) from None


def _capture_live(args: Any, board) -> list[str]:
    """Views kept from the configured camera (written next to --out, in OUT_views/)."""
    from calibration.live_capture import capture_views
    from real.cameras.realsense import RealSenseCamera
    from robot.config_file import load_hardware_config

    config = load_hardware_config(args.live)
    if config.mock is not None:
        raise CalibrationError(f"{config.name} is a mock robot: its camera renders the task scene, with no board in it")
    cam = _config_camera(config, args.camera)
    out = Path(args.out)
    folder = out.with_name(out.stem + "_views")
    print(f"{config.name}: camera {cam.name}; move the board around (near, far, corners, tilted)")
    with RealSenseCamera(cam) as camera:
        files = capture_views(camera, board, folder, views=args.views, timeout_s=args.timeout, show=args.show)
    print(f"  {len(files)} views in {folder}")
    return [str(f) for f in files]


def _save_camera_intrinsics(robot: str, camera: str, intrinsics: Path) -> None:
    """Point the robot config's camera at a calibration file (path relative to the config)."""
    from calibration.config_edit import set_camera_fields
    from robot.config_file import resolve_config_path

    config_path = resolve_config_path(robot)
    relative = os.path.relpath(intrinsics.resolve(), config_path.resolve().parent)
    want = str(intrinsics.resolve())
    set_camera_fields(
        config_path,
        camera,
        {"intrinsics": json.dumps(relative)},
        lambda cfg: cfg.camera(camera).intrinsics == want,
    )
    print(f"  {config_path}: camera {camera} reads {relative} (previous version: {config_path}.bak)")

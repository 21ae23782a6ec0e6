"""The ``s2r`` command. It lives in ``policies`` because that package sits on top of ``sim`` and ``real``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from calibration.intrinsics import CalibrationError
from calibration.servo_sysid import SysidError
from policies.distill_config import APPROACH_STEPS
from real.cameras.frame import CameraError
from real.dynamixel.bus import DynamixelError
from real.dynamixel.motor_bus import WrapAroundError
from real.hardware_log import LogError
from robot.description import ConfigError
from robot.spec import BundleError
from sim.randomization.config import RandomizationError


def _cmd_expert(args: argparse.Namespace) -> int:
    from policies.rollout import run_expert

    pinned = f", domain {args.domain} pinned" if args.domain else ""
    print(f"the scripted {args.task} expert under the randomization {args.randomization!r}{pinned}")
    summary = run_expert(
        args.task,
        args.episodes,
        args.seed,
        obs_mode=args.obs_mode,
        video=args.video,
        randomization=args.randomization,
        domain=args.domain,
    )
    _print_summary(summary)
    if args.json:
        _write_json(args.json, summary.to_dict())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The whole story on the built-in mock arm: experts in simulation, then a trained policy deployed through the
    hardware layer into a reality outside its training ranges, logged, replay-checked and reported."""
    from calibration import robot_sysid
    from calibration.sim_replay import sim_replay
    from policies.deploy import DeployConfig, deploy
    from policies.evaluate import evaluate
    from policies.replay_check import check_policy
    from policies.rollout import run_expert
    from robot.config_file import HARDWARE_CONFIG_DIR
    from sim.randomization.config import load_domain

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    t0 = time.monotonic()
    print("1. the scripted experts in simulation, under the default randomization")
    for task in ("grasp", "navigate"):
        video = out / f"{task}_expert.mp4"
        summary = run_expert(
            task,
            args.episodes,
            args.seed,
            video=video,
            video_episodes=args.video_episodes,
            randomization=args.randomization,
        )
        _print_summary(summary)
        print(f"  video of the first {args.video_episodes} episodes: {video}")
        report[f"{task}_expert"] = summary.to_dict()
    policy = args.policy
    print(f"2. the grasp policy {policy} in simulation, on held-out randomized domains")
    summary = evaluate(policy, "grasp", args.episodes, 1_000_000, "default")
    _print_summary(summary)
    report["policy_in_sim"] = summary.to_dict()
    reality = args.reality or str(HARDWARE_CONFIG_DIR / "mock" / "realities" / "grasp_heavy_laggy.yaml")
    print(f"3. deployed on the mock arm (real driver code, servo emulator, safety filter) in the reality {reality}")
    log = out / "deploy_grasp.mcap"
    deployed = deploy(
        DeployConfig(
            robot="mock/openmanipulator_x",
            policy=policy,
            episodes=args.deploy_episodes,
            log=str(log),
            reality=reality,
            seed=args.seed + 3_000_000,
        )
    )
    report["deployment"] = deployed.to_dict()
    loop = deployed.loop
    print(
        f"  {deployed.ended}: success {deployed.success_rate:.0%} over {len(deployed.episodes)} episodes; loop "
        f"{1e3 / loop['cycle_ms_p50']:.1f} Hz (p99 cycle {loop['cycle_ms_p99']} ms), overruns {loop['overruns']}; "
        f"safety events {deployed.safety_events or 'none'}; log {log}"
    )
    print("4. replaying the log")
    check = check_policy(log, policy)
    drift = sim_replay(log)
    report["replay"] = {"check_policy": check, "sim_replay": drift}
    print(
        f"  the policy recomputed from the logged observations: largest action difference "
        f"{check['max_abs_difference']:.2g} ({'matches' if check['matches'] else 'DIFFERS'})"
    )
    worst = max(drift["rms_error"], key=drift["rms_error"].get)
    print(
        f"  the nominal sim driven by the logged commands drifts from the reality by RMS "
        f"{drift['rms_error'][worst]:.3g} at most ({worst})"
    )
    print("5. system identification: the sim's servos fitted to the log (s2r sysid)")
    config, logs = robot_sysid.load_robot_logs([log])
    targets, _ = robot_sysid.fit(config, logs, iterations=12, seed=args.seed)
    fitted, nominal = robot_sysid.score(config, logs, targets), robot_sysid.score(config, logs, {})
    domain = robot_sysid.domain_from_targets("grasp", targets)
    truth = load_domain(reality)
    report["sysid"] = {"domain": domain, "mae_rad": fitted["mae_rad"], "nominal_mae_rad": nominal["mae_rad"]}
    print(
        f"  latency {1000 * domain['latency_s']:.0f} ms (the reality: {1000 * truth.get('latency_s', 0):.0f} ms), "
        f"position gain x{domain['servo_position_gain_scale']:.2f}; replay error MAE "
        f"{1000 * nominal['mae_rad']:.1f} -> {1000 * fitted['mae_rad']:.1f} mrad"
    )
    _write_json(out / "demo.json", report)
    print(f"demo finished in {time.monotonic() - t0:.1f} s; report in {out / 'demo.json'}")
    return 0 if deployed.ended == "completed" and check["matches"] else 1


def _cmd_randomization_preview(args: argparse.Namespace) -> int:
    from sim.randomization.preview import contact_sheet, write_contact_sheet

    sheet = contact_sheet(args.task, args.n, args.seed, randomization=args.randomization)
    path = write_contact_sheet(args.out, sheet)
    print(f"{path}: {args.n} randomized {args.task} views (color | depth), seeds {args.seed}-{args.seed + args.n - 1}")
    return 0


def _cmd_mock_bus(args: argparse.Namespace) -> int:
    import signal

    from mock.plants import make_plant
    from real.dynamixel.emulator import emulator_for_config, open_pty
    from robot.config_file import load_hardware_config

    config = load_hardware_config(args.config)
    master, slave, name = open_pty(args.link)
    emulator = emulator_for_config(config, make_plant(config, args.physics))
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a background job starts with it ignored
        signal.signal(sig, lambda *_: stopping.append(True))
    ids = ", ".join(f"{m.id} ({m.model}, {m.joint})" for m in config.motors)
    print(f"emulating {config.name} on {args.link} -> {name}: motors {ids}; Ctrl-C to stop", flush=True)
    try:
        emulator.serve(master, lambda: bool(stopping))
    except KeyboardInterrupt:
        pass
    finally:
        os.close(master)
        os.close(slave)
        Path(args.link).unlink(missing_ok=True)
    print(f"stopped after {emulator.packets_handled} packets")
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    from robot.config_file import load_hardware_config, urdf_problems
    from robot.description import URDF_DIR, ConfigError

    status = 0
    for path in args.configs:
        try:
            cfg = load_hardware_config(path)
        except ConfigError as e:
            print(e, file=sys.stderr)
            status = 1
            continue
        problems = urdf_problems(cfg, URDF_DIR / cfg.sim.urdf)
        if problems:
            print(f"{path}: disagrees with its URDF:\n  " + "\n  ".join(problems), file=sys.stderr)
            status = 1
            continue
        cams = ", ".join(f"{c.name} ({c.model})" for c in cfg.cameras) or "none"
        print(
            f"{path}: ok: {cfg.name} ({cfg.kind}), joints {cfg.joint_names}, {cfg.control.rate_hz:g} Hz, cameras {cams}"
        )
    return status


def _cmd_train(args: argparse.Namespace) -> int:
    from policies.train import TrainConfig, train

    cfg = TrainConfig(
        task=args.task,
        algo=args.algo,
        obs=args.obs,
        steps=args.steps,
        seed=args.seed,
        out=args.out,
        randomization=args.randomization,
        n_envs=args.n_envs or TrainConfig(task=args.task).n_envs,
        bc_demos=args.bc_demos,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        checkpoint_every=args.checkpoint_every,
        epopt_epsilon=args.epopt_epsilon,
        universal=args.universal,
    )
    report = train(cfg, resume=args.resume)
    best = report["best"]
    print(
        f"{args.task} {args.algo}: best held-out success {best['success_rate']:.1%} at step {best['step']}; "
        f"bundle {report['bundle']}; {report['wall_s']:.0f} s"
    )
    return 0


def _positive_ints(text: str) -> tuple[int, ...]:
    """ "32,64,64" -> (32, 64, 64); argparse reports the ValueError as a usage error."""
    values = tuple(int(v) for v in text.split(","))
    if not values or min(values) < 1:
        raise ValueError(text)
    return values


def _crop(text: str) -> tuple[int, int, int, int]:
    """ "112,112,416,312" -> (x, y, width, height) px; argparse reports the ValueError as a usage error."""
    values = tuple(int(v) for v in text.split(","))
    if len(values) != 4 or min(values[:2]) < 0 or min(values[2:]) < 1:
        raise ValueError(text)
    return values


def _share(text: str) -> float:
    """ "0.3" -> 0.3, a fraction in [0, 1]; argparse reports the ValueError as a usage error."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(text)
    return value


def _positive_int(text: str) -> int:
    """ "15" -> 15, at least 1; argparse reports the ValueError as a usage error."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _non_negative_int(text: str) -> int:
    """ "15" -> 15, at least 0; argparse reports the ValueError as a usage error."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _cmd_distill(args: argparse.Namespace) -> int:
    from policies.distill import DistillConfig, distill

    if args.obs != "rgbd":
        print("s2r distill: only --obs rgbd students exist", file=sys.stderr)
        return 2
    report = distill(
        DistillConfig(
            teacher=args.teacher,
            out=args.out,
            task=args.task,
            steps=args.steps,
            iterations=args.iterations,
            epochs=args.epochs,
            seed=args.seed,
            randomization=args.randomization,
            eval_episodes=args.eval_episodes,
            encoder=args.encoder,
            learning_rate=args.lr,
            image_size=args.image_size,
            supersample=args.supersample,
            crop=args.crop,
            keep_every=args.keep_every,
            channels=tuple(args.channels),
            coordinates=args.coordinates,
            pretrain_scenes=args.pretrain_scenes,
            pretrain_epochs=args.pretrain_epochs,
            pretrain_steps=args.pretrain_steps,
            workers=args.workers,
            scene_cache=args.scene_cache,
            init=args.init,
            lr_decay=args.lr_decay,
            detours=args.detours,
            detour_steps=args.detour_steps,
        )
    )
    best = report["best"]
    print(
        f"student: best held-out success {best['success_rate']:.1%} after iteration {best['iteration']}; "
        f"bundle {report['bundle']}; {report['wall_s']:.0f} s"
    )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from policies.adaptive import AdaptivePolicy
    from policies.evaluate import evaluate, parse_sweep, plot_estimates, plot_sweep, sweep
    from policies.loader import load
    from sim.randomization.config import load_domain

    torch.set_num_threads(1)  # one observation at a time: more threads only wait on each other
    modes = [m for m in ("adapt", "oracle") if getattr(args, m)]
    adaptive = {spec for spec in args.policy if spec != "expert" and isinstance(load(spec), AdaptivePolicy)}
    if modes and not adaptive:
        raise SystemExit(f"--{modes[0]} needs a universal policy with an estimator among --policy (s2r train-osi)")
    # each adaptive bundle runs once per requested mode (adapt when none is), every other policy once
    runs = [(spec, m) for spec in args.policy for m in ((modes or ["adapt"]) if spec in adaptive else [None])]
    if args.record and (args.sweep or len(runs) > 1):
        raise SystemExit("--record writes the episodes of one policy: give one --policy and no --sweep")
    if args.plot and not args.sweep and "adapt" not in [m for _, m in runs]:
        raise SystemExit("--plot without --sweep draws online estimates: give a bundle with an estimator (--adapt)")
    if args.sweep:
        name, values = parse_sweep(args.sweep)
        curves: dict[str, list] = {}
        for spec, mode in runs:
            result = sweep(
                [spec],
                args.task,
                name,
                values,
                args.episodes,
                args.seed,
                args.randomization,
                load_domain(args.domain),
                mode=mode,
            )
            curves[spec if mode is None else f"{spec} ({mode})"] = result["curves"][spec]
        result["curves"] = curves
        for label, points in curves.items():
            print(f"{label}: " + ", ".join(f"{pt['value']:g} -> {pt['success_rate']:.0%}" for pt in points))
        if args.plot:
            plot_sweep(result, args.plot, title=f"{args.task}: success vs {name}")
            print(f"plot: {args.plot}")
        if args.json:
            _write_json(args.json, result)
        return 0
    results = {}
    for spec, mode in runs:
        traced = args.plot is not None and mode == "adapt"
        summary = evaluate(
            spec,
            args.task,
            args.episodes,
            args.seed,
            args.randomization,
            args.domain,
            mode=mode,
            trace_episodes=args.plot_episodes if traced else 0,
            record=args.record,
        )
        label = spec if mode is None else f"{spec} ({mode})"
        summary.policy = label
        _print_summary(summary)
        if args.record:
            print(f"LeRobotDataset of the {summary.episodes} episodes: {args.record}")
        results[label] = summary.to_dict()
        if traced:
            path = args.plot if len(adaptive) == 1 else str(Path(args.plot).with_suffix("")) + f"_{Path(spec).name}.png"
            plot_estimates(summary.estimate_traces, path, title=f"{args.task}: online estimate vs true ({spec})")
            print(f"plot: {path}")
    if args.json:
        _write_json(args.json, results[runs[0][0]] if len(runs) == 1 else results)
    return 0


def _cmd_train_osi(args: argparse.Namespace) -> int:
    import torch

    from policies.osi import OSIConfig, train_osi

    # one small forward pass per env step: with more threads they wait on each other (about 4x slower on 2 busy cores)
    torch.set_num_threads(1)

    cfg = OSIConfig(
        policy=args.policy,
        out=args.out,
        steps=args.steps,
        history=args.history,
        seed=args.seed,
        randomization=args.randomization,
        epochs=args.epochs,
    )
    report = train_osi(cfg)
    err = report["final_error_on_estimate_driven_rollouts"]
    print(
        f"estimator: held-out RMSE {err['rmse_normalized_mean']:.3f} (normalized units, range = 2) over "
        f"{', '.join(report['dynamics'])}; bundle {report['bundle']}; {report['wall_s']:.0f} s"
    )
    for h, e in report["error_by_history"].items():
        print(f"  history {h:>3}: RMSE {e['rmse_normalized_mean']:.3f}")
    return 0


def _cmd_cameras_list(args: argparse.Namespace) -> int:
    from real.cameras.opencv_camera import list_opencv_indices
    from real.cameras.realsense import list_devices

    try:
        devices = list_devices()
    except CameraError as e:
        print(f"RealSense: unavailable: {e}")
        devices = None
    if devices is not None:
        print(f"RealSense devices: {len(devices) or 'none found'}")
        for d in devices:
            print(f"  {d['name']}  serial {d['serial']}  firmware {d['firmware']}  USB {d['usb'] or '?'}")
    indices = list_opencv_indices()
    print(f"OpenCV capture indices: {', '.join(map(str, indices)) if indices else 'none found'}")
    return 0


def _print_summary(summary) -> None:
    lo, hi = summary.success_ci95
    print(
        f"{summary.task}: success {summary.success_rate:.1%} (95% CI {lo:.1%}-{hi:.1%}) over {summary.episodes} "
        f"episodes, mean length {summary.mean_episode_length:.1f} steps"
    )


def _cmd_deploy(args: argparse.Namespace) -> int:
    import torch

    from policies.deploy import DeployConfig, deploy

    torch.set_num_threads(1)  # inference on one core: steadier act latency than threads competing with the loop

    try:
        summary = deploy(
            DeployConfig(
                robot=args.robot,
                policy=args.policy,
                episodes=args.episodes,
                max_steps=args.max_steps,
                log=args.log,
                reality=args.reality,
                seed=args.seed,
                adapt=args.adapt,
                max_frame_age_s=args.max_frame_age,
                status=not args.quiet,
            ),
            restore_signals=False,  # this process only prints the summary and exits: later signals are ignored
        )
    except ValueError as e:  # the setup refused (bundle, robot, --adapt) before anything started: one line
        print(f"s2r: {e}", file=sys.stderr)
        return 2
    result = summary.to_dict()
    if args.json:
        _write_json(args.json, result)
    loop = summary.loop
    rate = f"{1e3 / loop['cycle_ms_p50']:.1f} Hz" if loop.get("cycle_ms_p50") else "-"
    print(f"{summary.robot}: {len(summary.episodes)} episode(s), ended: {summary.ended} {summary.message}".rstrip())
    if summary.success_rate is not None:
        print(f"  success rate {summary.success_rate:.0%} (judged by the mock reality)")
    print(
        f"  loop {rate} (p99 cycle {loop.get('cycle_ms_p99')} ms), overruns {loop.get('overruns')}, "
        f"act p50 {loop.get('act_ms_p50')} ms; safety events {summary.safety_events or 'none'}"
    )
    camera = summary.camera
    if camera.get("frame_age_ms_p50") is not None:
        print(
            f"  camera frames acted on: age p50 {camera['frame_age_ms_p50']} ms, p90 {camera['frame_age_ms_p90']} ms, "
            f"max {camera['frame_age_ms_max']} ms ({camera.get('frame_age_from', 'arrival')} to use; older than "
            f"{camera.get('max_frame_age_ms')} ms: held)"
        )
    for note in summary.notes:
        print(f"  note: {note}")
    if summary.log:
        print(f"  log {summary.log}")
    torque_confirmed = summary.torque_off is None or not summary.torque_off["unreachable"]
    return 0 if summary.ended in ("completed", "stopped") and torque_confirmed else 1


def _cmd_parity(args: argparse.Namespace) -> int:
    import torch

    from policies.parity import ParityConfig, ParityError, format_report, parity

    torch.set_num_threads(1)  # one observation at a time, and the mock robot's loop shares the cores
    try:
        report = parity(
            ParityConfig(
                policy=args.policy,
                robot=args.robot,
                reality=args.reality,
                episodes=args.episodes,
                seed=args.seed,
                max_steps=args.max_steps,
                log=args.log,
                progress=not args.quiet,
            )
        )
    except ParityError as e:  # refused before anything ran: one line
        print(f"s2r: {e}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        _write_json(args.json, report)
    return 0 if report["hardware"]["ended"] == "completed" else 1


def _cmd_replay(args: argparse.Namespace) -> int:
    if Path(args.file).is_dir():  # a LeRobotDataset: its actions drive a robot
        from real.lerobot_dataset import DatasetError, replay_on_robot

        if not args.robot:
            raise SystemExit("s2r replay DATASET: give --robot (e.g. mock/openmanipulator_x) to drive with its actions")
        try:
            from mock.hardware import MockHardware

            nominal = lambda config: MockHardware(config, None, seed=3_000_000)  # noqa: E731 - the nominal reality
            result = replay_on_robot(args.file, args.robot, episode=args.episode, start_mock=nominal)
        except DatasetError as e:
            print(f"s2r: {e}", file=sys.stderr)
            return 2
        print(
            f"{result['robot']}: episode {result['episode']} of {args.file}, {result['frames_sent']} actions sent "
            f"through the safety filter ({result['safety_events']} filter events); parked {result['parked']}, "
            f"torque off {result['torque_off']} (read back)"
        )
        if args.json:
            _write_json(args.json, result)
        return 0 if result["torque_off"] else 1
    if not args.check_policy and not args.sim:
        raise SystemExit("s2r replay: give --check-policy BUNDLE and/or --sim")
    with _log_damage_as_one_line():
        return _replay(args)


def _replay(args: argparse.Namespace) -> int:
    from calibration.sim_replay import sim_replay
    from policies.replay_check import check_policy

    result: dict = {"log": args.file}
    status = 0
    if args.check_policy:
        check = check_policy(args.file, args.check_policy, atol=args.atol)
        result["check_policy"] = check
        verdict = "matches" if check["matches"] else "DIFFERS"
        print(
            f"policy {args.check_policy} on {check['cycles']} logged cycles: largest action difference "
            f"{check['max_abs_difference']:.3g} ({verdict}, tolerance {args.atol:g})"
        )
        status = 0 if check["matches"] else 1
    if args.sim:
        plot = args.plot or str(Path(args.file).with_suffix("")) + "_sim_replay.png"
        drift = sim_replay(args.file, robot=args.robot, plot=plot)
        result["sim_replay"] = drift
        print(f"sim replay of {drift['cycles']} cycles on {drift['robot']} (open loop from the logged start):")
        for joint, what in drift["compared"].items():
            print(f"  {joint:<20} {what}: RMS {drift['rms_error'][joint]:.4g}, max {drift['max_error'][joint]:.4g}")
        print(f"  logged vs simulated joints: {plot}")
    if args.json:
        _write_json(args.json, result)
    return status


def _cmd_calibrate_intrinsics(args: argparse.Namespace) -> int:
    from calibration.intrinsics import Board, calibrate, expand

    flags = [
        f
        for f in ("fix_aspect_ratio", "zero_tangent_dist", "fix_principal_point", "fix_k3", "rational_model")
        if getattr(args, f)
    ]
    if (args.images is None) == (args.live is None):
        raise CalibrationError("give --images GLOB (photos) or --live CONFIG (capture from the config's camera)")
    if args.robot is not None and args.camera is None:
        raise CalibrationError("--robot needs --camera (the camera whose intrinsics these are)")
    board = Board.parse(args.board)
    images = expand(args.images) if args.images else _capture_live(args, board)
    result = calibrate(images, board, flags)
    path = result.save(args.out)
    views, k = result.per_view_rms_px, result.intrinsics
    print(
        f"{len(views)} views, {k.width}x{k.height}: fx {k.fx:.2f} fy {k.fy:.2f} cx {k.cx:.2f} "
        f"cy {k.cy:.2f} px, RMS reprojection error {result.rms_px:.4f} px -> {path}"
    )
    worst = max(views, key=views.get)
    print(f"  worst view {worst}: {views[worst]:.3f} px")
    if result.rejected:
        print(f"  board not found in {len(result.rejected)} image(s): {', '.join(result.rejected)}")
    if args.robot:
        _save_camera_intrinsics(args.robot, args.camera, path)
    return 0


def _config_camera(config, name: str | None):
    """``config.camera(name)``, its KeyError as a CalibrationError (a clear message, exit status 2)."""
    try:
        return config.camera(name)
    except KeyError as exc:
        raise CalibrationError(exc.args[0]) from None


def _capture_live(args: argparse.Namespace, board) -> list[str]:
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


def _cmd_calibrate_capture(args: argparse.Namespace) -> int:
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


def _cmd_calibrate_hand_eye(args: argparse.Namespace) -> int:
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
    if args.save:
        mount = f"{{xyz: {flow_list(result.xyz)}, rpy: {flow_list(result.rpy)}}}"

        def check(cfg) -> bool:
            c = cfg.camera(args.camera)
            return c.parent == result.parent and np.allclose(c.mount.xyz, result.xyz, atol=1e-5)

        set_camera_fields(config_path, args.camera, {"parent": result.parent, "mount": mount}, check)
        print(f"  saved into {config_path} (previous version: {config_path}.bak)")
    return 0


def _cmd_calibrate_motors(args: argparse.Namespace) -> int:
    from calibration.motors import ConsoleOperator, home_motors, save
    from real.dynamixel.bus import DynamixelBus
    from robot.config_file import load_hardware_config, resolve_config_path

    path = resolve_config_path(args.robot)
    config = load_hardware_config(path)
    print(f"{config.name}: homing on {config.bus.port}.")
    input("Hold the arm: its torque goes off when you press Enter (it would fall otherwise)... ")
    with DynamixelBus(args.port or config.bus.port, config.bus.baudrate) as bus:
        result = home_motors(config, bus, ConsoleOperator())
    for cal in result.motors:
        print(
            f"  {cal.joint} (id {cal.ident}): offset {cal.offset:+.4f} rad, direction {cal.direction:+d}"
            f"{'' if cal.direction_checked else ' (not checked)'}, limits {cal.lower:+.4f}..{cal.upper:+.4f}"
            f"{'' if cal.limits_measured else ' (kept)'}"
        )
    for warning in result.warnings:
        print(f"  warning: {warning}")
    if args.dry_run:
        print("  dry run: config not changed")
    else:
        print(f"  saved into {save(result, path)} (previous version: {path}.bak)")
    return 0


def _cmd_sysid(args: argparse.Namespace) -> int:
    from calibration import sysid

    report = sysid.run(
        args.logs,
        args.eval,
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
    for line in sysid.summary_lines(report):
        print(line)
    for key in ("plot", "domain_file", "ranges_file"):
        if key in report:
            print(f"  {key.replace('_', ' ')}: {report[key]}")
    if args.out and not args.params:
        print(f"  parameters: {args.out}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def _cmd_log_info(args: argparse.Namespace) -> int:
    from real.log_reader import log_info

    info = log_info(args.file)
    if info["damaged"]:  # a cut (killed writer) or damaged log: summarized up to where it stops
        print(f"s2r: warning: {args.file}: {info['damaged']}", file=sys.stderr)
    if args.json:
        _write_json(args.json, info)
    print(f"{info['path']}: {info['bytes'] / 1e6:.2f} MB, {info['duration_s']:.2f} s, {info['messages']} messages")
    for key, value in info["metadata"].items():
        print(f"  {key}: {value}")
    for topic, t in info["topics"].items():
        rate = f"{t['rate_hz']:.1f} Hz" if t["rate_hz"] else "-"
        print(f"  {topic:<28} {t['messages']:>7} msgs  {t['encoding']:<26} {rate}")
    return 0


@contextmanager
def _log_damage_as_one_line() -> Iterator[None]:
    """A cut or damaged log is read up to where it stops: each distinct damage report becomes one ``s2r: warning:``
    line on stderr instead of a Python warning; other warnings pass through."""
    import warnings

    from real.log_reader import LogDamageWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LogDamageWarning)
        yield
    for text in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, LogDamageWarning)):
        print(f"s2r: warning: {text}", file=sys.stderr)
    for w in caught:
        if not issubclass(w.category, LogDamageWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _cmd_log_export(args: argparse.Namespace) -> int:
    from real.log_reader import export_csv, export_mp4

    if args.to == "lerobot":
        from real.lerobot_dataset import DatasetError, export_lerobot, read_lerobot

        if not args.out:
            raise SystemExit("s2r log export --to lerobot: give --out DIR (a new folder)")
        try:
            with _log_damage_as_one_line():
                root = export_lerobot(args.file, args.out, task=args.task)
            data = read_lerobot(root)
        except DatasetError as e:
            print(f"s2r: {e}", file=sys.stderr)
            return 2
        frames = data.info["total_frames"]
        print(f"{root}: LeRobotDataset {data.info['codebase_version']}, {len(data.episodes)} episodes, {frames} frames")
        return 0
    if len(args.file) != 1:
        raise SystemExit(f"s2r log export --to {args.to}: one log at a time")
    file = args.file[0]
    out = Path(args.out) if args.out else Path(file).with_suffix("")
    with _log_damage_as_one_line():
        written = export_csv(file, out) if args.to == "csv" else export_mp4(file, out)
    if not written:
        print(f"{file}: no {'JSON' if args.to == 'csv' else 'image'} topics to export", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def _cmd_log_view(args: argparse.Namespace) -> int:
    """How to open a log in Foxglove, with the layout of its robot (the viewer is a web or desktop app, not a
    Python package)."""
    from real.foxglove_layout import ROBOTS, layout_path
    from real.log_reader import log_info

    info = log_info(args.file)
    if info["damaged"]:
        print(f"s2r: warning: {args.file}: {info['damaged']}", file=sys.stderr)
    robot = info["metadata"].get("robot", "")
    known = next((r for r in ROBOTS if robot.startswith(r)), None)
    foxglove = [t for t, v in info["topics"].items() if v["encoding"].startswith("foxglove.")]
    print(f"{Path(args.file).resolve()}: {info['duration_s']:.1f} s of {robot or 'an unknown robot'}")
    print("open it in Foxglove (https://app.foxglove.dev in a browser, or the desktop app): Open local file")
    if known is not None:
        print(f"then Layouts > Import from file: {layout_path(known)}")
    print(f"  shown without plugins: {', '.join(foxglove) or 'no image or frame topics'} and the JSON topics")
    return 0


def _write_json(path: str | Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=float))


class _HelpFormatter(argparse.HelpFormatter):
    """Keeps each subcommand and its one-line description on one line."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=24, width=120)
        self._action_max_length = 18  # argparse does not count subcommand names when aligning


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2r",
        description="Sim-to-real pipeline for a tabletop servo arm and a differential-drive base.",
        formatter_class=_HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "demo", help="experts in sim, then a policy deployed on the mock arm in an unseen reality, logged and replayed"
    )
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--episodes", type=int, default=20, help="episodes per task (default: 20)")
    p.add_argument("--video-episodes", type=int, default=3, help="episodes per task to record (default: 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--randomization",
        default="default",
        help="none | default | a variant's name (stale_frames, ...) | PATH (default: default)",
    )
    p.add_argument("--policy", default="grasp_state", help="grasp bundle to deploy: a path, or a shipped bundle's name")
    p.add_argument("--deploy-episodes", type=int, default=5, help="episodes on the mock arm (default: 5)")
    p.add_argument("--reality", help="domain file of the mock arm's reality (default: a heavy object, 50 ms lag)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("expert", help="run a task's scripted expert (privileged state) and report its success rate")
    p.add_argument("--task", required=True, choices=["grasp", "navigate"])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed SEED + i")
    p.add_argument("--obs-mode", default="state", choices=["state", "rgbd"])
    p.add_argument("--json", help="write the summary (success_rate, episodes, mean_episode_length, ...) here")
    p.add_argument("--video", type=Path, help="record the configured camera to this MP4 file")
    p.add_argument(
        "--randomization",
        default="none",
        help="none | default | a variant's name (stale_frames, ...) | PATH (default: none)",
    )
    p.add_argument(
        "--domain",
        help="domain values to pin (name: value): a YAML path, or the name of a shipped reality or test domain",
    )
    p.set_defaults(func=_cmd_expert)

    p = sub.add_parser("train", help="train a state policy (PPO or SAC, warm-started from the expert) into a bundle")
    p.add_argument("--task", required=True, choices=["grasp", "navigate"])
    p.add_argument("--algo", default="ppo", choices=["ppo", "sac"])
    p.add_argument("--obs", default="state", choices=["state"], help="state (camera students: s2r distill)")
    p.add_argument("--steps", type=int, default=200_000, help="environment steps of RL (default 200000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run folder: run.yaml, eval.json, checkpoints/, tb/, bundle/")
    p.add_argument(
        "--randomization",
        default="default",
        help="none | default | a variant's name (stale_frames, ...) | PATH (default: default)",
    )
    p.add_argument("--n-envs", type=int, default=0, help="parallel environments (default: one per core)")
    p.add_argument("--bc-demos", type=int, default=300, help="expert episodes for the warm start (0: none)")
    p.add_argument("--eval-every", type=int, default=20_000, help="steps between held-out evaluations")
    p.add_argument("--eval-episodes", type=int, default=50, help="held-out episodes per evaluation")
    p.add_argument("--checkpoint-every", type=int, default=50_000)
    p.add_argument(
        "--epopt-epsilon", type=float, default=1.0, help="EPOpt: train on the worst fraction of episodes (PPO)"
    )
    p.add_argument(
        "--universal",
        action="store_true",
        help="a universal policy: it also takes the dynamics parameters mu (for s2r train-osi)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out up to --steps")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("distill", help="train a camera (rgbd) student to imitate a state teacher with DAgger")
    p.add_argument("--teacher", required=True, help="state-policy bundle or run folder, or 'expert'")
    p.add_argument("--task", choices=["grasp", "navigate"], help="needed with --teacher expert")
    p.add_argument("--obs", default="rgbd", choices=["rgbd"])
    p.add_argument("--steps", type=int, default=30_000, help="environment steps over all iterations")
    p.add_argument("--iterations", type=int, default=5, help="DAgger iterations (default 5)")
    p.add_argument("--epochs", type=int, default=4, help="passes over the aggregated data per iteration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--randomization",
        default="default",
        help="none | default | a variant's name (stale_frames, ...) | PATH (default: default)",
    )
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--encoder", default="cnn", choices=["cnn", "keypoints"], help="image encoder of the student")
    p.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default 5e-4)")
    p.add_argument("--image-size", type=int, default=64, help="square camera image side in px (default 64)")
    p.add_argument(
        "--supersample",
        type=int,
        default=1,
        help="render the camera at S x the image size and area-average it down, as the robot reduces real frames "
        "(default 1: render at the image size)",
    )
    p.add_argument(
        "--crop",
        type=_crop,
        default=None,
        metavar="X,Y,W,H",
        help="the student sees only this region of the camera's color frame (px; default: the whole frame)",
    )
    p.add_argument(
        "--keep-every", type=int, default=1, help="keep every K-th visited state (more scenes per sample; default 1)"
    )
    p.add_argument(
        "--channels", type=_positive_ints, default=(16, 32, 32), help="encoder convolution widths (default 16,32,32)"
    )
    p.add_argument("--coordinates", action="store_true", help="add pixel-coordinate input channels (CoordConv)")
    p.add_argument(
        "--pretrain-scenes",
        type=int,
        default=0,
        help="before DAgger, fit on one early teacher-labelled frame from each of N new scenes (default 0: none)",
    )
    p.add_argument("--pretrain-epochs", type=int, default=10, help="passes over the pretraining scenes (default 10)")
    p.add_argument(
        "--pretrain-steps",
        type=_non_negative_int,
        default=APPROACH_STEPS,
        metavar="K",
        help="a pretraining frame comes after 0 to K teacher steps (default 5: the approach; a teacher episode's "
        "length: grasp and lift too)",
    )
    p.add_argument(
        "--detours",
        type=_share,
        default=0.0,
        metavar="P",
        help="share of episodes and scenes that begin with a random detour, so the student learns the way back "
        "from states off the teacher's path (default 0)",
    )
    p.add_argument(
        "--detour-steps",
        type=_positive_int,
        default=15,
        help="a detour lasts 1 to this many steps of one random action",
    )
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes collecting scenes (default: all cores)"
    )
    p.add_argument(
        "--scene-cache",
        default=None,
        help="folder keeping pretraining scenes between runs (keyed by teacher, task, randomization, size, seed)",
    )
    p.add_argument(
        "--init",
        default=None,
        metavar="BUNDLE",
        help="continue this student (bundle or run folder): its network and normalization (--channels, --coordinates "
        "and --encoder are ignored); its camera must be this run's; DAgger goes on at the iteration after its last, "
        "with the DAgger samples it was fitted on, and pretraining scenes join the data without a refit",
    )
    p.add_argument(
        "--lr-decay",
        action="store_true",
        help="each DAgger fit's learning rate follows a cosine down to a tenth (default: constant)",
    )
    p.add_argument(
        "--out", required=True, help="run folder: eval.json, report.json, bundle/, iterations/N/, pretrained/"
    )
    p.set_defaults(func=_cmd_distill)

    p = sub.add_parser("eval", help="success rate of policy bundles (or 'expert'), or a robustness sweep with a plot")
    p.add_argument("--policy", required=True, nargs="+", help="bundle folders or run folders, or 'expert'")
    p.add_argument("--task", required=True, choices=["grasp", "navigate"])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=1_000_000, help="episode i uses seed SEED + i (default: held out)")
    p.add_argument(
        "--randomization",
        default="default",
        help="none | default | a variant's name (stale_frames, ...) | PATH (default: default)",
    )
    p.add_argument(
        "--domain",
        help="domain values to pin (name: value): a YAML path, or the name of a shipped reality or test domain",
    )
    p.add_argument("--sweep", help="NAME=LO:HI:K: evaluate at K values of one domain parameter")
    p.add_argument(
        "--plot",
        help="PNG: with --sweep, success vs parameter (one line per policy); else the online estimate of mu vs its "
        "true value over the first episodes (bundles with an estimator, --adapt)",
    )
    p.add_argument("--plot-episodes", type=int, default=4, help="episodes drawn in the estimate plot (default 4)")
    p.add_argument("--adapt", action="store_true", help="bundles with an estimator act on their online estimate")
    p.add_argument("--oracle", action="store_true", help="bundles with an estimator act on the true mu")
    p.add_argument("--record", help="write the episodes as a LeRobotDataset in this new folder (one policy, no sweep)")
    p.add_argument("--json", help="write the results here")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("train-osi", help="train an online system-identification estimator for a universal policy")
    p.add_argument("--policy", required=True, help="universal-policy bundle or run folder (s2r train --universal)")
    p.add_argument("--steps", type=int, default=60_000, help="environment steps per training stage (default 60000)")
    p.add_argument("--history", type=int, default=16, help="steps of proprioception and actions it reads (H)")
    p.add_argument("--epochs", type=int, default=30, help="passes over the data (stage 2: half as many)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--randomization",
        default="default",
        help="none | default | a variant's name (stale_frames, ...) | PATH (default: default)",
    )
    p.add_argument("--out", required=True, help="run folder: report.json, bundle/ (the UP and the estimator)")
    p.set_defaults(func=_cmd_train_osi)

    p = sub.add_parser("randomization", help="inspect domain randomization (preview: a contact sheet of views)")
    rsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    r = rsub.add_parser("preview", help="render randomized camera views, color and depth side by side, to a PNG")
    r.add_argument("--task", required=True, choices=["grasp", "navigate"])
    r.add_argument("--n", type=int, default=16, help="number of views (default: 16)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument(
        "--randomization",
        default="default",
        help="none | default | a variant's name (stale_frames, ...) | PATH (default: default)",
    )
    r.add_argument("--out", required=True, help="PNG path")
    r.set_defaults(func=_cmd_randomization_preview)

    p = sub.add_parser("mock-bus", help="emulate a robot's Dynamixel servos on a pseudo-terminal until stopped")
    p.add_argument("--config", required=True, help="hardware config (path or name in hardware_configs/)")
    p.add_argument("--link", required=True, help="path of the symlink to the pseudo-terminal, e.g. /tmp/ttyDXL")
    p.add_argument(
        "--physics",
        default="pybullet",
        choices=["pybullet", "simple"],
        help="pybullet: the simulated robot moves (default); simple: first-order servos",
    )
    p.set_defaults(func=_cmd_mock_bus)

    p = sub.add_parser("cameras", help="camera tools (list: connected RealSense devices and OpenCV indices)")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = csub.add_parser(
        "list", help="print connected RealSense devices (name, serial, firmware, USB) and OpenCV indices"
    )
    c.set_defaults(func=_cmd_cameras_list)

    p = sub.add_parser("deploy", help="run a policy bundle on a robot (or a mock robot) through the safety filter")
    p.add_argument("--robot", required=True, help="hardware config (path or name, e.g. mock/openmanipulator_x)")
    p.add_argument("--policy", required=True, help="policy bundle or run folder, or a shipped bundle's name")
    p.add_argument("--episodes", type=int, default=1)
    p.add_argument("--max-steps", type=int, help="control cycles per episode (default: the task's episode length)")
    p.add_argument("--log", help="write the hardware log (MCAP) here")
    p.add_argument("--reality", help="mock robots: domain file of the simulated reality (default: nominal)")
    p.add_argument("--seed", type=int, default=3_000_000, help="mock robots: seed of the first episode's scene")
    p.add_argument("--adapt", action="store_true", help="a bundle with an online estimator acts on its estimate")
    p.add_argument(
        "--max-frame-age",
        type=float,
        help="s: a camera policy holds instead of acting on an older frame (default: the oldest it trained on, "
        "at least one control period)",
    )
    p.add_argument("--json", help="write the summary here")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    p.set_defaults(func=_cmd_deploy)

    p = sub.add_parser(
        "parity", help="the same seeded episodes in simulation and on a mock robot: success, agreement, observations"
    )
    p.add_argument("--policy", required=True, help="policy bundle or run folder, or a shipped bundle's name")
    p.add_argument("--robot", required=True, help="mock hardware config (e.g. mock/openmanipulator_x)")
    p.add_argument("--reality", help="domain file of the reality, pinned in the simulation too (default: nominal)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=3_000_000, help="episode k uses seed SEED + k on both paths")
    p.add_argument("--max-steps", type=int, help="control steps per episode on both paths (default: the task's)")
    p.add_argument("--log", help="keep the mock robot's hardware log (MCAP) here")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--quiet", action="store_true", help="no progress bar or status line")
    p.set_defaults(func=_cmd_parity)

    p = sub.add_parser("replay", help="replay a hardware log: recompute a policy's actions, or drive the sim with it")
    p.add_argument("file", help="an .mcap log written by s2r deploy, or a LeRobotDataset folder (with --robot)")
    p.add_argument("--episode", type=int, default=0, help="a dataset's episode to drive the robot with (default: 0)")
    p.add_argument("--check-policy", help="bundle whose actions are recomputed from the logged observations")
    p.add_argument("--atol", type=float, default=1e-5, help="largest action difference that still matches")
    p.add_argument("--sim", action="store_true", help="feed the logged commands to the simulated robot: drift")
    p.add_argument(
        "--robot", help="hardware config for --sim (default: the one the log names), or to drive from a dataset"
    )
    p.add_argument("--plot", help="--sim: PNG of logged vs simulated joints (default: LOG_sim_replay.png)")
    p.add_argument("--json", help="write the results here")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("calibrate", help="calibration: camera intrinsics, hand-eye, servo homing (motors)")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = csub.add_parser("intrinsics", help="camera matrix and distortion from photos of a chessboard or ChArUco")
    q.add_argument("--images", help="glob of the photos, e.g. 'calib/left*.jpg'")
    q.add_argument("--live", metavar="CONFIG", help="capture from this hardware config's camera instead of --images")
    q.add_argument("--views", type=int, default=15, help="--live: informative views to keep (default 15)")
    q.add_argument("--timeout", type=float, default=180.0, help="--live: give up after this many seconds")
    q.add_argument("--show", action="store_true", help="--live: a window with the detection drawn")
    q.add_argument(
        "--board",
        required=True,
        help="chessboard:COLSxROWS:SQUARE_M (inner corners) or charuco:COLSxROWS:SQUARE_M:MARKER_M:DICT",
    )
    q.add_argument("--out", required=True, help="YAML result: K, distortion, RMS and per-view errors")
    for flag, text in (
        ("fix-aspect-ratio", "keep fx = fy"),
        ("zero-tangent-dist", "no tangential distortion (p1 = p2 = 0)"),
        ("fix-principal-point", "keep the principal point at the image centre"),
        ("fix-k3", "no sixth-order radial term"),
        ("rational-model", "8-coefficient rational distortion model"),
    ):
        q.add_argument(f"--{flag}", action="store_true", help=text)
    q.add_argument("--robot", help="also point this hardware config's --camera at the result (config edited)")
    q.add_argument("--camera", help="the camera's name in the config (--robot; --live: default the first)")
    q.set_defaults(func=_cmd_calibrate_intrinsics)

    q = csub.add_parser("capture", help="record hand-eye samples: camera images and joint readings, torque off")
    q.add_argument("--robot", required=True, help="hardware config (path or name)")
    q.add_argument("--camera", required=True, help="the camera's name in the config")
    q.add_argument("--out", required=True, help="folder for the images and samples.json")
    q.add_argument("--samples", type=int, default=20, help="poses to record (default 20; q at a prompt ends)")
    q.add_argument("--board", help="report for each sample whether this board is seen")
    q.add_argument("--port", help="serial port (default: the config's bus.port)")
    q.set_defaults(func=_cmd_calibrate_capture)

    q = csub.add_parser(
        "hand-eye", help="a camera's mount from robot poses and board views (eye-in-hand or eye-to-hand)"
    )
    q.add_argument("--robot", required=True, help="hardware config (path or name)")
    q.add_argument("--camera", required=True, help="the camera's name in the config")
    q.add_argument("--samples", required=True, help="folder with samples.json (images and joint readings)")
    q.add_argument("--board", required=True, help="charuco:COLSxROWS:SQUARE_M:MARKER_M:DICT (a chessboard can flip)")
    q.add_argument("--intrinsics", help="camera calibration file (default: the config camera's, else the D435 model)")
    q.add_argument("--parent", help="'world' (camera fixed: eye-to-hand) or the link it rides on (default: config's)")
    q.add_argument("--board-link", help="eye-to-hand: the link carrying the board (default: the arm's ee link)")
    q.add_argument("--method", choices=["park", "tsai", "horaud", "daniilidis"], default="park")
    q.add_argument("--out", required=True, help="YAML result: parent, xyz, rpy, views, consistency")
    q.add_argument("--save", action="store_true", help="write parent and mount into the config (backup kept)")
    q.set_defaults(func=_cmd_calibrate_hand_eye)

    q = csub.add_parser(
        "motors", help="home the servos: offsets, directions and ranges of motion, saved into the robot's config"
    )
    q.add_argument("--robot", required=True, help="hardware config (path or name); updated in place (backup .bak)")
    q.add_argument("--port", help="serial port (default: the config's bus.port)")
    q.add_argument("--dry-run", action="store_true", help="measure and print, do not change the config")
    q.set_defaults(func=_cmd_calibrate_motors)

    p = sub.add_parser(
        "sysid",
        help="fit servo models to logs (.json servo test bench, or a robot's .mcap) and score them on other logs",
    )
    p.add_argument("--logs", action="append", help="glob of the logs to fit (repeatable)")
    p.add_argument("--eval", action="append", help="glob of logs to score on (repeatable; not used by the fit)")
    p.add_argument("--params", help="score these fitted parameters (a file written by --out) instead of fitting")
    p.add_argument("--out", help="write the fitted parameters here (YAML)")
    p.add_argument(
        "--model",
        choices=["sim", "load", "coulomb_viscous"],
        help="load / coulomb_viscous: a voltage servo model with that friction (Coulomb + viscous, plus "
        "load-dependent for load; the default for test-bench logs); sim: the simulated robot's servo parameters "
        "the tasks randomize (robot logs only; their default)",
    )
    p.add_argument("--iterations", type=int, help="most generations of the search (default: 150 bench, 20 robot)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--robot", help="robot logs: hardware config, when the logs do not name theirs")
    p.add_argument("--plot", help="PNG of logged vs simulated trajectories (eval logs, else fit logs)")
    p.add_argument("--json", help="write the report (per-log MAE and RMS, fitted vs default) here")
    p.add_argument("--emit-domain", help="robot logs: write the fitted values as a domain file (pins them)")
    p.add_argument("--emit-ranges", help="robot logs: write the task's randomization centred on the fitted values")
    p.set_defaults(func=_cmd_sysid)

    p = sub.add_parser("log", help="hardware logs (MCAP): info summarizes one, export writes CSV or MP4, view opens it")
    lsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = lsub.add_parser(
        "info", help="topics, message counts, rates, duration and metadata of a log (a cut one: up to where it stops)"
    )
    q.add_argument("file", help="an .mcap log")
    q.add_argument("--json", help="also write the summary here")
    q.set_defaults(func=_cmd_log_info)
    q = lsub.add_parser(
        "export", help="JSON topics to one CSV each, image topics to one MP4 each, or logs to a LeRobotDataset"
    )
    q.add_argument("file", nargs="+", help="an .mcap log (--to lerobot: one or more, of one robot)")
    q.add_argument("--to", required=True, choices=["csv", "mp4", "lerobot"])
    q.add_argument("--out", help="output folder (default: the log's path without .mcap; --to lerobot: required)")
    q.add_argument("--task", help="--to lerobot: the task's description (default: the task the log names)")
    q.set_defaults(func=_cmd_log_export)
    q = lsub.add_parser("view", help="how to open a log in Foxglove, and the layout for its robot")
    q.add_argument("file", help="an .mcap log")
    q.set_defaults(func=_cmd_log_view)

    p = sub.add_parser("check-config", help="validate hardware config files and print what they describe")
    p.add_argument("configs", nargs="+", help="YAML paths or names in hardware_configs/")
    p.set_defaults(func=_cmd_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "episodes", 1) < 1 or getattr(args, "n", 1) < 1:
        print("s2r: --episodes and --n must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C outside a deployment's own handling (imports, loading, printing)
        print("s2r: interrupted", file=sys.stderr)
        return 130
    except (
        ConfigError,
        RandomizationError,
        CameraError,
        BundleError,
        LogError,
        CalibrationError,
        SysidError,
        WrapAroundError,
        DynamixelError,
        FileExistsError,
        FileNotFoundError,
    ) as e:
        print(f"s2r: {e}", file=sys.stderr)
        return 2


def entry() -> None:
    """The ``s2r`` command: :func:`main`, then exit ignoring SIGINT (the work is done: a Ctrl-C still held down must
    not turn the interpreter's exit into a traceback)."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    entry()

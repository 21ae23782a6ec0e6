"""``s2r`` commands. Robots: deployment, sim-versus-hardware parity, the mock servo bus, cameras, hardware configs.

Each command is a dataclass (its fields are the flags, their docstrings the help) and a ``run_*`` function."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from policies.cli.common import base_config, write_json
from policies.parity_config import ParityConfig
from real.cameras.frame import CameraError
from real.deploy_config import DeployConfig, EngineName
from robot.description import ConfigError


@dataclass(kw_only=True)
class Deploy(DeployConfig):
    """Run a policy bundle on a robot (or a mock robot) through the safety filter."""

    json: str | None = None
    """write the summary here"""
    quiet: bool = False
    """no live status line"""


def run_deploy(args: Deploy) -> int:
    import torch

    from policies.deploy import deploy

    torch.set_num_threads(1)  # inference on one core: steadier act latency than threads competing with the loop

    try:
        summary = deploy(
            base_config(args, DeployConfig, status=not args.quiet),
            restore_signals=False,  # this process only prints the summary and exits: later signals are ignored
        )
    except ValueError as e:  # the setup refused (bundle, robot, --adapt) before anything started: one line
        print(f"s2r: {e}", file=sys.stderr)
        return 2
    result = summary.to_dict()
    if args.json:
        write_json(args.json, result)
    loop = summary.loop
    rate = f"{1e3 / loop['cycle_ms_p50']:.1f} Hz" if loop.get("cycle_ms_p50") else "-"
    print(f"{summary.robot}: {len(summary.episodes)} episode(s), ended: {summary.ended} {summary.message}".rstrip())
    if summary.success_rate is not None:
        by = "the mock reality" if summary.engine is not None else "the operator, or odometry on a route"
        print(f"  success rate {summary.success_rate:.0%} (judged by {by})")
    for e in summary.episodes:
        if e.goals is not None:
            print(
                f"  episode {e.episode + 1}: {e.goals_reached}/{len(e.goals)} goals in {e.time_s} s, "
                f"{e.distance_m} m by odometry" + (f", labelled {e.label}" if e.label else "")
            )
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
    lidar = summary.lidar
    if lidar.get("scans"):
        print(
            f"  lidar {lidar['name']}: {lidar['scans']} scans, {lidar['checksum_errors']} checksum errors, "
            f"scan age p50 {lidar.get('scan_age_ms_50')} ms, max {lidar.get('scan_age_ms_100')} ms"
        )
    for note in summary.notes:
        print(f"  note: {note}")
    if summary.log:
        print(f"  log {summary.log}")
    torque_confirmed = summary.torque_off is None or not summary.torque_off["unreachable"]
    return 0 if summary.ended in ("completed", "stopped") and torque_confirmed else 1


@dataclass(kw_only=True)
class Parity(ParityConfig):
    """The same seeded episodes in simulation and on a mock robot: success, agreement, observations."""

    json: str | None = None
    """write the report here"""
    quiet: bool = False
    """no progress bar or status line"""


def run_parity(args: Parity) -> int:
    import torch

    from policies.parity import ParityError, parity
    from policies.parity_report import format_report

    torch.set_num_threads(1)  # one observation at a time, and the mock robot's loop shares the cores
    try:
        report = parity(base_config(args, ParityConfig, progress=not args.quiet))
    except ParityError as e:  # refused before anything ran: one line
        print(f"s2r: {e}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        write_json(args.json, report)
    return 0 if report["hardware"]["ended"] == "completed" else 1


@dataclass(kw_only=True)
class Gap:
    """Drive a mock robot's world on PyBullet and on MuJoCo with the same servo commands; report the differences."""

    robot: str
    """mock hardware config (path or name, e.g. mock/openmanipulator_x)"""
    engine: Literal["mujoco"] = "mujoco"
    """the engine compared with PyBullet"""
    seed: int = 0
    """the scene of both worlds (object pose, room)"""
    plot: str | None = "gap.png"
    """write the traces and the two camera frames here (PNG)"""
    json: str | None = None
    """write the report here"""


def run_gap(args: Gap) -> int:
    from mock.gap import format_gap, gap_report
    from robot.config_file import load_hardware_config

    config = load_hardware_config(args.robot)
    if config.mock is None:
        raise ConfigError(f"{args.robot}: not a mock robot (no mock section): s2r gap compares mock realities")
    report = gap_report(config, args.seed, args.plot)
    print(format_gap(report))
    if args.json:
        write_json(args.json, report)
    return 0


@dataclass(kw_only=True)
class Teleop:
    """Teleoperate a robot from a leader arm moved by hand (its servos read, torque off), through the safety filter,
    logged like a deployment."""

    robot: str
    """the follower's hardware config (path or name: so101, or mock/so101)"""
    leader: str | None = None
    """the leader arm's hardware config (path or name: so101_leader, or mock/so101_leader, a simulated hand on it)"""
    keyboard: bool = False
    """jog the arm from the keyboard instead of a leader arm (w/s x, a/d y, r/f z, c/o gripper, q quit)"""
    seconds: float = 30.0
    """how long (Ctrl-C ends it sooner; the follower parks and its torque goes off either way)"""
    log: str | None = None
    """MCAP log to write (export it with s2r log export, train on it with s2r train --demos)"""
    reality: str | None = None
    """a mock follower's reality (domain YAML or name)"""
    seed: int = 0
    """a mock follower's scene seed"""
    json: str | None = None
    """write the summary here"""


def run_teleop(args: Teleop) -> int:
    from contextlib import ExitStack, nullcontext

    from real.deploy_log import DeployLog
    from real.robot import Robot
    from real.teleop import LeaderArm, teleoperate
    from robot.config_file import load_hardware_config

    if (args.leader is None) == (not args.keyboard):
        raise ValueError("give --leader CONFIG or --keyboard (one of them)")
    config = load_hardware_config(args.robot)
    leader_cfg = load_hardware_config(args.leader) if args.leader else config
    if args.keyboard and config.arm is None:
        raise ValueError(f"{config.name}: keyboard teleoperation jogs an arm's tool; this robot has no arm")
    privileged = None
    robot = Robot(config)
    with ExitStack() as stack:
        if config.mock is not None:
            from mock.hardware import MockHardware

            hardware = MockHardware(config, args.reality, args.seed)
            stack.callback(hardware.close)
            privileged = hardware.privileged
        stop = lambda: False  # noqa: E731 - Ctrl-C or --seconds end a leader arm's run
        if args.keyboard:
            from real.keyboard_leader import KeyboardLeader

            stack.enter_context(_cbreak(sys.stdin.fileno()))
            leader = KeyboardLeader(config, sys.stdin.fileno(), robot.read_patiently)
            stop = lambda: leader.quit  # noqa: E731
        else:
            if leader_cfg.name.endswith("_mock"):
                stack.enter_context(_mock_leader(leader_cfg, config))
            leader = stack.enter_context(LeaderArm(leader_cfg))
        log = None
        if args.log:
            leader_name = "keyboard" if args.keyboard else leader_cfg.name
            metadata = {"robot": config.name, "task": "teleop", "leader": leader_name}
            log = DeployLog(args.log, config, metadata, guard=nullcontext)
        keys = "the keyboard (w/s a/d r/f jog the tool, c/o the gripper, q quits)"
        source = keys if args.keyboard else leader_cfg.name
        print(f"teleoperating {config.name} from {source} for {args.seconds:g} s; Ctrl-C to stop")
        summary = teleoperate(robot, leader, args.seconds, log, stop=stop, privileged=privileged)
    print(
        f"{summary.ended}: {summary.cycles} cycles in {summary.seconds} s, {summary.limited_cycles} limited by the "
        f"safety filter {summary.events or ''}, overruns {summary.overruns}; {summary.torque}"
        + (f"; log {summary.log}" if summary.log else "")
    )
    if args.json:
        write_json(args.json, summary.to_dict())
    return 0 if summary.ended == "completed" else 1


@contextmanager
def _cbreak(fd: int):
    """A terminal at ``fd`` in cbreak mode (keys arrive as pressed, unechoed) for the block, restored after; a pipe
    is left as it is."""
    import termios
    import tty

    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _mock_leader(leader_cfg, follower_cfg):
    """The mock leader's servo emulator on its port, moved by a simulated hand around the follower task's start
    pose (or its rest pose)."""
    import numpy as np

    from mock.hand import HandPlant
    from mock.servo_emulators import emulator_for_config
    from real.serial_emulator import EmulatorThread
    from robot.tasks import task_class

    start = None
    if follower_cfg.mock is not None:
        start = task_class(follower_cfg.mock.task)(follower_cfg).start_pose()
    if start is None:
        start = np.array([follower_cfg.arm.rest[j] for j in follower_cfg.joint_names])
    emulator = emulator_for_config(leader_cfg, HandPlant(leader_cfg, start))
    return EmulatorThread(emulator, leader_cfg.bus.port)


@dataclass(kw_only=True)
class MockBus:
    """Emulate a robot's Dynamixel servos on a pseudo-terminal until stopped."""

    config: str
    """hardware config (path or name in hardware_configs/)"""
    link: str
    """path of the symlink to the pseudo-terminal, e.g. /tmp/ttyDXL"""
    physics: Literal["pybullet", "simple"] = "pybullet"
    """pybullet: the simulated robot moves (default); simple: first-order servos"""
    engine: EngineName | None = None
    """the physics engine of the served robot (mujoco: the mock robot's task world in MuJoCo; overrides --physics)"""


def run_mock_bus(args: MockBus) -> int:
    import signal

    from mock.plants import make_plant
    from mock.servo_emulators import emulator_for_config
    from real.serial_emulator import open_pty
    from robot.config_file import load_hardware_config

    config = load_hardware_config(args.config)
    master, slave, name = open_pty(args.link)
    emulator = emulator_for_config(config, make_plant(config, args.engine or args.physics))
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


@dataclass(kw_only=True)
class CamerasList:
    """Print connected RealSense devices (name, serial, firmware, USB) and OpenCV indices."""


def run_cameras_list(args: CamerasList) -> int:
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


@dataclass(kw_only=True)
class CheckConfig:
    """Validate hardware config files and print what they describe."""

    configs: Annotated[list[str], tyro.conf.Positional]
    """YAML paths or names in hardware_configs/"""


def run_check_config(args: CheckConfig) -> int:
    from robot.config_file import load_hardware_config, urdf_problems
    from robot.description import URDF_DIR

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

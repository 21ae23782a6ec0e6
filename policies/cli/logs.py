"""``s2r`` commands. Hardware logs: replay, summaries, exports, viewing.

Each command is a dataclass (its fields are the flags, their docstrings the help) and a ``run_*`` function."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from policies.cli.common import write_json


@dataclass(kw_only=True)
class Replay:
    """Replay a hardware log: recompute a policy's actions, or drive the sim with it."""

    file: Annotated[str, tyro.conf.Positional]
    """an .mcap log written by s2r deploy, or a LeRobotDataset folder (with --robot)"""
    episode: int = 0
    """a dataset's episode to drive the robot with"""
    check_policy: str | None = None
    """bundle whose actions are recomputed from the logged observations"""
    atol: float = 1e-05
    """largest action difference that still matches"""
    sim: bool = False
    """feed the logged commands to the simulated robot: drift"""
    robot: str | None = None
    """hardware config for --sim, or to drive from a dataset"""
    plot: str | None = None
    """--sim: PNG of logged vs simulated joints"""
    json: str | None = None
    """write the results here"""


def run_replay(args: Replay) -> int:
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
            write_json(args.json, result)
        return 0 if result["torque_off"] else 1
    if not args.check_policy and not args.sim:
        raise SystemExit("s2r replay: give --check-policy BUNDLE and/or --sim")
    with _log_damage_as_one_line():
        return _replay(args)


@dataclass(kw_only=True)
class LogInfo:
    """Topics, message counts, rates, duration and metadata of a log (a cut one: up to where it stops)."""

    file: Annotated[str, tyro.conf.Positional]
    """an .mcap log"""
    json: str | None = None
    """also write the summary here"""


def run_log_info(args: LogInfo) -> int:
    from real.log_reader import log_info

    info = log_info(args.file)
    if info["damaged"]:  # a cut (killed writer) or damaged log: summarized up to where it stops
        print(f"s2r: warning: {args.file}: {info['damaged']}", file=sys.stderr)
    if args.json:
        write_json(args.json, info)
    print(f"{info['path']}: {info['bytes'] / 1e6:.2f} MB, {info['duration_s']:.2f} s, {info['messages']} messages")
    for key, value in info["metadata"].items():
        print(f"  {key}: {value}")
    for topic, t in info["topics"].items():
        rate = f"{t['rate_hz']:.1f} Hz" if t["rate_hz"] else "-"
        print(f"  {topic:<28} {t['messages']:>7} msgs  {t['encoding']:<26} {rate}")
    return 0


@dataclass(kw_only=True)
class LogExport:
    """JSON topics to one CSV each, image topics to one MP4 each, or logs to a LeRobotDataset."""

    file: Annotated[list[str], tyro.conf.Positional]
    """an .mcap log (--to lerobot: one or more, of one robot)"""
    to: Literal["csv", "mp4", "lerobot"]
    out: str | None = None
    """output folder"""
    task: str | None = None
    """--to lerobot: the task's description"""


def run_log_export(args: LogExport) -> int:
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


@dataclass(kw_only=True)
class LogView:
    """How to open a log in Foxglove, and the layout for its robot."""

    file: Annotated[str, tyro.conf.Positional]
    """an .mcap log"""


def run_log_view(args: LogView) -> int:
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


def _replay(args: Any) -> int:
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
        write_json(args.json, result)
    return status


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

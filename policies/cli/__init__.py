"""The ``s2r`` command line. Each command is a dataclass in one of this package's modules (one per command group:
:mod:`~policies.cli.simulation`, :mod:`~policies.cli.training`, :mod:`~policies.cli.robot`, :mod:`~policies.cli.logs`,
:mod:`~policies.cli.calibration`): its fields are the command's flags, and `tyro` builds the parser and the help
from them. Only the chosen command's module is imported, so ``s2r --help`` stays fast.
"""

from __future__ import annotations

import importlib
import signal
import sys

#: Command (words) -> (module in this package, the command's dataclass, its run function, one-line help).
COMMANDS: dict[tuple[str, ...], tuple[str, str, str, str]] = {
    ("demo",): (
        "simulation",
        "Demo",
        "run_demo",
        "experts in sim, then a policy deployed on the mock arm in an unseen reality, logged and replayed",
    ),
    ("expert",): (
        "simulation",
        "Expert",
        "run_expert",
        "run a task's scripted expert (privileged state) and report its success rate",
    ),
    ("eval",): (
        "simulation",
        "Eval",
        "run_eval",
        "success rate of policy bundles (or 'expert'), or a robustness sweep with a plot",
    ),
    ("randomization", "preview"): (
        "simulation",
        "RandomizationPreview",
        "run_randomization_preview",
        "render randomized camera views, color and depth side by side, to a PNG",
    ),
    ("train",): (
        "training",
        "Train",
        "run_train",
        "train a state policy (PPO or SAC, warm-started from the expert) into a bundle",
    ),
    ("distill",): (
        "training",
        "Distill",
        "run_distill",
        "train a camera (rgbd) student to imitate a state teacher with DAgger",
    ),
    ("adapt",): (
        "training",
        "Adapt",
        "run_adapt",
        "adapt a camera student to a target domain from unlabelled frames of its hardware logs (DANN, matching)",
    ),
    ("train-osi",): (
        "training",
        "TrainOsi",
        "run_train_osi",
        "train an online system-identification estimator for a universal policy",
    ),
    ("deploy",): (
        "robot",
        "Deploy",
        "run_deploy",
        "run a policy bundle on a robot (or a mock robot) through the safety filter",
    ),
    ("parity",): (
        "robot",
        "Parity",
        "run_parity",
        "the same seeded episodes in simulation and on a mock robot: success, agreement, observations",
    ),
    ("gap",): (
        "robot",
        "Gap",
        "run_gap",
        "drive a mock robot's world on PyBullet and MuJoCo with the same commands: tracking, grasp, image gap",
    ),
    ("teleop",): (
        "robot",
        "Teleop",
        "run_teleop",
        "teleoperate an arm from a leader arm moved by hand or from the keyboard, through the safety filter, logged",
    ),
    ("mock-bus",): (
        "robot",
        "MockBus",
        "run_mock_bus",
        "emulate a robot's Dynamixel servos on a pseudo-terminal until stopped",
    ),
    ("cameras", "list"): (
        "robot",
        "CamerasList",
        "run_cameras_list",
        "print connected RealSense devices (name, serial, firmware, USB) and OpenCV indices",
    ),
    ("check-config",): (
        "robot",
        "CheckConfig",
        "run_check_config",
        "validate hardware config files and print what they describe",
    ),
    ("replay",): (
        "logs",
        "Replay",
        "run_replay",
        "replay a hardware log: recompute a policy's actions, or drive the sim with it",
    ),
    ("log", "info"): (
        "logs",
        "LogInfo",
        "run_log_info",
        "topics, message counts, rates, duration and metadata of a log (a cut one: up to where it stops)",
    ),
    ("log", "export"): (
        "logs",
        "LogExport",
        "run_log_export",
        "JSON topics to one CSV each, image topics to one MP4 each, or logs to a LeRobotDataset",
    ),
    ("log", "view"): ("logs", "LogView", "run_log_view", "how to open a log in Foxglove, and the layout for its robot"),
    ("calibrate", "intrinsics"): (
        "calibration",
        "CalibrateIntrinsics",
        "run_calibrate_intrinsics",
        "camera matrix and distortion from photos of a chessboard or ChArUco",
    ),
    ("calibrate", "capture"): (
        "calibration",
        "CalibrateCapture",
        "run_calibrate_capture",
        "record hand-eye samples: camera images and joint readings, torque off",
    ),
    ("calibrate", "hand-eye"): (
        "calibration",
        "CalibrateHandEye",
        "run_calibrate_hand_eye",
        "a camera's mount from robot poses and board views (eye-in-hand or eye-to-hand)",
    ),
    ("calibrate", "motors"): (
        "calibration",
        "CalibrateMotors",
        "run_calibrate_motors",
        "home the servos: offsets, directions and ranges of motion, saved into the robot's config",
    ),
    ("calibrate", "lerobot"): (
        "calibration",
        "CalibrateLerobot",
        "run_calibrate_lerobot",
        "import a LeRobot calibration file (so101_follower) into the robot's config: homing offsets, zeros, ranges",
    ),
    ("calibrate", "bench"): (
        "bench",
        "CalibrateBench",
        "run_calibrate_bench",
        "record servo test-bench logs for s2r sysid: one servo swinging a pendulum, torque on and off",
    ),
    ("sysid",): (
        "calibration",
        "Sysid",
        "run_sysid",
        "fit servo models to logs (.json servo test bench, or a robot's .mcap) and score them on other logs",
    ),
}

#: Commands that group others, and their one-line help.
GROUPS = {
    "randomization": "inspect domain randomization (preview: a contact sheet of views)",
    "cameras": "camera tools (list: connected RealSense devices and OpenCV indices)",
    "calibrate": "calibration: camera intrinsics, hand-eye, servo homing (motors), servo test bench logs (bench)",
    "log": "hardware logs (MCAP): info summarizes one, export writes CSV or MP4, view opens it",
}

DESCRIPTION = "Sim-to-real pipeline for a tabletop servo arm and a differential-drive base."


def _usage(prefix: tuple[str, ...] = ()) -> str:
    """The command list (of a group, with ``prefix``) as ``s2r --help`` prints it."""
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for words, (_, _, _, text) in COMMANDS.items():
        if words[: len(prefix)] != prefix:
            continue
        word = words[len(prefix)]
        if len(words) > len(prefix) + 1:  # a group: listed once, with its own help
            if word not in seen:
                seen.add(word)
                rows.append((word, GROUPS[word]))
        else:
            rows.append((word, text))
    name = " ".join(("s2r", *prefix))
    head = f"usage: {name} COMMAND [-h] [OPTIONS]\n\n" + (DESCRIPTION + "\n\n" if not prefix else "")
    width = max(len(w) for w, _ in rows) + 2
    return head + "commands:\n" + "\n".join(f"  {w.ljust(width)}{t}" for w, t in rows) + "\n"


def _resolve(argv: list[str]) -> tuple[tuple[str, ...], list[str]] | None:
    """The command named at the start of ``argv`` and the rest of the arguments; None when none is named."""
    for n in (2, 1):
        if tuple(argv[:n]) in COMMANDS:
            return tuple(argv[:n]), argv[n:]
    return None


def parse(argv: list[str]) -> tuple[tuple[str, ...], object]:
    """The command and its filled dataclass; SystemExit (2 for a usage error, 0 after --help) as argparse does."""
    found = _resolve(argv)
    if found is None:
        prefix = tuple(argv[:1]) if argv[:1] and argv[0] in GROUPS else ()
        asked = [a for a in argv[len(prefix) :] if a not in ("-h", "--help")]
        stream = sys.stdout if not asked and argv else sys.stderr
        stream.write(_usage(prefix))
        if asked:
            stream.write(f"s2r: unknown command {' '.join(argv)!r}\n")
        raise SystemExit(0 if stream is sys.stdout else 2)
    words, rest = found
    module, cls, _, text = COMMANDS[words]
    import tyro

    args_type = getattr(importlib.import_module(f"policies.cli.{module}"), cls)
    config = (tyro.conf.FlagCreatePairsOff,)
    args = tyro.cli(args_type, args=rest, prog=" ".join(("s2r", *words)), description=text, config=config)
    return words, args


def main(argv: list[str] | None = None) -> int:
    """Run the command ``argv`` names (default: the process's arguments); the exit status."""
    from policies.cli.errors import USER_ERRORS

    words, args = parse(sys.argv[1:] if argv is None else list(argv))
    if getattr(args, "episodes", 1) < 1 or getattr(args, "n", 1) < 1:
        print("s2r: --episodes and --n must be at least 1", file=sys.stderr)
        return 2
    module, _, run, _ = COMMANDS[words]
    try:
        return getattr(importlib.import_module(f"policies.cli.{module}"), run)(args)
    except KeyboardInterrupt:  # Ctrl-C outside a deployment's own handling (imports, loading, printing)
        print("s2r: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        print(f"s2r: {e}", file=sys.stderr)
        return 2


def entry() -> None:
    """The ``s2r`` command: :func:`main`, then exit ignoring SIGINT (the work is done: a Ctrl-C still held down must
    not turn the interpreter's exit into a traceback, nor one that lands after a command put the default handler
    back and before main returned)."""
    try:
        code = main()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("s2r: interrupted", file=sys.stderr)
        code = 130
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)

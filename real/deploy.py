"""``s2r deploy``: a policy bundle drives a robot at a fixed rate (read, observe, act, filter, write, log).

Each cycle reads the joints, assembles the observation with the same task code the simulation uses
(:mod:`robot.tasks`), asks the policy for an action, turns it into joint targets (task code again), passes them
through the safety filter and sends what survives; everything is written to the hardware log (MCAP) on host
monotonic timestamps. A cycle that starts late is measured; the safety filter holds the last target when it is
later than the watchdog allows and stops the run after repeated overruns.

Mock robots (configs with a ``mock`` section, ``hardware_configs/mock/``) start their reality first: a PyBullet
world of the task in the domain given by ``reality`` (a domain file), served to the real driver code by the servo
emulator on the config's pseudo-terminal and to librealsense by a software device. There the reality also
provides what a real robot does not have (the privileged state a state policy takes) and judges each episode.

SIGINT and SIGTERM end the run through the same path as any error: the robot parks and turns torque off, the log is
closed, and the summary says how the run ended. SIGUSR1, or space or Esc pressed in the terminal, is the software
stop: the same ending. Only the first signal stops the run; the robot holds later ones while it parks. The summary
and the log say what was read back from the servos: whether the arm reached its rest pose, and which motors
confirmed torque off (a motor that could not be reached is named, with what to do).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import termios
import threading
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any

import numpy as np

from real.cameras.frame import CameraError, FrameTimeout
from real.dynamixel.bus import BusTimeout, CorruptReply, DynamixelError
from real.frames import RobotFrames, camera_calibration, camera_frame, frame_transforms
from real.hardware_log import IMAGE_KEYS, HardwareLog
from real.robot import Robot, TaskRobot
from real.safety import SafetyEvent, SafetyStop
from robot.config_file import load_hardware_config
from robot.description import HardwareConfig, urdf_path


class Stopped(Exception):
    """SIGINT, SIGTERM or the software stop (SIGUSR1, a key) arrived: end the run (park, torque off, close the log)."""


#: How long the arm may take to reach the task's start pose after torque on (s).
START_POSE_TIMEOUT_S = 5.0
#: How long the first camera frame may take (a mock robot's renderer starts in seconds).
FIRST_FRAME_TIMEOUT_S = 30.0

#: Frame age statistics in the summary: name, percentile.
AGE_STATS = (("p50", 50), ("p90", 90), ("max", 100))

#: Signals that stop a deployment, and how the summary names them.
STOP_SIGNALS = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM", signal.SIGUSR1: "software stop (SIGUSR1)"}
#: Keys that trigger the software stop when deploy runs in a terminal: space and Esc.
STOP_KEYS = (b" ", b"\x1b")


class StopSignals:
    """Installs the stop handlers. The first stop signal raises :class:`Stopped` where the main thread is, unless
    it is inside :meth:`holding` (a log write must not be cut mid-record: it is raised as the block ends) or the run
    is already ``closing``; later signals are counted and ignored (the run is already ending). :meth:`restore` puts
    the previous handlers back."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.closing = False  # the run is over: record signals, never raise
        self._raised = False
        self._holding = 0
        self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(STOP_SIGNALS[signal.Signals(signum)])
        if not self._holding:
            self._raise_pending()

    def _raise_pending(self) -> None:
        if self.received and not self._raised and not self.closing:
            self._raised = True
            raise Stopped(self.received[0])

    @contextmanager
    def holding(self) -> Iterator[None]:
        """A block that a stop signal must not interrupt; a signal that arrived inside is raised as it ends."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if not self._holding:
            self._raise_pending()

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


class KeyStop:
    """Watches a terminal (file descriptor ``fd``, in cbreak mode while it runs) for a stop key and sends this
    process SIGUSR1 when one is pressed: the software stop goes through the same path as every other signal."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="stop-keys")
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            try:
                key = os.read(self.fd, 1)
            except OSError:
                return
            if key in STOP_KEYS:
                os.kill(os.getpid(), signal.SIGUSR1)
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        try:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        except termios.error:
            pass  # the terminal is gone


@dataclass
class DeployConfig:
    robot: str  # hardware config (path or name, e.g. mock/openmanipulator_x)
    policy: str  # policy bundle (or run folder)
    episodes: int = 1
    max_steps: int | None = None  # per episode (default: the task env's episode length)
    log: str | None = None  # .mcap path
    reality: str | None = None  # domain file of a mock robot's reality (default: the nominal domain)
    seed: int = 3_000_000  # first episode seed of a mock reality (object pose, goal)
    adapt: bool = False  # a bundle with an estimator acts on its estimate (else: refused)
    log_cameras: bool = False  # also log color and depth when the robot has cameras the policy does not use
    bus_faults: dict[str, float] | None = None  # mock robots: Faults fields for every servo, e.g. drop_probability
    # a camera policy does not act on a frame older than this (it holds); default: the oldest frame it was trained
    # on (the bundle's camera.frame_age range), at least one control period
    max_frame_age_s: float | None = None
    max_stall_s: float = 2.0  # and the run stops when no frame has come for this long
    camera_stall: tuple[float, float] | None = None  # mock robots: silence the camera at T s for D s (a test)
    status: bool = True  # the live status line on stderr
    stop_keys_fd: int | None = None  # terminal watched for the stop keys (default: stdin when it is a terminal)


@dataclass
class EpisodeSummary:
    episode: int
    seed: int | None
    steps: int
    success: bool | None  # judged by a mock reality; None on real hardware
    outcome: str  # success, failure, timeout or stopped


@dataclass
class DeploySummary:
    robot: str
    policy: str
    episodes: list[EpisodeSummary] = field(default_factory=list)
    ended: str = "completed"  # completed, stopped (signal), safety_stop, error
    message: str = ""
    success_rate: float | None = None
    loop: dict[str, Any] = field(default_factory=dict)
    safety_events: dict[str, int] = field(default_factory=dict)
    camera: dict[str, Any] = field(default_factory=dict)
    bus: dict[str, int] = field(default_factory=dict)  # transactions, retries, timeouts, corrupt replies
    skipped_cycles: int = 0  # cycles lost to a bus transaction that failed all its retries
    stalled_cycles: int = 0  # cycles a camera policy held because its camera had no fresh frame
    # read back from the servos at the end: motors whose Torque Enable read 0, and those that could not be reached
    # (id -> why; their torque may still be on); None when the run never opened the bus
    torque_off: dict[str, Any] | None = None
    parked: bool | None = None  # whether the last park reached the rest pose (None: never activated)
    notes: list[str] = field(default_factory=list)  # what the run could not do as asked, e.g. a host reality term
    log: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _episode_length(task: str) -> int:
    import inspect

    from sim.envs.grasp_env import GraspEnv
    from sim.envs.navigate_env import NavigateEnv

    env_cls = GraspEnv if task == "grasp" else NavigateEnv
    return int(inspect.signature(env_cls.__init__).parameters["max_episode_steps"].default)


class _Status:
    """The live status line: rate, overruns, act latency, OSI estimate."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.enabled and (force or now - self.last > 0.5):
            self.last = now
            sys.stderr.write("\r" + text[:150].ljust(150))
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def deploy(cfg: DeployConfig, hardware: Any | None = None, restore_signals: bool = True) -> DeploySummary:
    """Run the deployment; returns (and never raises for) how it went, unless the setup itself fails.
    ``hardware``: a mock robot's :class:`mock.hardware.MockHardware` already started by the caller (who closes it,
    and can look at its servo emulator afterwards); by default a mock config starts and closes its own.
    ``restore_signals``: False leaves the stop handlers installed, ignoring further stop signals (a command that
    only prints the summary and exits after this: a Ctrl-C still held down cannot interrupt the printing)."""
    import policies
    from policies.adaptive import AdaptivePolicy

    config = load_hardware_config(cfg.robot)
    policy = policies.load(cfg.policy, robot=config)
    if isinstance(policy, AdaptivePolicy):
        if not cfg.adapt:
            raise ValueError(f"{cfg.policy} has an online estimator: deploy it with --adapt")
        policy.set_mode("adapt")
    elif cfg.adapt:
        raise ValueError(f"--adapt needs a bundle with an online estimator (s2r train-osi), not {cfg.policy}")
    keys = policy.obs_spec.keys
    if "privileged" in keys and config.mock is None:
        raise ValueError(
            f"{cfg.policy} is a state policy: it takes the simulator's privileged state, which only a mock robot's "
            "reality provides. On real hardware deploy a camera (rgbd) policy."
        )
    if config.mock is not None and config.mock.task != policy.task:
        raise ValueError(f"{cfg.robot} is a mock {config.mock.task} robot; {cfg.policy} is a {policy.task} policy")
    max_steps = cfg.max_steps or _episode_length(policy.task)
    period = 1.0 / config.control.rate_hz
    summary = DeploySummary(robot=config.name, policy=str(cfg.policy), log=cfg.log)
    max_frame_age_s = cfg.max_frame_age_s
    if max_frame_age_s is None:
        max_frame_age_s = max(policy.trained_frame_age_s, period)
        if "rgb" in keys and policy.trained_frame_age_s < period:
            summary.notes.append(
                f"the policy trained on frames at most {policy.trained_frame_age_s * 1e3:.0f} ms old; "
                f"frames up to one control period ({period * 1e3:.0f} ms) are acted on"
            )
    if config.mock is not None and hardware is None:
        from mock.reality import check_reality_domain

        # a reality term the mock path cannot apply is refused here, before anything starts (RealityError)
        for name in check_reality_domain(config.mock.task, cfg.reality):
            summary.notes.append(f"reality term {name}: the control loop's own timing stands in for it")

    stop = StopSignals()
    key_stop = None
    keys_fd = cfg.stop_keys_fd if cfg.stop_keys_fd is not None else _stdin_terminal()
    if keys_fd is not None:
        key_stop = KeyStop(keys_fd)
    mock = camera = log = robot = None
    cycle_ms: list[float] = []
    act_ms: list[float] = []
    frame_age_ms: list[float] = []  # per acted-on frame: its capture (else host arrival) to the observation
    frames_stamped = False  # the camera stamps its frames in host time (Frame.capture_time_ns)
    late_ms: list[float] = []
    overruns = stalled_cycles = 0
    status = _Status(cfg.status)
    try:
        if hardware is not None:
            mock = hardware
        elif config.mock is not None:
            from mock.hardware import MockHardware

            mock = MockHardware(config, cfg.reality, cfg.seed)
        if mock is not None:
            for servo in mock.emulator.servos.values():
                for name, value in (cfg.bus_faults or {}).items():
                    if not hasattr(servo.faults, name):
                        raise ValueError(f"bus_faults: no emulator fault named {name!r}")
                    setattr(servo.faults, name, value)
                servo.faults.rng.seed(cfg.seed + servo.ident)
        uses_images = "rgb" in keys
        if config.cameras and (uses_images or (cfg.log_cameras and cfg.log)):
            cam_name = config.cameras[0].name
            camera = mock.camera(cam_name) if mock is not None else _live_camera(config, cam_name)
            camera.connect()  # its first frame is awaited with the arm held at its start pose (below)
        if cfg.log:
            with stop.holding():  # a stop signal never leaves a log half-opened or a record half-written
                log = HardwareLog(
                    cfg.log,
                    {
                        "robot": config.name,
                        "policy": str(cfg.policy),
                        "task": policy.task,
                        "joints": ",".join(config.joint_names),
                        "rate_hz": str(config.control.rate_hz),
                        "reality": str(cfg.reality) if mock is not None else "",
                        "command": " ".join(sys.argv),
                    },
                    guard=stop.holding,
                )
                frames = RobotFrames(config, urdf_path(config))
                log.write("/robot_description", {"data": urdf_path(config).read_text()})  # for viewers' URDF layers
        robot = Robot(config)
        with robot:
            image_size = None
            if uses_images:
                h, w = policy.obs_spec.shapes["rgb"][:2]
                image_size = (w, h)
            task = TaskRobot(
                robot,
                policy.task,
                privileged=mock.reality.privileged if "privileged" in keys else None,
                image_size=image_size,
                crop=(policy.meta.get("camera") or {}).get("crop"),  # the frame region the student was trained on
            )
            robot.configure()
            if log:
                log.write("/lifecycle", {"state": "inactive", **_torque_fields(robot)})
            for ep in range(cfg.episodes):
                seed = cfg.seed + ep if mock is not None else None
                if mock is not None and ep > 0:
                    mock.new_episode(seed)
                robot.activate()
                if log:
                    log.write("/lifecycle", {"state": "active", "torque": True, "episode": ep})
                start_pose = task.task.start_pose()  # the simulation's first pose (None: a base starts anywhere)
                if start_pose is not None and not robot.move_to(start_pose, START_POSE_TIMEOUT_S):
                    raise SafetyStop(f"the arm did not reach the task's start pose within {START_POSE_TIMEOUT_S} s")
                if camera is not None and ep == 0:
                    # the first frame (a mock's renderer takes seconds) with the arm held where the episode starts
                    _await_first_frame(camera, robot, FIRST_FRAME_TIMEOUT_S)
                    if cfg.camera_stall is not None and mock is not None:
                        mock.stall_camera(camera.name, *cfg.camera_stall)
                # navigate: the goal in the start frame (a mock's reality knows it; on hardware, ahead at 0 m)
                goal = mock.reality.privileged()[:2] if (mock is not None and policy.task == "navigate") else None
                task.start(goal)
                policy.reset()
                if log:
                    log.write("/episode", {"event": "start", "episode": ep, "seed": seed})
                outcome, steps, lost, stall_since = "timeout", 0, 0, None
                next_t = time.monotonic()
                prev_start = None
                for step in range(max_steps):
                    start = time.monotonic()
                    late = max(0.0, start - next_t)
                    if prev_start is not None:
                        cycle_ms.append((start - prev_start) * 1e3)
                    prev_start = start
                    late_ms.append(late * 1e3)
                    frame = None
                    if camera is not None:
                        try:
                            frame = camera.read_latest(max_age=max_frame_age_s)
                        except CameraError:
                            frame = None  # a stalled camera: counted by the camera, held below
                    age_ms = None if frame is None else (time.monotonic_ns() - frame.taken_ns) / 1e6
                    try:
                        obs = task.read(frame)
                    except (BusTimeout, CorruptReply) as e:
                        # a transaction that failed all its retries: skip the cycle (the servos hold their goal)
                        summary.skipped_cycles += 1
                        lost += 1
                        if log:
                            log.write("/safety", {"kind": "bus_fault", "joints": [], "detail": str(e)})
                        if lost > config.safety.max_overruns:
                            raise SafetyStop(f"bus: {lost} consecutive cycles without a reading ({e})") from e
                        next_t += period
                        time.sleep(max(0.0, next_t - time.monotonic()))
                        continue
                    lost = 0
                    joints = task.joints
                    robot_events = robot.take_events()  # a bus watchdog trip, recovered
                    stalled = uses_images and frame is None
                    if stalled:
                        # no fresh image: the policy cannot act; hold the joints and stop the wheels (through the
                        # filter, which limits the deceleration), and stop the run if the camera stays silent
                        stalled_cycles += 1
                        stall_s = time.monotonic() - (stall_since := stall_since or time.monotonic())
                        if stall_s > cfg.max_stall_s:
                            raise SafetyStop(
                                f"camera {camera.name}: no frame younger than {max_frame_age_s * 1e3:.0f} ms "
                                f"for {stall_s:.1f} s"
                            )
                        action = None
                        requested, sent, events = task.hold(late)
                    else:
                        stall_since = None
                        if age_ms is not None:
                            frame_age_ms.append(age_ms)
                            frames_stamped = frame.capture_time_ns is not None
                        t0 = time.monotonic()
                        action = policy.act(obs)
                        act_ms.append((time.monotonic() - t0) * 1e3)
                        requested, sent, events = task.write(action, late)
                    steps = step + 1
                    if log:
                        stamp = joints.stamp_ns
                        log.write(
                            "/joint_states",
                            {
                                "name": config.joint_names,
                                "position": joints.position,
                                "velocity": joints.velocity,
                                "effort": joints.effort,
                            },
                            stamp,
                        )
                        log.write_message("/tf", frame_transforms(frames.transforms(joints.position)), stamp)
                        if action is not None:
                            obs_logged = {k: v for k, v in obs.items() if k not in IMAGE_KEYS}
                            log.write("/policy/observation", obs_logged)
                            for key in IMAGE_KEYS:  # the reduced frames, exactly: a replay recomputes the actions
                                if key in obs:
                                    log.write_lossless(f"/policy/observation/{key}", obs[key])
                            log.write("/policy/action", {"action": action})
                        else:
                            log.write("/safety", {"kind": "camera_stall", "joints": [], "detail": "holding"})
                        log.write("/command", {"requested": requested, "sent": sent})
                        if isinstance(policy, AdaptivePolicy):
                            log.write("/osi/estimate", policy.estimate)
                        log.write(
                            "/loop",
                            {
                                "cycle": step,
                                "late_s": late,
                                "act_ms": act_ms[-1] if act_ms else None,
                                "frame_age_ms": age_ms,  # capture (else arrival) to the observation
                                "frame_number": None if frame is None else frame.frame_number,
                                "frame_captured_ns": None if frame is None else frame.capture_time_ns,
                                "frame_arrived_ns": None if frame is None else frame.host_time_ns,
                            },
                        )
                        if frame is not None:
                            optical = camera_frame(cam_name)
                            log.write_color("/camera/color", frame.color, frame.host_time_ns, optical)
                            if frame.depth is not None:
                                log.write_depth("/camera/depth", frame.depth, frame.host_time_ns, optical)
                            calibration = camera_calibration(camera.intrinsics, optical)
                            log.write_message("/camera/calibration", calibration, frame.host_time_ns)
                        if mock is not None:
                            truth = obs["privileged"] if "privileged" in obs else mock.reality.privileged()
                            log.write("/reality/privileged", {"vector": truth})
                    _record_events(robot_events + events, summary, log)
                    if mock is not None:
                        success, failed = mock.reality.outcome()
                        if success or failed:
                            outcome = "success" if success else "failure"
                            break
                    estimate = ""
                    if isinstance(policy, AdaptivePolicy):
                        estimate = " | " + " ".join(f"{k}={v:.3g}" for k, v in list(policy.estimate.items())[:4])
                    rate = 1e3 / np.mean(cycle_ms[-20:]) if cycle_ms else 0.0
                    status.show(
                        f"episode {ep + 1}/{cfg.episodes} step {steps} | {rate:.1f} Hz | overruns {overruns} | "
                        + (f"act {act_ms[-1]:.1f} ms" if action is not None else "holding: no fresh frame")
                        + estimate
                    )
                    next_t += period
                    delay = next_t - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        overruns += 1  # this cycle's work ran past the next cycle's start
                        if -delay > period:
                            next_t = time.monotonic()  # far behind: do not try to catch up with a burst
                success = outcome == "success" if mock is not None else None
                summary.episodes.append(EpisodeSummary(ep, seed, steps, success, outcome))
                if log:
                    log.write("/episode", {"event": "end", "episode": ep, "outcome": outcome, "steps": steps})
                robot.deactivate()
                _record_events(robot.take_events(), summary, log)  # a watchdog trip while parking
                if log:
                    log.write("/lifecycle", {"state": "inactive", "parked": robot.parked, **_torque_fields(robot)})
                if not robot.torque_report.confirmed:
                    raise SafetyStop("torque off could not be confirmed after the episode")
            summary.bus = dict(robot.bus.stats)
    except Stopped as e:
        summary.ended, summary.message = "stopped", f"{e} received"
    except SafetyStop as e:
        summary.ended, summary.message = "safety_stop", str(e)
    except (DynamixelError, CameraError) as e:  # a hardware fault, named by the driver: no traceback
        summary.ended, summary.message = "error", f"{type(e).__name__}: {e}"
    except Exception as e:  # anything else: the robot has parked (its context), the log is closed below
        import traceback

        traceback.print_exc(file=sys.stderr)
        summary.ended, summary.message = "error", f"{type(e).__name__}: {e}"
    finally:
        stop.closing = True  # from here on a signal is recorded, not raised: the run is ending anyway
        if key_stop is not None:
            key_stop.close()
        status.done()
        if camera is not None:
            summary.camera = {k: v for k, v in asdict(camera.stats).items() if not k.startswith("_")}
            summary.camera["max_frame_age_ms"] = round(max_frame_age_s * 1e3, 2)
            if frame_age_ms:  # how old the frames the policy acted on were (capture, else host arrival, to use)
                summary.camera.update(
                    {f"frame_age_ms_{name}": round(float(np.percentile(frame_age_ms, q)), 2) for name, q in AGE_STATS}
                )
                summary.camera["frame_age_from"] = "capture" if frames_stamped else "arrival"
            camera.disconnect()
        _torque_summary(summary, robot)
        if robot is not None:
            _record_events(robot.take_events(), summary, log if log is not None and not log.closed else None)
        if log is not None:
            if summary.ended != "completed":
                log.write("/safety", {"kind": "run_ended", "joints": [], "detail": summary.message})
            fields = _torque_fields(robot) if robot is not None else {"torque": None}
            log.write("/lifecycle", {"state": "finalized", "ended": summary.ended, **fields})
            log.close()
        if mock is not None and hardware is None:
            mock.close()
        if restore_signals:
            stop.restore()
    judged = [e.success for e in summary.episodes if e.success is not None]
    summary.success_rate = float(np.mean(judged)) if judged else None
    summary.loop = _loop_stats(cycle_ms, act_ms, late_ms, overruns, period)
    summary.stalled_cycles = stalled_cycles
    return summary


def _await_first_frame(camera: Any, robot: Robot, timeout_s: float) -> None:
    """Wait for the camera's first frame while the robot holds its pose (each period a read, which feeds the
    servos' bus watchdog, and a hold through the safety filter); :class:`CameraError` after ``timeout_s``."""
    period = 1.0 / robot.config.control.rate_hz
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            camera.read(timeout=period)
            return
        except FrameTimeout:
            if time.monotonic() > deadline:
                raise CameraError(f"camera {camera.name}: no frame within {timeout_s:.0f} s") from None
        robot.read_patiently()
        robot.write(robot.safety.idle())


def _record_events(events: list[SafetyEvent], summary: DeploySummary, log: HardwareLog | None) -> None:
    """Safety events into the summary's counts and the log's /safety channel."""
    for e in events:
        summary.safety_events[e.kind] = summary.safety_events.get(e.kind, 0) + 1
        if log is not None:
            log.write("/safety", {"kind": e.kind, "joints": e.joints, "detail": e.detail}, e.stamp_ns)


def _stdin_terminal() -> int | None:
    """stdin's descriptor when it is a terminal in the foreground (where the stop keys can be read), else None."""
    try:
        fd = sys.stdin.fileno()
        return fd if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp() else None
    except (AttributeError, OSError, ValueError):
        return None


def _torque_fields(robot: Robot) -> dict[str, Any]:
    """The torque state read back from the servos, for a /lifecycle message: ``torque`` is False only when every
    motor confirmed torque off, None (unknown) when one could not be reached."""
    report = robot.torque_report
    if report is None:
        return {"torque": None}
    return {
        "torque": False if report.confirmed else None,
        "torque_off": report.off,
        "unreachable": report.unreachable_by_name(),
    }


def _torque_summary(summary: DeploySummary, robot: Robot | None) -> None:
    """What the servos said at the end, into the summary and its message: parked or not, torque off read back."""
    report = robot.torque_report if robot is not None else None
    if report is None:
        # the bus never opened (or no motor ever answered): this run enabled no torque
        summary.message = f"{summary.message}; no torque was enabled".lstrip("; ")
        return
    summary.torque_off = {"off": report.off, "unreachable": report.unreachable_by_name()}
    summary.parked = robot.parked
    facts = []
    if robot.parked is not None and summary.ended != "completed":
        facts.append("parked" if robot.parked else "not parked (the rest pose was not reached)")
    if summary.ended != "completed" or not report.confirmed:
        facts.append(report.describe(robot.config))
    if facts:
        summary.message = ": ".join(p for p in (summary.message, ", ".join(facts)) if p)


def _live_camera(config: HardwareConfig, name: str) -> Any:
    from real.cameras.realsense import RealSenseCamera

    return RealSenseCamera(config.camera(name))


def _loop_stats(cycle_ms: list[float], act_ms: list[float], late_ms: list[float], overruns: int, period: float):
    def pct(x: list[float], q: float) -> float | None:
        return round(float(np.percentile(x, q)), 2) if x else None

    return {
        "target_period_ms": round(period * 1e3, 2),
        "cycles": len(late_ms),
        "cycle_ms_p50": pct(cycle_ms, 50),
        "cycle_ms_p99": pct(cycle_ms, 99),
        "late_ms_p99": pct(late_ms, 99),
        "act_ms_p50": pct(act_ms, 50),
        "act_ms_p99": pct(act_ms, 99),
        "overruns": overruns,
    }

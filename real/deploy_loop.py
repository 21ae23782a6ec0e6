"""The deployment loop: a policy drives a robot at a fixed rate (read, observe, act, filter, write, log).

Each cycle reads the joints, assembles the observation with the same task code the simulation uses
(:mod:`robot.tasks`), asks the policy for an action, turns it into joint targets (task code again), passes them
through the safety filter and sends what survives; everything is written to the hardware log
(:mod:`real.deploy_log`). A cycle that starts late is measured; the safety filter holds the last target when it is
later than the watchdog allows and stops the run after repeated overruns.

The policy and, for a mock robot, the mock hardware are given by the caller (``s2r deploy``:
:func:`policies.deploy.deploy`); this module imports neither. A mock robot's world also provides what a real robot
does not have (the privileged state a state policy takes, the goal) and judges each episode.

Stop signals end the run through the same path as any error (:mod:`real.stop_signals`): the robot parks and turns
torque off, the log is closed, and the summary says how the run ended and what was read back from the servos.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from real.cameras.frame import CameraError, Frame
from real.deploy_config import DeployConfig, DeploySummary, EpisodeSummary
from real.deploy_goals import Route
from real.deploy_log import DeployLog, torque_fields
from real.deploy_sensors import ScanSource, await_first_frame, live_camera, policy_view
from real.dynamixel.bus import BusTimeout, CorruptReply, DynamixelError
from real.lidar.reader import LidarError
from real.loop_stats import LoopStats, StatusLine
from real.operator import ConsoleOperator
from real.robot import Robot, TaskRobot
from real.safety import SafetyEvent, SafetyStop
from real.stop_signals import KeyStop, Stopped, StopSignals, stdin_terminal
from robot.description import HardwareConfig
from robot.spec import ObsSpec
from robot.tasks import task_class

#: How long the arm may take to reach the task's start pose after torque on (s).
START_POSE_TIMEOUT_S = 5.0
#: How long the first camera frame may take (a mock robot's renderer starts in seconds).
FIRST_FRAME_TIMEOUT_S = 30.0
#: Frame age statistics in the summary: name, percentile.
AGE_STATS = (("p50", 50), ("p90", 90), ("max", 100))


class Policy(Protocol):
    """What the loop needs of a policy (a loaded bundle, :class:`policies.bundle.BundlePolicy`). A policy with an
    online estimator also has ``estimate`` (name -> value), which is logged and shown."""

    task: str
    obs_spec: ObsSpec
    meta: dict[str, Any]

    def act(self, observation: dict[str, Any]) -> np.ndarray: ...

    def reset(self) -> None: ...


class MockWorld(Protocol):
    """What the loop needs of a mock robot's hardware (:class:`mock.hardware.MockHardware`): its cameras, its
    reality's episodes, its true state and its judgement."""

    def camera(
        self, name: str, image_size: tuple[int, int] | None = None, crop: tuple[int, int, int, int] | None = None
    ) -> Any: ...

    def stall_camera(self, name: str, after_s: float, for_s: float) -> None: ...

    def new_episode(self, seed: int) -> None: ...

    def restore_scene(self) -> None: ...

    def privileged(self) -> np.ndarray: ...

    def goal(self) -> np.ndarray | None: ...

    def outcome(self) -> tuple[bool, bool]: ...

    def set_goal(self, index: int) -> None: ...

    def lidar(self, name: str) -> Any: ...

    def stall_lidar(self, name: str, after_s: float, for_s: float) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Episode:
    """One episode's progress."""

    index: int
    seed: int | None
    outcome: str = "timeout"
    steps: int = 0
    lost: int = 0  # consecutive cycles without a reading
    stall_since: float | None = None  # when the camera stopped giving fresh frames
    next_t: float = 0.0  # when the next cycle is due (monotonic s)
    prev_start: float | None = None
    started: float = 0.0  # monotonic s of the first cycle
    route: Route | None = None  # a navigation route's goals


class Deployment:
    """One run of ``policy`` on the robot in ``config``, as ``cfg`` asks. ``summary`` starts with the caller's notes;
    ``max_frame_age_s``: the oldest camera frame the policy acts on. ``start_mock``: a mock robot's hardware,
    started inside the run (a stop signal while it starts ends the run cleanly); ``close_mock``: whether the run
    closes it; ``goals``: a navigation route (m, start frame) each episode visits in order. :meth:`run` returns how it
    went and never raises for a fault of the robot."""

    def __init__(
        self,
        cfg: DeployConfig,
        config: HardwareConfig,
        policy: Policy,
        summary: DeploySummary,
        max_frame_age_s: float,
        start_mock: Callable[[], MockWorld] | None = None,
        close_mock: bool = True,
        goals: list[list[float]] | None = None,
    ) -> None:
        self.cfg, self.config, self.policy, self.summary = cfg, config, policy, summary
        self.max_frame_age_s = max_frame_age_s
        self.start_mock, self.close_mock = start_mock, close_mock
        self.keys = policy.obs_spec.keys
        self.uses_images = "rgb" in self.keys
        self.goals = goals
        self.max_steps = cfg.max_steps or task_class(policy.task).episode_steps * len(goals or [None])
        self.stats = LoopStats(1.0 / config.control.rate_hz)
        self.status = StatusLine(cfg.status)
        self.stop: StopSignals | None = None
        self.mock: MockWorld | None = None
        self.camera: Any = None
        self.scan: ScanSource | None = None
        self.operator: ConsoleOperator | None = None
        self.log: DeployLog | None = None
        self.robot: Robot | None = None
        self.task: TaskRobot | None = None

    # -- the run ---------------------------------------------------------------------------------------------------
    def run(self, restore_signals: bool = True) -> DeploySummary:
        """Run every episode. ``restore_signals``: False leaves the stop handlers installed, ignoring further stop
        signals (a command that only prints the summary and exits after this)."""
        self.stop = StopSignals()
        keys_fd = self.cfg.stop_keys_fd if self.cfg.stop_keys_fd is not None else stdin_terminal()
        key_stop = KeyStop(keys_fd) if keys_fd is not None else None
        if self.start_mock is None:  # a real robot: its operator sets each scene up and says how it went
            self.operator = ConsoleOperator(key_stop) if key_stop is not None else None
            if self.operator is None:
                self.summary.notes.append("no terminal to ask the operator: episodes are not labelled")
        try:
            self._open()
            with self.robot:
                self._configure()
                for ep in range(self.cfg.episodes):
                    self._episode(ep)
                self.summary.bus = dict(self.robot.bus.stats)
        except Stopped as e:
            self.summary.ended, self.summary.message = "stopped", f"{e} received"
        except SafetyStop as e:
            self.summary.ended, self.summary.message = "safety_stop", str(e)
        except (DynamixelError, CameraError, LidarError) as e:  # a hardware fault, named by the driver: no traceback
            self.summary.ended, self.summary.message = "error", f"{type(e).__name__}: {e}"
        except Exception as e:  # anything else: the robot has parked (its context), the log is closed below
            import traceback

            traceback.print_exc(file=sys.stderr)
            self.summary.ended, self.summary.message = "error", f"{type(e).__name__}: {e}"
        finally:
            self.stop.closing = True  # from here on a signal is recorded, not raised: the run is ending anyway
            try:
                if key_stop is not None:
                    key_stop.close()
                self._finish()
            finally:
                if restore_signals:
                    self.stop.restore()
        judged = [e.success for e in self.summary.episodes if e.success is not None]
        self.summary.success_rate = float(np.mean(judged)) if judged else None
        self.summary.loop = self.stats.summary()
        self.summary.stalled_cycles = self.stats.stalled_cycles
        return self.summary

    def _open(self) -> None:
        """Start the mock hardware, connect the camera, open the log; the robot's bus opens as its context."""
        cfg, config = self.cfg, self.config
        if self.start_mock is not None:
            self.mock = self.start_mock()
        if config.cameras and (self.uses_images or (cfg.log_cameras and cfg.log)):
            name = config.cameras[0].name
            mock_camera = self.mock.camera if self.mock is not None else None  # errors drawn at the policy's view
            self.camera = mock_camera(name, *policy_view(self.policy)) if mock_camera else live_camera(config, name)
            self.camera.connect()  # its first frame is awaited with the arm held at its start pose
        if "scan" in self.keys:
            reader = self.mock.lidar(config.lidars[0].name) if self.mock is not None and config.lidars else None
            self.scan = ScanSource(config, reader)  # closed by _finish, whatever happens while it connects
            self.scan.connect()
            if self.cfg.lidar_stall is not None and self.mock is not None:
                self.mock.stall_lidar(config.lidars[0].name, *self.cfg.lidar_stall)
        if cfg.log:
            with self.stop.holding():  # a stop signal never leaves a log half-opened or a record half-written
                metadata = {
                    "robot": config.name,
                    "policy": str(cfg.policy),
                    "task": self.policy.task,
                    "joints": ",".join(config.joint_names),
                    "rate_hz": str(config.control.rate_hz),
                    "reality": str(cfg.reality) if self.mock is not None else "",
                    "command": " ".join(sys.argv),
                }
                self.log = DeployLog(cfg.log, config, metadata, guard=self.stop.holding)
        self.robot = Robot(config)

    def _configure(self) -> None:
        """The task's view of the robot, and the robot configured (torque still off)."""
        image_size, crop = policy_view(self.policy)
        self.task = TaskRobot(
            self.robot,
            self.policy.task,
            privileged=self.mock.privileged if "privileged" in self.keys else None,
            scan=self.scan,
            image_size=image_size,
            crop=crop,
        )
        self.robot.configure()
        if self.log:
            self.log.lifecycle("inactive", **torque_fields(self.robot))

    # -- an episode ------------------------------------------------------------------------------------------------
    def _episode(self, ep: int) -> None:
        """Activate, drive to the start pose, run the cycles until the episode ends, park and turn torque off."""
        robot, mock, log = self.robot, self.mock, self.log
        episode = _Episode(ep, self.cfg.seed + ep if mock is not None else None)
        if mock is not None and ep > 0:
            mock.new_episode(episode.seed)
        if self.operator is not None:
            self.operator.prepare(ep, self.cfg.episodes)
        robot.activate()
        if log:
            log.lifecycle("active", torque=True, episode=ep)
        start_pose = self.task.task.start_pose()  # the simulation's first pose (None: a base starts anywhere)
        if start_pose is not None and not robot.move_to(start_pose, START_POSE_TIMEOUT_S):
            raise SafetyStop(f"the arm did not reach the task's start pose within {START_POSE_TIMEOUT_S} s")
        if mock is not None:  # the scene as the episode placed it, whatever the drive to the start pose pushed
            mock.restore_scene()
        if self.camera is not None and ep == 0:
            # the first frame (a mock's renderer takes seconds) with the arm held where the episode starts
            await_first_frame(self.camera, robot, FIRST_FRAME_TIMEOUT_S)
            if self.cfg.camera_stall is not None and mock is not None:
                mock.stall_camera(self.camera.name, *self.cfg.camera_stall)
        # a goal-conditioned task's goal in the start frame: the route's first, else the one a mock's reality drew
        if self.goals:
            episode.route = Route(self.goals)
            if mock is not None:
                mock.set_goal(0)
            self.task.start(episode.route.goal)
        else:
            self.task.start(mock.goal() if mock is not None else None)
        self.policy.reset()
        if log:
            log.episode_start(ep, episode.seed)
        episode.next_t = episode.started = time.monotonic()
        for step in range(self.max_steps):
            if self._cycle(step, episode):
                break
        summary = self._episode_summary(episode)
        self.summary.episodes.append(summary)
        if log:
            log.episode_end(ep, episode.outcome, episode.steps)
        robot.deactivate()
        self._record_events(robot.take_events())  # a watchdog trip while parking
        if log:
            log.lifecycle("inactive", parked=robot.parked, **torque_fields(robot))
        if not robot.torque_report.confirmed:
            raise SafetyStop("torque off could not be confirmed after the episode")
        if self.operator is not None:  # asked with the robot parked and torque off
            summary.label = self.operator.label(ep, episode.outcome)
            summary.success = None if summary.label == "skip" else summary.label == "success"
            if log:
                log.episode_label(ep, summary.label)

    def _cycle(self, step: int, episode: _Episode) -> bool:
        """One control cycle; True when the episode has ended (judged by a mock's reality)."""
        stats = self.stats
        start = time.monotonic()
        late = max(0.0, start - episode.next_t)
        if episode.prev_start is not None:
            stats.cycle_ms.append((start - episode.prev_start) * 1e3)
        episode.prev_start = start
        stats.late_ms.append(late * 1e3)
        frame = self._fresh_frame()
        age_ms = None if frame is None else (time.monotonic_ns() - frame.taken_ns) / 1e6
        try:
            obs = self.task.read(frame)
        except (BusTimeout, CorruptReply) as e:
            self._skip_cycle(episode, e)
            return False
        episode.lost = 0
        joints = self.task.joints
        robot_events = self.robot.take_events()  # a bus watchdog trip, recovered
        if self.uses_images and frame is None:
            action = None
            requested, sent, events = self._hold(episode, late)
        else:
            episode.stall_since = None
            if age_ms is not None:
                stats.frame_age_ms.append(age_ms)
                stats.frames_stamped = frame.capture_time_ns is not None
            t0 = time.monotonic()
            action = self.policy.act(obs)
            stats.act_ms.append((time.monotonic() - t0) * 1e3)
            requested, sent, events = self.task.write(action, late)
        episode.steps = step + 1
        estimate = getattr(self.policy, "estimate", None)
        if self.log:
            loop = {
                "cycle": step,
                "late_s": late,
                "act_ms": stats.act_ms[-1] if stats.act_ms else None,
                "frame_age_ms": age_ms,  # capture (else arrival) to the observation
                "frame_number": None if frame is None else frame.frame_number,
                "frame_captured_ns": None if frame is None else frame.capture_time_ns,
                "frame_arrived_ns": None if frame is None else frame.host_time_ns,
            }
            truth = (obs["privileged"] if "privileged" in obs else self.mock.privileged()) if self.mock else None
            scan = self.scan.acted_on() if self.scan is not None else None
            memory = getattr(self.policy, "memory", None)  # a policy with memory: the window it acted on
            self.log.cycle(
                joints, obs, action, (requested, sent), loop, estimate, frame, self.camera, truth, scan, memory
            )
        self._record_events(robot_events + events)
        if self._judge(step, episode):
            return True
        self._show(episode, action, estimate)
        self._wait_for_next(episode)
        return False

    def _judge(self, step: int, episode: _Episode) -> bool:
        """Whether the episode has ended: a mock's reality judges success and failure from the true state; a
        route's goal is reached when the reality says so, or on a real base by odometry, and the next one
        becomes the task's goal."""
        reached, failed = self.mock.outcome() if self.mock is not None else (False, False)
        route = episode.route
        if route is not None and self.mock is None:
            reached = route.reached_by_odometry(self.task.task.goal_in_robot_frame())
        if failed or (reached and route is None):
            episode.outcome = "success" if reached and not failed else "failure"
            return True
        if reached and route.arrive(step + 1, time.monotonic() - episode.started, self._travelled()):
            episode.outcome = "success"
            return True
        if reached:
            self.task.task.goal = route.goal
            if self.mock is not None:
                self.mock.set_goal(route.index)
        return False

    def _travelled(self) -> float | None:
        travelled = getattr(self.task.task, "travelled", None)
        return None if travelled is None else float(travelled)

    def _episode_summary(self, episode: _Episode) -> EpisodeSummary:
        route = episode.route
        success = episode.outcome == "success" if self.mock is not None or route is not None else None
        out = EpisodeSummary(episode.index, episode.seed, episode.steps, success, episode.outcome)
        out.time_s = round(time.monotonic() - episode.started, 2)
        out.distance_m = None if (d := self._travelled()) is None else round(d, 3)
        if route is not None:
            out.goals_reached, out.goals = len(route.records), route.summary()
            self.summary.goals_reached = (self.summary.goals_reached or 0) + out.goals_reached
        return out

    def _fresh_frame(self) -> Frame | None:
        """The camera's newest frame when it is young enough for the policy, else None (a stalled camera is
        counted by the camera and held by the cycle)."""
        if self.camera is None:
            return None
        try:
            return self.camera.read_latest(max_age=self.max_frame_age_s)
        except CameraError:
            return None

    def _skip_cycle(self, episode: _Episode, error: Exception) -> None:
        """A transaction that failed all its retries: skip the cycle (the servos hold their goal); too many in a
        row stop the run."""
        self.summary.skipped_cycles += 1
        episode.lost += 1
        if self.log:
            self.log.safety("bus_fault", str(error))
        if episode.lost > self.config.safety.max_overruns:
            raise SafetyStop(f"bus: {episode.lost} consecutive cycles without a reading ({error})") from error
        episode.next_t += self.stats.period_s
        time.sleep(max(0.0, episode.next_t - time.monotonic()))

    def _hold(self, episode: _Episode, late: float) -> tuple[np.ndarray, np.ndarray, list[SafetyEvent]]:
        """No fresh image: the policy cannot act; hold the joints and stop the wheels (through the filter, which
        limits the deceleration), and stop the run if the camera stays silent."""
        self.stats.stalled_cycles += 1
        episode.stall_since = episode.stall_since or time.monotonic()
        stall_s = time.monotonic() - episode.stall_since
        if stall_s > self.cfg.max_stall_s:
            raise SafetyStop(
                f"camera {self.camera.name}: no frame younger than {self.max_frame_age_s * 1e3:.0f} ms "
                f"for {stall_s:.1f} s"
            )
        return self.task.hold(late)

    def _show(self, episode: _Episode, action: np.ndarray | None, estimate: dict[str, float] | None) -> None:
        stats = self.stats
        extra = ""
        if estimate is not None:
            extra = " | " + " ".join(f"{k}={v:.3g}" for k, v in list(estimate.items())[:4])
        rate = 1e3 / np.mean(stats.cycle_ms[-20:]) if stats.cycle_ms else 0.0
        self.status.show(
            f"episode {episode.index + 1}/{self.cfg.episodes} step {episode.steps} | {rate:.1f} Hz | "
            f"overruns {stats.overruns} | "
            + (f"act {stats.act_ms[-1]:.1f} ms" if action is not None else "holding: no fresh frame")
            + extra
        )

    def _wait_for_next(self, episode: _Episode) -> None:
        period = self.stats.period_s
        episode.next_t += period
        delay = episode.next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            self.stats.overruns += 1  # this cycle's work ran past the next cycle's start
            if -delay > period:
                episode.next_t = time.monotonic()  # far behind: do not try to catch up with a burst

    # -- the end ---------------------------------------------------------------------------------------------------
    def _finish(self) -> None:
        """Whatever happened: the camera's figures, torque read back, the log's last words, the mock closed."""
        summary, log = self.summary, self.log
        self.status.done()
        if self.camera is not None:
            self._camera_summary()
            self.camera.disconnect()
        if self.scan is not None:
            self.summary.lidar = self.scan.summary()
            self.scan.close()
        _torque_summary(summary, self.robot)
        if self.robot is not None:
            self._record_events(self.robot.take_events(), log_open=log is not None and not log.closed)
        if log is not None:
            if summary.ended != "completed":
                log.safety("run_ended", summary.message)
            fields = torque_fields(self.robot) if self.robot is not None else {"torque": None}
            log.lifecycle("finalized", ended=summary.ended, **fields)
            log.close()
        if self.mock is not None and self.close_mock:
            self.mock.close()

    def _camera_summary(self) -> None:
        stats, camera = self.stats, self.camera
        self.summary.camera = {k: v for k, v in asdict(camera.stats).items() if not k.startswith("_")}
        self.summary.camera["max_frame_age_ms"] = round(self.max_frame_age_s * 1e3, 2)
        if stats.frame_age_ms:  # how old the frames the policy acted on were (capture, else host arrival, to use)
            self.summary.camera.update(
                {f"frame_age_ms_{name}": round(float(np.percentile(stats.frame_age_ms, q)), 2) for name, q in AGE_STATS}
            )
            self.summary.camera["frame_age_from"] = "capture" if stats.frames_stamped else "arrival"

    def _record_events(self, events: list[SafetyEvent], log_open: bool = True) -> None:
        """Safety events into the summary's counts and the log's /safety channel."""
        for e in events:
            self.summary.safety_events[e.kind] = self.summary.safety_events.get(e.kind, 0) + 1
        if self.log is not None and log_open:
            self.log.safety_events(events)


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

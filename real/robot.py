"""A robot built from its hardware config: its motor bus behind the safety filter, with a lifecycle.

The lifecycle follows ros2_control's: ``configure()`` opens the port, checks that every motor answers with the
configured model, sets modes, limits and the servos' bus watchdog (clearing a trip left by an earlier run), and
reads the state (unconfigured -> inactive); ``activate()`` starts the safety filter from the measured state, holds
the present positions and turns torque on (inactive -> active); ``deactivate()`` eases the joints to the rest pose
through the safety filter and turns torque off (active -> inactive); ``shutdown()`` does whatever of that is still
needed and closes the port. Used as a context manager, every exit path (an exception, Ctrl-C) ends in
``shutdown()``.

Torque off is never assumed: every torque-off pass writes 0 to each motor that may have torque, whatever state the
robot believes it is in (a fault halfway through activation leaves some motors on), reads the register back, and
keeps the result in :attr:`Robot.torque_report` (which motors confirmed, which could not be reached and why). A
port that fails during it is opened again once. SIGINT, SIGTERM and SIGUSR1 arriving during a transition are held
until it ends (:func:`deferred_signals`), so a second Ctrl-C cannot cut a torque-off loop short.

During a run every state read also reads back the servos' goals and bus watchdog: a tripped watchdog (the host
went quiet for longer than ``safety.bus_watchdog_ms``) is cleared and re-armed, the safety filter restarts from
the measured pose, and a ``bus_watchdog_trip`` event is kept for the log; a trip more often than
``MAX_WATCHDOG_TRIPS`` times, or a goal the servos keep refusing, stops the run by name (:class:`SafetyStop`).
Every ``safety.health_period_s`` the servos' temperature and input voltage are read and checked, and, while active,
that every servo still has torque on (read back after activation too).

``write(targets)`` is the only way to command the motors while active, and every target passes the safety filter;
it returns what was actually sent, which is what the caller logs.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

import numpy as np

from real.dynamixel.bus import DynamixelError, ServoError
from real.dynamixel.motor_bus import MotorBus
from real.feetech.bus import ServoAlert
from real.feetech.motor_bus import FeetechMotorBus
from real.motor_buses import motor_driver, open_bus
from real.motor_report import TorqueReport
from real.safety import SafetyEvent, SafetyFilter, SafetyStop
from real.serial_bus import SerialBus, patiently
from robot.description import ControlMode, HardwareConfig
from robot.frame_reduction import reduce_frame
from robot.joint_state import JointState
from robot.tasks import task_class

#: Parked when every joint is this close to rest (rad, m; rad/s for wheels).
PARK_TOLERANCE = 0.02
#: ... or when every position joint has settled this close to it (rad, m): a servo's P-only position loop holds a
#: load short of its goal (an XM430 at the factory gain droops 15-20 mrad holding an arm against gravity, twice that
#: at half the gain), so a soft arm arrives where it stops, not within PARK_TOLERANCE.
SETTLE_TOLERANCE = 0.06
#: Settled: no position joint faster than this (rad/s, m/s) ...
SETTLE_SPEED = 0.02
#: ... for this many consecutive control cycles.
SETTLE_CYCLES = 3
#: Bus watchdog trips recovered in one activation before the run stops.
MAX_WATCHDOG_TRIPS = 3
#: Consecutive state reads with a goal register that differs from the goal sent before the run stops.
MAX_REFUSED_READS = 3
#: The signals a transition holds until it ends.
TRANSITION_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


@contextmanager
def deferred_signals(signals: tuple[signal.Signals, ...] = TRANSITION_SIGNALS) -> Iterator[None]:
    """Hold ``signals`` while the block runs, then deliver them to the handlers that were installed before. When the
    block ends with an exception, the held signals are not delivered: the exception already ends what the signal
    would have ended, and its cause must not be replaced by the signal's. Main thread only: elsewhere Python cannot
    change handlers (and signals go to the main thread anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in signals}
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if not failed:
            for signum in dict.fromkeys(held):
                signal.raise_signal(signum)


class Lifecycle(str, Enum):
    unconfigured = "unconfigured"
    inactive = "inactive"
    active = "active"
    finalized = "finalized"


class Robot:
    """The motors of ``config`` on ``port`` (default: the config's). ``fast_read``: Fast Sync Read for state."""

    def __init__(self, config: HardwareConfig, port: str | None = None, fast_read: bool = True) -> None:
        self.config = config
        self.port = port or config.bus.port
        self.fast_read = fast_read
        self.safety = SafetyFilter(config)
        self.state = Lifecycle.unconfigured
        self.bus: SerialBus | None = None
        self.motors: MotorBus | FeetechMotorBus | None = None
        self.last_reading: JointState | None = None
        self.torque_report: TorqueReport | None = None  # the last torque-off pass, read back
        self.parked: bool | None = None  # whether the last deactivate reached the rest pose
        self.events: list[SafetyEvent] = []  # lifecycle safety events not yet taken (take_events)
        self.watchdog_trips = 0
        self._torque_maybe_on = False
        self._refused_reads = 0
        self._next_health = 0.0
        self.velocity_joint = np.array([m.mode == ControlMode.velocity for m in config.motors])
        if config.arm is not None:
            self.rest = np.array([config.arm.rest[j] for j in config.joint_names], dtype=float)
        else:
            self.rest = np.zeros(len(config.motors))

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def configure(self) -> JointState:
        """Open the bus, check and set up every motor, read the state. Torque stays off (it is turned off first:
        a servo left powered by an earlier run counts as on until read back)."""
        self._expect(Lifecycle.unconfigured, "configure")
        self.bus = open_bus(self.config, self.port)
        self._torque_maybe_on = True  # until read back: an earlier run may have left torque on
        try:
            self.motors = motor_driver(self.config, self.bus, fast_read=self.fast_read)
            self.motors.configure(bus_watchdog_s=self._bus_watchdog_s)
            reading = self.read()
        except BaseException:
            with deferred_signals():
                if self.motors is not None:
                    self._torque_off()
                self.bus.close()
                self.bus = self.motors = None
            raise
        self.state = Lifecycle.inactive
        return reading

    @property
    def _bus_watchdog_s(self) -> float:
        return self.config.safety.bus_watchdog_ms / 1000.0

    def activate(self) -> None:
        """Hold the present positions (wheels at rest), then torque on. A failure on the way turns torque off again
        on every motor (read back) before it propagates."""
        self._expect(Lifecycle.inactive, "activate")
        with deferred_signals():
            try:
                reading = self.read_patiently()
                self.safety.reset(reading.position)
                self.motors.write(self.safety.hold())
                self._torque_maybe_on = True
                self.torque_report = None  # torque goes on: the next torque-off pass covers every motor
                self.motors.set_torque(True)
                # a servo may set its goal to where it is when torque comes on: send the hold once more
                self.motors.write(self.safety.hold())
                self._check_torque_on()  # read back: a servo that did not take it would hang limp
            except BaseException:
                self._torque_off()
                raise
            self.watchdog_trips = self._refused_reads = 0
            self.parked = None
            self.state = Lifecycle.active

    def move_to(self, goal: np.ndarray, timeout_s: float = 2.0) -> bool:
        """Drive the position joints to ``goal`` (config order; velocity joints to rest) through the safety filter
        at the control rate for up to ``timeout_s`` seconds; True once every joint is within ``PARK_TOLERANCE``, or
        once the position joints have settled (``SETTLE_CYCLES`` cycles under ``SETTLE_SPEED``) within
        ``SETTLE_TOLERANCE`` with every wheel at rest: where a servo's position loop holds its load. A few lost
        readings are tolerated (up to ``safety.max_overruns`` in a row): the servos hold their goal."""
        self._expect(Lifecycle.active, "move")
        period = 1.0 / self.config.control.rate_hz
        goal = np.where(self.velocity_joint, 0.0, np.asarray(goal, dtype=float))
        deadline = time.monotonic() + timeout_s
        still = 0
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            reading = self.read_patiently()  # also keeps the servos' bus watchdog fed
            here = np.where(self.velocity_joint, reading.velocity, reading.position)
            error = np.abs(here - goal)
            if np.all(error < PARK_TOLERANCE):
                return True
            moving = np.abs(np.where(self.velocity_joint, 0.0, reading.velocity)) >= SETTLE_SPEED
            still = 0 if np.any(moving) else still + 1
            near = np.where(self.velocity_joint, error < PARK_TOLERANCE, error < SETTLE_TOLERANCE)
            if still >= SETTLE_CYCLES and np.all(near):
                return True
            sent, _ = self.safety.filter(goal)
            self.motors.write(sent)
            time.sleep(max(0.0, period - (time.monotonic() - t0)))
        return False

    def deactivate(self, ease_s: float = 2.0) -> None:
        """Ease to the rest pose (wheels to a stop) through the safety filter for up to ``ease_s`` seconds at the
        control rate, then torque off (read back: :attr:`torque_report`). Torque goes off even if easing fails;
        :attr:`parked` says whether the rest pose was reached."""
        self._expect(Lifecycle.active, "deactivate")
        with deferred_signals():
            self.parked = False
            try:
                self.parked = self.move_to(self.rest, ease_s)
            finally:
                self._torque_off()
                self.state = Lifecycle.inactive

    def shutdown(self) -> None:
        """Whatever is still needed of deactivate (torque off, read back, on every motor that may have torque,
        whatever the state) and closing the port; idempotent."""
        with deferred_signals():
            try:
                if self.state == Lifecycle.active:
                    try:
                        self.deactivate()
                    except (DynamixelError, SafetyStop, OSError):
                        pass  # the park failed; deactivate turned torque off on its way out
                if self.motors is not None and self._torque_maybe_on:
                    self._torque_off()
            finally:
                if self.bus is not None:
                    self.bus.close()
                self.bus = self.motors = None
                self.state = Lifecycle.finalized

    def _torque_off(self) -> TorqueReport:
        """Torque off on every motor that may still have it (all, or those the last pass could not confirm), read
        back; a motor the port failed on is tried once more after reopening the port (a re-plugged adapter). Never
        raises a bus error: the result is :attr:`torque_report`."""
        last = self.torque_report
        if last is not None and not last.confirmed:
            report = last.then(self.motors.torque_off(list(last.unreachable)))  # the others read back off already
        else:
            report = self.motors.torque_off()
        if report.port_failed:
            try:
                self.bus.reopen()
                report = report.then(self.motors.torque_off(list(report.unreachable)))
            except DynamixelError as e:
                for ident in report.unreachable:
                    report.unreachable[ident] += f"; reopening the port failed: {e}"
        self.torque_report = report
        self._torque_maybe_on = not report.confirmed
        return report

    def __enter__(self) -> Robot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- cycle ---------------------------------------------------------------------------------------------------
    def read(self) -> JointState:
        """Joint state in SI units and config order. A servo hardware error stops the run (:class:`SafetyStop`);
        a tripped bus watchdog is cleared and re-armed (the safety filter restarts from the measured pose) up to
        ``MAX_WATCHDOG_TRIPS`` times; goals the servos keep refusing stop the run; temperature and input voltage
        are checked every ``safety.health_period_s``."""
        if self.motors is None:
            raise RuntimeError(f"robot {self.config.name} is {self.state.value}: configure() it first")
        try:
            reading = self.motors.read()
        except ServoError as e:
            if e.hardware_error:
                self.safety.check_hardware_errors({e.ident: e.hardware_error})
            raise
        except ServoAlert as e:  # a Feetech servo's condition comes as error bits in its reply
            raise SafetyStop(f"servo alert: {self.config.motor_label(e.ident)}: {e}") from e
        self.last_reading = reading
        self._check_bus_status(reading)
        if time.monotonic() >= self._next_health:
            self._check_health()
        return reading

    def read_patiently(self) -> JointState:
        """:meth:`read`, tried as many times as the run tolerates lost cycles (``safety.max_overruns``) when the
        bus loses or corrupts the replies."""
        return self._patiently(self.read)

    def _patiently(self, transaction: Callable[[], Any]) -> Any:
        """``transaction()``, tried again when the bus loses or corrupts its replies, as many times as the run
        tolerates lost cycles (``safety.max_overruns``); the last failure raises."""
        return patiently(transaction, self.config.safety.max_overruns + 1)

    def _check_bus_status(self, reading: JointState) -> None:
        status = self.motors.status
        if status.watchdog_tripped:
            ids = status.watchdog_tripped
            joints = tuple(m.joint for m in self.config.motors if m.id in ids)
            self.watchdog_trips += 1
            if self.watchdog_trips > MAX_WATCHDOG_TRIPS:
                raise SafetyStop(
                    f"bus watchdog tripped on motors {ids} ({', '.join(joints)}) {self.watchdog_trips} times: the "
                    f"host went quiet for longer than {self.config.safety.bus_watchdog_ms} ms again and again"
                )
            self.motors.clear_watchdog(ids, self._bus_watchdog_s)
            self.motors.forget_goals()
            if self.state == Lifecycle.active:
                self.safety.reset(reading.position)  # resume from where the arm stopped, not from old targets
            self.events.append(
                SafetyEvent(
                    "bus_watchdog_trip",
                    joints,
                    f"motors {ids} refused goals after a host silence over {self.config.safety.bus_watchdog_ms} ms: "
                    "cleared and re-armed",
                )
            )
            self._refused_reads = 0
            return
        if status.goal_refused:
            self._refused_reads += 1
            if self._refused_reads >= MAX_REFUSED_READS:
                detail = "; ".join(
                    f"{self.config.motor_label(i)}: goal register {got}, sent {sent}"
                    for i, (got, sent) in sorted(status.goal_refused.items())
                )
                raise SafetyStop(f"servos refuse their goals for {self._refused_reads} cycles: {detail}")
        else:
            self._refused_reads = 0

    def _check_torque_on(self) -> None:
        """Raise :class:`SafetyStop` naming every motor whose Torque Enable does not read 1 (a servo that rebooted on
        a brown-out, or never took the torque-on)."""
        values = self._patiently(self.motors.torque_enabled)  # a lost reply is not a limp joint
        limp = [i for i in self.motors.ids if values[i] != 1]
        if limp:
            raise SafetyStop(
                "torque is off on "
                + ", ".join(self.config.motor_label(i) for i in limp)
                + " while the robot is active (a servo reboot or brown-out?): the joint hangs limp"
            )

    def _check_health(self) -> None:
        """Read every servo's temperature (°C) and input voltage (V) and let the safety filter judge them; while
        active, also that every servo still has torque on."""
        safety = self.config.safety
        self._next_health = time.monotonic() + safety.health_period_s
        if self.state == Lifecycle.active:
            self._check_torque_on()
        self.safety.check_health(*self._patiently(self.motors.health))

    def take_events(self) -> list[SafetyEvent]:
        """The lifecycle's safety events since the last call (watchdog recoveries), for the log."""
        events, self.events = self.events, []
        return events

    def write(self, targets: np.ndarray, late_s: float = 0.0) -> tuple[np.ndarray, list[SafetyEvent]]:
        """Filter ``targets`` (config order, SI) and send them; returns what was sent and the filter's events.
        ``late_s``: how late this cycle started (the host watchdog)."""
        self._expect(Lifecycle.active, "write")
        sent, events = self.safety.filter(targets, late_s)
        self.motors.write(sent)
        return sent, events

    def _expect(self, state: Lifecycle, action: str) -> None:
        if self.state != state:
            raise RuntimeError(f"robot {self.config.name}: cannot {action} while {self.state.value}")


class TaskRobot:
    """A robot seen through a task's code, as a policy sees it: :meth:`read` returns the observation dict of the
    simulated task (same keys, units and order: :mod:`robot.tasks` builds both), :meth:`write` turns a policy action
    into joint targets with the same task code and sends them through the safety filter.

    ``privileged``: where a state policy's privileged vector comes from (a mock robot's reality); ``scan``: where a
    base's policy beams come from (its laser scanner, :class:`real.deploy_sensors.ScanSource`); ``image_size``:
    (width, height) the camera frames are resized to for a camera policy, color by area averaging and depth by
    nearest neighbour, after cutting out ``crop`` (x, y, width, height in px of the frame) when given; the
    simulated camera shows the same (:meth:`sim.envs.robot_env.RobotEnv.camera_observation`)."""

    def __init__(
        self,
        robot: Robot,
        task: str,
        privileged: Callable[[], np.ndarray] | None = None,
        image_size: tuple[int, int] | None = None,
        crop: tuple[int, int, int, int] | None = None,
        scan: Callable[[], np.ndarray] | None = None,
    ) -> None:
        self.task = task_class(task)(robot.config)
        self.name = task
        self.robot = robot
        self.privileged = privileged
        self.scan = scan
        self.image_size = image_size
        self.crop = crop  # checked against each frame by reduce_frame
        self.joints: JointState | None = None

    def start(self, goal: np.ndarray | None = None) -> JointState:
        """Start an episode from the measured joints (``goal``: a goal-conditioned task's goal, in its units)."""
        self.joints = self.robot.read_patiently()
        self.task.reset(self.joints, goal)
        return self.joints

    def read(self, frame: Any | None = None) -> dict[str, np.ndarray]:
        """The observation now: ``proprio`` and ``effort`` (N*m, N for a joint in m) from the joints, ``privileged``
        when a source was given, ``rgb`` and ``depth`` from ``frame`` (a :class:`real.cameras.frame.Frame`) when an
        image size was given."""
        self.joints = self.robot.read()
        self.task.update(self.joints)
        obs: dict[str, np.ndarray] = {
            "proprio": self.task.proprio(self.joints),
            "effort": np.asarray(self.joints.effort, dtype=np.float32),
        }
        if self.privileged is not None:
            obs["privileged"] = self.privileged()
        if self.scan is not None:
            obs["scan"] = self.scan()
        if self.image_size is not None and frame is not None:
            obs["rgb"], obs["depth"] = reduce_frame(frame.color, frame.depth, self.image_size, self.crop)
        return obs

    def write(self, action: np.ndarray, late_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, list[SafetyEvent]]:
        """(targets the task asked for, targets sent after the safety filter, the filter's events)."""
        requested = self.task.action_to_targets(action)
        sent, events = self.robot.write(requested, late_s)
        return requested, sent, events

    def hold(self, late_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, list[SafetyEvent]]:
        """No action this cycle: hold the joints where the filter last sent them and brake the wheels to a stop."""
        requested = self.robot.safety.idle()
        sent, events = self.robot.write(requested, late_s)
        return requested, sent, events

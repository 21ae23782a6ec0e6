"""A robot built from its hardware config: its motor bus behind the safety filter, with a lifecycle.

The lifecycle follows ros2_control's: ``configure()`` opens the port, checks that every motor answers with the
configured model, sets modes, limits and the servos' bus watchdog, and reads the state (unconfigured ->
inactive); ``activate()`` starts the safety filter from the measured state, holds the present positions and turns
torque on (inactive -> active); ``deactivate()`` eases the joints to the rest pose through the safety filter and
turns torque off (active -> inactive); ``shutdown()`` does whatever of that is still needed and closes the port.
Used as a context manager, every exit path (an exception, Ctrl-C) ends in ``shutdown()``.

``write(targets)`` is the only way to command the motors while active, and every target passes the safety filter;
it returns what was actually sent, which is what the caller logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from typing import Any

import cv2
import numpy as np

from real.dynamixel.bus import DynamixelBus, DynamixelError, ServoError
from real.dynamixel.motor_bus import MotorBus
from real.hardware_config import ControlMode, HardwareConfig
from real.safety import SafetyEvent, SafetyFilter, SafetyStop
from sim.joint_state import JointState

#: Parked when every joint is this close to rest (rad, m; rad/s for wheels).
PARK_TOLERANCE = 0.02


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
        self.bus: DynamixelBus | None = None
        self.motors: MotorBus | None = None
        self.last_reading: JointState | None = None
        self.torque_off_failures: list[str] = []
        self.velocity_joint = np.array([m.mode == ControlMode.velocity for m in config.motors])
        if config.arm is not None:
            self.rest = np.array([config.arm.rest[j] for j in config.joint_names], dtype=float)
        else:
            self.rest = np.zeros(len(config.motors))

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def configure(self) -> JointState:
        """Open the bus, check and set up every motor, read the state. Torque stays off."""
        self._expect(Lifecycle.unconfigured, "configure")
        self.bus = DynamixelBus(self.port, self.config.bus.baudrate).open()
        try:
            self.motors = MotorBus(self.config, self.bus, fast_read=self.fast_read)
            self.motors.configure(bus_watchdog_s=self.config.safety.bus_watchdog_ms / 1000.0)
            reading = self.read()
        except BaseException:
            self.bus.close()
            self.bus = self.motors = None
            raise
        self.state = Lifecycle.inactive
        return reading

    def activate(self) -> None:
        """Hold the present positions (wheels at rest), then torque on."""
        self._expect(Lifecycle.inactive, "activate")
        reading = self.read()
        self.safety.reset(reading.position)
        self.motors.write(self.safety.hold())
        self.motors.set_torque(True)
        self.state = Lifecycle.active

    def deactivate(self, ease_s: float = 2.0) -> None:
        """Ease to the rest pose (wheels to a stop) through the safety filter for up to ``ease_s`` seconds at the
        control rate, then torque off. Torque goes off even if easing fails."""
        self._expect(Lifecycle.active, "deactivate")
        try:
            period = 1.0 / self.config.control.rate_hz
            goal = np.where(self.velocity_joint, 0.0, self.rest)
            deadline = time.monotonic() + ease_s
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                reading = self.read()  # also keeps the servos' bus watchdog fed
                here = np.where(self.velocity_joint, reading.velocity, reading.position)
                if np.all(np.abs(here - goal) < PARK_TOLERANCE):
                    break
                sent, _ = self.safety.filter(goal)
                self.motors.write(sent)
                time.sleep(max(0.0, period - (time.monotonic() - t0)))
        finally:
            self._torque_off()
            self.state = Lifecycle.inactive

    def shutdown(self) -> None:
        """Whatever is still needed of deactivate (torque off in any case) and closing the port; idempotent."""
        try:
            if self.state == Lifecycle.active:
                try:
                    self.deactivate()
                except (DynamixelError, SafetyStop, OSError):
                    self._torque_off()  # the park failed: at least let go
        finally:
            if self.bus is not None:
                self.bus.close()
            self.bus = self.motors = None
            self.state = Lifecycle.finalized

    def _torque_off(self) -> None:
        """Torque off motor by motor; failures are kept in ``torque_off_failures``."""
        self.torque_off_failures = self.motors.set_torque(False, best_effort=True)

    def __enter__(self) -> Robot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- cycle ---------------------------------------------------------------------------------------------------
    def read(self) -> JointState:
        """Joint state in SI units and config order; a servo hardware error stops the run (:class:`SafetyStop`)."""
        if self.motors is None:
            raise RuntimeError(f"robot {self.config.name} is {self.state.value}: configure() it first")
        try:
            reading = self.motors.read()
        except ServoError as e:
            if e.hardware_error:
                self.safety.check_hardware_errors({e.ident: e.hardware_error})
            raise
        self.last_reading = reading
        return reading

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


def reduce_frame(
    color: np.ndarray,
    depth: np.ndarray,
    image_size: tuple[int, int],
    crop: tuple[int, int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A camera frame (HxWx3 uint8 color, HxW depth in m) as a camera policy sees it: the ``crop`` region (x, y,
    width, height in px; None: the whole frame) resized to ``image_size`` (width, height), color by area averaging
    and depth by nearest neighbour (averaging would invent depths between an object and the table behind it).
    Returns (h x w x 3 uint8, h x w x 1 float32)."""
    if crop is not None:
        x, y, cw, ch = (int(v) for v in crop)
        if x < 0 or y < 0 or x + cw > color.shape[1] or y + ch > color.shape[0]:
            raise ValueError(f"crop {tuple(crop)} does not fit in the {color.shape[1]}x{color.shape[0]} frame")
        color, depth = color[y : y + ch, x : x + cw], depth[y : y + ch, x : x + cw]
    rgb = cv2.resize(color, image_size, interpolation=cv2.INTER_AREA)
    reduced = cv2.resize(depth, image_size, interpolation=cv2.INTER_NEAREST)
    return rgb, reduced[:, :, None].astype(np.float32)


class TaskRobot:
    """A robot seen through a task's code, as a policy sees it: :meth:`read` returns the observation dict of the
    simulated task (same keys, units and order: :mod:`sim.tasks` builds both), :meth:`write` turns a policy action
    into joint targets with the same task code and sends them through the safety filter.

    ``privileged``: where a state policy's privileged vector comes from (a mock robot's reality); ``image_size``:
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
    ) -> None:
        if task == "grasp":
            from sim.tasks.grasp import GraspTask

            self.task = GraspTask(robot.config)
        elif task == "navigate":
            from sim.tasks.navigate import NavigateTask

            self.task = NavigateTask(robot.config)
        else:
            raise ValueError(f"unknown task {task!r}")
        self.name = task
        self.robot = robot
        self.privileged = privileged
        self.image_size = image_size
        self.crop = crop  # checked against each frame by reduce_frame
        self.joints: JointState | None = None

    def start(self, goal: np.ndarray | None = None) -> JointState:
        """Start an episode from the measured joints (navigate: ``goal`` in the start frame, m)."""
        self.joints = self.robot.read()
        if self.name == "navigate":
            self.task.reset(self.joints, np.zeros(2) if goal is None else np.asarray(goal, dtype=float))
        else:
            self.task.reset(self.joints)
        return self.joints

    def read(self, frame: Any | None = None) -> dict[str, np.ndarray]:
        """The observation now: ``proprio`` from the joints, ``privileged`` when a source was given, ``rgb`` and
        ``depth`` from ``frame`` (a :class:`real.cameras.frame.Frame`) when an image size was given."""
        self.joints = self.robot.read()
        if self.name == "navigate":
            self.task.update(self.joints)
        obs: dict[str, np.ndarray] = {"proprio": self.task.proprio(self.joints)}
        if self.privileged is not None:
            obs["privileged"] = self.privileged()
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
        requested = np.where(self.robot.velocity_joint, 0.0, self.robot.safety.hold())
        sent, events = self.robot.write(requested, late_s)
        return requested, sent, events

"""Leader-arm teleoperation: an operator moves a leader arm by hand (its servos read, torque off, on a bus of its
own) and the follower robot takes its joint positions as targets, through the follower's safety filter, at the
control rate; every cycle is logged like a deployment (MCAP), so a teleoperated demonstration is exported, replayed
and trained on like any log.

The leader's joints are matched to the follower's by name (``shoulder_pan`` ... ``gripper``: both arms calibrated to
the same zero). Nothing reaches the follower's motors but through :meth:`real.robot.Robot.write`; every exit path
(the end, an error, Ctrl-C) parks the follower and turns its torque off, read back, and the leader's torque stays
off (read back when it opened).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from real.deploy_log import DeployLog
from real.motor_buses import motor_driver, open_bus
from real.robot import Robot
from real.serial_bus import BusError, patiently
from robot.description import HardwareConfig
from robot.joint_state import JointState


class LeaderArm:
    """The leader arm of ``config`` on ``port`` (default: the config's): opened with every servo's torque off, read
    back; :meth:`read` gives its joint state in SI units."""

    def __init__(self, config: HardwareConfig, port: str | None = None) -> None:
        self.config, self.port = config, port or config.bus.port
        self.bus: Any = None
        self.motors: Any = None

    def open(self) -> JointState:
        self.bus = open_bus(self.config, self.port)
        try:
            self.motors = motor_driver(self.config, self.bus)
            self.motors.configure()  # its homing offsets and limits as the config says (torque off first)
            report = self.motors.torque_off()
            if not report.confirmed:
                raise BusError(f"leader {self.config.name}: {report.describe(self.config)}")
            return self.motors.read()
        except BaseException:
            self.close()
            raise

    def read(self, attempts: int = 1) -> JointState:
        """The leader's joints; a lost or corrupt reply is tried again up to ``attempts`` times in all."""
        return patiently(self.motors.read, attempts)

    def close(self) -> None:
        if self.bus is not None:
            self.bus.close()
        self.bus = self.motors = None

    def __enter__(self) -> LeaderArm:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def joint_map(leader: HardwareConfig, follower: HardwareConfig) -> np.ndarray:
    """Index into the leader's joints of each follower joint (by name); ValueError naming the joints it lacks."""
    names = leader.joint_names
    missing = [j for j in follower.joint_names if j not in names]
    if missing:
        raise ValueError(f"leader {leader.name} has no joints {missing} of follower {follower.name}")
    return np.array([names.index(j) for j in follower.joint_names])


@dataclass
class TeleopSummary:
    """How a teleoperation went: cycles run, how many a safety rule changed, overruns, the follower's end state read
    back (``torque``: the torque-off report; ``parked``), the log."""

    cycles: int = 0
    seconds: float = 0.0
    limited_cycles: int = 0  # cycles the safety filter changed a target in
    events: dict[str, int] = field(default_factory=dict)  # safety event kind -> count
    overruns: int = 0
    ended: str = "completed"
    message: str = ""
    torque: str = ""
    parked: bool | None = None
    log: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def teleoperate(
    robot: Robot,
    leader: LeaderArm,
    seconds: float,
    log: DeployLog | None = None,
    stop: Callable[[], bool] = lambda: False,
    privileged: Callable[[], np.ndarray] | None = None,
) -> TeleopSummary:
    """Drive ``robot`` (not yet configured) from ``leader`` (open) for ``seconds`` or until ``stop()``; the follower
    is configured, activated, then parked with torque off on every way out (:meth:`Robot.shutdown`).
    ``privileged``: a mock follower's true state, logged each cycle (what a state policy's demonstrations need)."""
    summary = TeleopSummary(log=None if log is None else str(log.log.path))
    period = robot.config.control_period
    tries = robot.config.safety.max_overruns + 1
    started = time.monotonic()
    try:
        order = joint_map(leader.config, robot.config)
        robot.configure()
        robot.activate()
        if log is not None:
            log.lifecycle("active")
            log.episode_start(0, seed=None)
        next_cycle = time.monotonic()
        while time.monotonic() - started < seconds and not stop():
            late = time.monotonic() - next_cycle
            if late > period:
                summary.overruns += 1
                next_cycle = time.monotonic()  # resume the rate from now, not with a burst of late cycles
            taken = leader.read(tries)
            state = privileged() if privileged is not None else None  # what a policy would have seen here
            requested = taken.position[order]
            sent, events = robot.write(requested, late_s=max(0.0, late))
            joints = robot.read_patiently()
            summary.cycles += 1
            summary.limited_cycles += bool(events)
            for e in events:
                summary.events[e.kind] = summary.events.get(e.kind, 0) + 1
            if log is not None:
                _log_cycle(log, robot.config, joints, taken, requested, sent, events, late)
                if state is not None:
                    log.log.write("/reality/privileged", {"vector": state})
            next_cycle += period
            time.sleep(max(0.0, next_cycle - time.monotonic()))
    except BaseException as e:
        summary.ended, summary.message = ("stopped" if isinstance(e, KeyboardInterrupt) else "failed"), str(e)
        if not isinstance(e, KeyboardInterrupt):
            raise
    finally:
        robot.shutdown()  # parks and turns torque off (read back), whatever happened
        summary.seconds = round(time.monotonic() - started, 2)
        summary.parked = robot.parked
        summary.torque = robot.torque_report.describe(robot.config) if robot.torque_report else "torque never on"
        if log is not None:
            log.episode_end(0, summary.ended, summary.cycles)
            log.lifecycle("finalized", torque=summary.torque)
            log.close()
    return summary


def _log_cycle(
    log: DeployLog,
    config: HardwareConfig,
    joints: JointState,
    leader: JointState,
    requested: np.ndarray,
    sent: np.ndarray,
    events: list[Any],
    late_s: float,
) -> None:
    """One cycle, in a deployment's topics: the follower's joints, the targets (the leader's joints, and what the
    safety filter sent), the leader's joints, the filter's events and the cycle's lateness."""
    log.joint_states(joints)
    log.log.write("/teleop/leader", {"name": config.joint_names, "position": requested}, leader.stamp_ns)
    log.log.write("/command", {"requested": requested, "sent": sent})
    log.safety_events(events)
    log.log.write("/loop", {"late_ms": round(late_s * 1e3, 2)})

"""What a deployment is asked to do (:class:`DeployConfig`, the fields of ``s2r deploy``) and what it reports
(:class:`DeploySummary`, the JSON summary)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

import tyro

#: The physics engines a mock robot's reality runs on (:data:`mock.hardware.REALITIES` holds one entry per name).
EngineName = Literal["pybullet", "mujoco"]


@dataclass
class DeployConfig:
    """A deployment of a policy bundle on a robot (``s2r deploy``'s flags are these fields)."""

    robot: str
    """hardware config (path or name, e.g. mock/openmanipulator_x)"""
    policy: str
    """policy bundle or run folder, or a shipped bundle's name"""
    episodes: int = 1
    max_steps: int | None = None
    """control cycles per episode (default: the task's episode length)"""
    log: str | None = None
    """write the hardware log (MCAP) here"""
    reality: str | None = None
    """mock robots: domain file of the simulated reality (default: the nominal domain)"""
    engine: EngineName = "pybullet"
    """mock robots: the reality's physics engine and renderer (mujoco: a second engine, not the simulator)"""
    seed: int = 3_000_000
    """mock robots: seed of the first episode's scene (object pose, goal)"""
    goal: Annotated[str | None, tyro.conf.arg(metavar="X,Y")] = None
    """navigation: the goal (m) in the frame of the base's start pose, x forward, y left"""
    goals: Annotated[str | None, tyro.conf.arg(metavar="FILE")] = None
    """navigation: a YAML list of [x, y] goals (m, start frame) visited in order in one episode"""
    adapt: bool = False
    """a bundle with an online estimator acts on its estimate (else it is refused)"""
    log_cameras: bool = False
    """also log color and depth when the robot has cameras the policy does not use"""
    bus_faults: tyro.conf.Suppress[dict[str, float] | None] = None
    """mock robots: emulator Faults fields for every servo, e.g. drop_probability (tests)"""
    max_frame_age_s: Annotated[float | None, tyro.conf.arg(name="max-frame-age", metavar="S")] = None
    """a camera policy holds instead of acting on an older frame (s; default: the oldest frame it was trained on,
    at least one control period)"""
    max_stall_s: Annotated[float, tyro.conf.arg(name="max-stall", metavar="S")] = 2.0
    """the run stops when a camera policy has had no fresh frame for this long (s)"""
    camera_stall: tyro.conf.Suppress[tuple[float, float] | None] = None
    """mock robots: silence the camera at T s for D s (a test)"""
    lidar_stall: tyro.conf.Suppress[tuple[float, float] | None] = None
    """mock robots: silence the laser scanner T s after it starts, for D s (a test)"""
    status: tyro.conf.Suppress[bool] = True
    """the live status line on stderr"""
    stop_keys_fd: tyro.conf.Suppress[int | None] = None
    """terminal watched for the stop keys (default: stdin when it is a terminal)"""


@dataclass
class EpisodeSummary:
    episode: int
    seed: int | None
    steps: int
    success: bool | None  # by the operator on a real robot, else a mock's reality; a route by odometry; else None
    outcome: str  # success, failure, timeout or stopped
    time_s: float | None = None  # from the first cycle to the end
    distance_m: float | None = None  # a base's odometry path length
    goals_reached: int | None = None  # a navigation route: how many of its goals, in order
    goals: list[dict[str, Any]] | None = None  # each goal: reached, and at which step, time and distance
    label: str | None = None  # the operator's on a real robot: success, failure or skip (not counted)


@dataclass
class DeploySummary:
    robot: str
    policy: str
    episodes: list[EpisodeSummary] = field(default_factory=list)
    ended: str = "completed"  # completed, stopped (signal), safety_stop, error
    message: str = ""
    success_rate: float | None = None
    goals_reached: int | None = None  # navigation routes: goals reached over all episodes
    loop: dict[str, Any] = field(default_factory=dict)
    safety_events: dict[str, int] = field(default_factory=dict)
    camera: dict[str, Any] = field(default_factory=dict)
    lidar: dict[str, Any] = field(default_factory=dict)  # the scanner's counters and scan ages (ms)
    bus: dict[str, int] = field(default_factory=dict)  # transactions, retries, timeouts, corrupt replies
    skipped_cycles: int = 0  # cycles lost to a bus transaction that failed all its retries
    stalled_cycles: int = 0  # cycles a camera policy held because its camera had no fresh frame
    # read back from the servos at the end: motors whose Torque Enable read 0, and those that could not be reached
    # (id -> why; their torque may still be on); None when the run never opened the bus
    torque_off: dict[str, Any] | None = None
    parked: bool | None = None  # whether the last park reached the rest pose (None: never activated)
    notes: list[str] = field(default_factory=list)  # what the run could not do as asked, e.g. a host reality term
    log: str | None = None
    engine: str | None = None  # a mock robot's reality engine (pybullet, mujoco); None on real hardware

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

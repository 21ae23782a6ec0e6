"""What a deployment is asked to do (:class:`DeployConfig`, the fields of ``s2r deploy``) and what it reports
(:class:`DeploySummary`, the JSON summary)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DeployConfig:
    robot: str  # hardware config (path or name, e.g. mock/openmanipulator_x)
    policy: str  # policy bundle (or run folder)
    episodes: int = 1
    max_steps: int | None = None  # per episode (default: the task's episode length)
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

"""Typed robot descriptions loaded from ``hardware_configs/<robot>.yaml``.

One file describes one physical robot: its motors (bus id, model, joint, direction, offset, limits), its
cameras (model, serial, color and depth profiles, mount pose), its control rate and its safety limits. The
simulator reads the same file: joint names and order, limits, rates and the camera model come from here.

Units are SI everywhere: rad, rad/s, m, m/s, N*m, s. Poses are ``xyz`` in metres and ``rpy`` in radians
(fixed-axis roll-pitch-yaw, as in URDF). A camera mount uses the ROS ``camera_link`` convention: x forward
(the optical axis), y left, z up.

A file that does not validate raises :class:`ConfigError` naming the file, the field path and what was
expected, before anything moves.
"""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from robot.config_base import Pose
from robot.config_base import Strict as _Strict
from robot.lidar import Lidar
from robot.servo_models import (  # noqa: F401  (re-exported: the description's users import them from here)
    BAUD_RATES,
    CURRENT_SENSING_MODELS,
    PROTOCOL_MODELS,
    SERVO_MODELS,
    torque_per_amp,
    torque_per_effort_unit,
)
from robot.task_names import task_names

#: Folder holding the robots' URDFs (``sim.urdf`` names a file here): the simulator loads them, kinematics, the
#: config check and the logs' transforms read them.
URDF_DIR = Path(__file__).resolve().parent / "assets"

#: Stream profiles (width, height) -> allowed fps, from the Intel RealSense D400 series datasheet
#: (document 337029, "Supported video modes"), for the resolutions this project uses.
D435_COLOR_MODES: dict[tuple[int, int], tuple[int, ...]] = {
    (320, 180): (6, 30, 60),
    (320, 240): (6, 30, 60),
    (424, 240): (6, 15, 30, 60),
    (640, 360): (6, 15, 30, 60),
    (640, 480): (6, 15, 30, 60),
    (848, 480): (6, 15, 30, 60),
    (960, 540): (6, 15, 30, 60),
    (1280, 720): (6, 15, 30),
    (1920, 1080): (6, 15, 30),
}
D435_DEPTH_MODES: dict[tuple[int, int], tuple[int, ...]] = {
    (256, 144): (90, 300),
    (424, 240): (6, 15, 30, 60, 90),
    (480, 270): (6, 15, 30, 60, 90),
    (640, 360): (6, 15, 30, 60, 90),
    (640, 480): (6, 15, 30, 60, 90),
    (848, 480): (6, 15, 30, 60, 90),
    (1280, 720): (6, 15, 30),
}


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid. The message names file and field path."""


class ControlMode(str, Enum):
    """How a motor is driven: ``position``; ``current_position`` (position with a current limit: a gripper
    that squeezes without overloading, Dynamixel operating mode 5); ``velocity`` (wheels)."""

    position = "position"
    current_position = "current_position"
    velocity = "velocity"


class JointLimits(_Strict):
    """Joint-space limits in SI units (rad, rad/s, N*m; m and m/s for a prismatic joint). Position limits may be
    infinite (the default) only for a velocity joint such as a wheel."""

    lower: float = Field(default=-math.inf, allow_inf_nan=True)
    upper: float = Field(default=math.inf, allow_inf_nan=True)
    velocity: float = Field(gt=0)
    effort: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> JointLimits:
        if math.isnan(self.lower) or math.isnan(self.upper):
            raise ValueError(f"lower and upper must be numbers (or -.inf/.inf), got {self.lower}, {self.upper}")
        if not self.lower < self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        return self


class Motor(_Strict):
    """One servo on the bus and the joint it drives.

    ``joint = direction * (motor_angle - offset) * scale``: motor angle in rad, offset in rad, ``scale`` in
    joint units per rad (1 for a direct drive; m/rad for a rack-and-pinion gripper).
    """

    id: int = Field(ge=0, le=252, description="bus id (0-252: Dynamixel reserves 253 and 254, Feetech 254)")
    model: str
    joint: str = Field(min_length=1)
    mode: ControlMode = ControlMode.position
    direction: Literal[1, -1] = 1
    offset: float = 0.0
    scale: float = Field(default=1.0, gt=0)
    limits: JointLimits
    position_p_gain: int | None = Field(
        default=None,
        ge=0,
        le=16383,
        description="Position P Gain register written at configure (None: the servo's own); the sim's servo_model "
        "uses it (None: the model's factory default)",
    )
    homing_offset: int | None = Field(
        default=None,
        ge=-2047,
        le=2047,
        description="Feetech only: the Homing_Offset register (position counts, sign-magnitude) written at configure; "
        "the firmware reports Present_Position = actual - homing_offset (mod 4096), so a joint's range can be moved "
        "clear of the encoder's wrap-around (an imported LeRobot calibration sets it: `s2r calibrate lerobot`). "
        "None writes 0",
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v not in SERVO_MODELS:
            raise ValueError(f"unknown servo model {v!r}; expected one of {sorted(SERVO_MODELS)}")
        return v

    @model_validator(mode="after")
    def _mode_supported(self) -> Motor:
        if self.mode == ControlMode.current_position and self.model not in CURRENT_SENSING_MODELS:
            raise ValueError(
                f"{self.model} has no current control: mode 'current_position' needs one of "
                f"{sorted(CURRENT_SENSING_MODELS)}"
            )
        lim = self.limits
        if self.mode != ControlMode.velocity and not (math.isfinite(lim.lower) and math.isfinite(lim.upper)):
            raise ValueError(
                f"joint {self.joint!r} in mode {self.mode.value!r} needs finite limits.lower and limits.upper "
                f"(rad, or m for a prismatic joint); got lower={lim.lower}, upper={lim.upper}"
            )
        return self


class Bus(_Strict):
    """The serial bus the motors share."""

    protocol: Literal["dynamixel2", "feetech"] = "dynamixel2"
    port: str = Field(min_length=1, description="device path, e.g. /dev/ttyUSB0 or a mock pty link")
    baudrate: Literal[9600, 19200, 38400, 57600, 115200, 128000, 250000, 500000, 1000000, 2000000, 3000000, 4000000,
                      4500000] = 1000000  # fmt: skip

    @model_validator(mode="after")
    def _baudrate_of_protocol(self) -> Bus:
        if self.baudrate not in BAUD_RATES[self.protocol]:
            raise ValueError(
                f"baudrate {self.baudrate} is not a {self.protocol} rate; expected one of {BAUD_RATES[self.protocol]}"
            )
        return self


class StreamProfile(_Strict):
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    fps: int = Field(gt=0)


class Camera(_Strict):
    """A camera and where it is mounted. ``mount`` is the ``camera_link`` pose (x forward) in ``parent``.

    ``model``: ``D435`` (a RealSense through librealsense: color and depth) or ``webcam`` (a USB camera through
    OpenCV: color only, its ``device`` and calibrated ``intrinsics`` required)."""

    name: str = Field(min_length=1)
    model: Literal["D435", "webcam"]
    serial: str | None = None
    device: int | str | None = Field(
        default=None,
        description="webcam: its V4L2 index (0 for /dev/video0) or a video file's path (replays a recording)",
    )
    color: StreamProfile
    depth: StreamProfile | None = None
    parent: str = Field(default="world", description="'world' or a link name of the robot")
    mount: Pose
    intrinsics: str | None = Field(
        default=None,
        description="file written by `s2r calibrate intrinsics` (relative to this config's folder); the simulated "
        "camera renders with it (scaled to the color stream) instead of the D435 datasheet model",
    )
    depth_range: tuple[float, float] = Field(
        default=(0.105, 10.0),
        description="valid metric depth (m); D435 min-Z at 848x480 is 0.105 m per datasheet",
    )
    visual_preset: (
        Literal["default", "hand", "high_accuracy", "high_density", "medium_density", "remove_ir_pattern"] | None
    ) = Field(default=None, description="D400 depth visual preset set at start (None: leave the camera's)")
    filters: list[Literal["decimation", "spatial", "temporal", "hole_filling"]] = Field(
        default=[], description="librealsense depth post-processing, applied in this order before alignment"
    )
    warmup_frames: int = Field(
        default=15, ge=0, description="frames discarded after start while auto-exposure settles (live devices)"
    )

    @model_validator(mode="after")
    def _supported_profiles(self) -> Camera:
        if self.model == "webcam":
            return self._webcam_fields()
        if self.device is not None:
            raise ValueError(f"camera {self.name!r}: device is a webcam's; a D435 is chosen by its serial")
        c = self.color
        if c.fps not in D435_COLOR_MODES.get((c.width, c.height), ()):
            raise ValueError(
                f"color profile {c.width}x{c.height}@{c.fps} is not a D435 mode; supported: "
                + ", ".join(f"{w}x{h}@{fps}" for (w, h), fps in D435_COLOR_MODES.items())
            )
        d = self.depth
        if d is not None and d.fps not in D435_DEPTH_MODES.get((d.width, d.height), ()):
            raise ValueError(
                f"depth profile {d.width}x{d.height}@{d.fps} is not a D435 mode; supported: "
                + ", ".join(f"{w}x{h}@{fps}" for (w, h), fps in D435_DEPTH_MODES.items())
            )
        return self

    def _webcam_fields(self) -> Camera:
        """A webcam has color only, its device and a calibration (its focal length is known from nothing else);
        the RealSense options do not apply."""
        problems = []
        if self.device is None:
            problems.append("device (its V4L2 index or a video file) is required")
        if self.intrinsics is None:
            problems.append("intrinsics (a file from `s2r calibrate intrinsics`) is required")
        if self.depth is not None:
            problems.append("a webcam has no depth stream")
        if self.visual_preset is not None or self.filters or self.serial is not None:
            problems.append("visual_preset, filters and serial are RealSense options")
        if problems:
            raise ValueError(f"camera {self.name!r} (webcam): " + "; ".join(problems))
        return self


class Control(_Strict):
    rate_hz: float = Field(gt=0, le=1000, description="policy / control loop rate")


class WorkspaceLimits(_Strict):
    """Cartesian limits on an arm's targets, in the arm base frame (the URDF root link, z up), m.

    Checked on the forward kinematics of every target at three points: the elbow and the wrist (the origins of the
    last two pitch joints) and the end-effector (``arm.ee_link``). Together with the fixed shoulder they are the
    ends of the arm's straight links, and height and distance from a vertical axis are extreme at a segment's
    ends, so the whole skeleton is inside when they are (the link housings and fingers around it are not
    modelled: keep a margin)."""

    min_z: float = Field(description="lowest height of any checked point (m; the table top is z = 0)")
    max_radius: float = Field(
        gt=0, description="largest horizontal distance of any checked point from the base's yaw (joint1) axis (m)"
    )


class Safety(_Strict):
    """Limits enforced between the policy and the bus (see :mod:`real.safety`)."""

    max_step: float = Field(
        gt=0,
        description="max change of a target per cycle: rad (m for a prismatic joint) for position joints, rad/s "
        "for velocity joints (their acceleration limit)",
    )
    watchdog_s: float = Field(gt=0, description="host watchdog: a cycle later than this holds the last target")
    max_overruns: int = Field(default=5, ge=1, description="consecutive overruns before the run stops")
    bus_watchdog_ms: int = Field(
        default=100, ge=20, le=2540, description="servo bus watchdog (register 98, 20 ms units)"
    )
    workspace: WorkspaceLimits | None = Field(default=None, description="Cartesian limits (arms only)")
    # The servos shut themselves down at their Temperature Limit register (31), whose factory default is 80 degC
    # on the XM430-W350 and 72 degC on the XL430-W250 (ROBOTIS e-manual control tables): the host stops first.
    max_temperature_c: float = Field(default=70.0, gt=0, description="highest servo temperature (degC)")
    input_voltage_v: tuple[float, float] | None = Field(
        default=None,
        description="[min, max] servo input voltage (V); None: the Input Voltage range every motor model shares "
        "(SERVO_MODELS). The servos' own Min/Max Voltage Limit registers (XM430-W350 factory default 9.5/16.0 V) "
        "only raise an input voltage error",
    )
    health_period_s: float = Field(default=1.0, gt=0, description="how often temperature and voltage are read (s)")

    @field_validator("input_voltage_v")
    @classmethod
    def _voltage_range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 < v[0] < v[1]:
            raise ValueError(f"expected [min, max] with 0 < min < max (V), got {list(v)}")
        return v


class Arm(_Strict):
    """Arm-specific facts: the end-effector link, the gripper joint and its open/closed targets, the links whose
    contacts with an object count as holding it."""

    ee_link: str
    gripper_joint: str
    finger_links: tuple[str, str] = Field(description="the two links that touch what the gripper holds (URDF names)")
    gripper_open: float
    gripper_closed: float
    rest: dict[str, float] = Field(description="rest / park pose, joint name -> position")


class DiffDrive(_Strict):
    """Differential-drive base: wheel radius and track width (m), wheel joints, command limits."""

    left_wheel: str
    right_wheel: str
    wheel_radius: float = Field(gt=0)
    track: float = Field(gt=0)
    max_linear: float = Field(gt=0, description="m/s")
    max_angular: float = Field(gt=0, description="rad/s")


class SimSettings(_Strict):
    """What only the simulator needs: the URDF (in robot/assets), the physics rate, and optionally a fitted servo
    model."""

    urdf: str
    physics_hz: float = Field(default=240.0, gt=0)
    fixed_base: bool = True
    base_pose: Pose = Pose()
    servo_model: str | None = Field(
        default=None,
        description="parameters written by `s2r sysid` from servo test-bench logs (relative to this config): position "
        "joints are then simulated as DC motors behind the firmware's P loop instead of PyBullet's position motor",
    )
    supply_v: float = Field(default=12.0, gt=0, description="servo supply voltage (V), for servo_model")


class Mock(_Strict):
    """A mock robot: the bus port is the servo emulator's pseudo-terminal link and the cameras are librealsense
    software devices, both driven by a PyBullet world of ``task`` (:mod:`mock.reality`)."""

    task: str = Field(description="the task whose world the reality is (a module of robot/tasks)")
    robot: str | None = Field(
        default=None,
        description="the simulated robot of the reality (a hardware config name; None: the task's default)",
    )

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        if v not in task_names():
            raise ValueError(f"unknown task {v!r}; known: {', '.join(task_names())}")
        return v


class HardwareConfig(_Strict):
    """A whole robot. Joint order is the order of ``motors``."""

    name: str
    kind: Literal["arm", "diff_drive"]
    bus: Bus
    motors: list[Motor] = Field(min_length=1)
    cameras: list[Camera] = []
    lidars: list[Lidar] = []
    control: Control
    safety: Safety
    arm: Arm | None = None
    base: DiffDrive | None = None
    sim: SimSettings
    mock: Mock | None = None

    @model_validator(mode="after")
    def _consistent(self) -> HardwareConfig:
        ids = [m.id for m in self.motors]
        dup_ids = sorted({i for i in ids if ids.count(i) > 1})
        if dup_ids:
            raise ValueError(f"motor ids must be unique; repeated: {dup_ids}")
        joints = self.joint_names
        dup_j = sorted({j for j in joints if joints.count(j) > 1})
        if dup_j:
            raise ValueError(f"joint names must be unique; repeated: {dup_j}")
        models = PROTOCOL_MODELS[self.bus.protocol]
        foreign = [f"{m.joint} ({m.model})" for m in self.motors if m.model not in models]
        if foreign:
            raise ValueError(f"bus protocol {self.bus.protocol} drives {sorted(models)}, not {foreign}")
        homed = [m.joint for m in self.motors if m.homing_offset is not None]
        if homed and self.bus.protocol != "feetech":
            raise ValueError(f"homing_offset is a Feetech register; {self.bus.protocol} motors {homed} have none")
        if len({c.name for c in self.cameras}) != len(self.cameras):
            raise ValueError("camera names must be unique")
        if len({s.name for s in self.lidars}) != len(self.lidars):
            raise ValueError("lidar names must be unique")
        if self.kind == "arm":
            if self.arm is None:
                raise ValueError("kind 'arm' needs an 'arm' section")
            for j in [self.arm.gripper_joint, *self.arm.rest]:
                if j not in joints:
                    raise ValueError(f"arm refers to joint {j!r}, which no motor drives; joints: {joints}")
            missing = [j for j in joints if j not in self.arm.rest]
            if missing:
                raise ValueError(f"arm.rest must give every joint; missing {missing}")
        if self.safety.workspace is not None and self.arm is None:
            raise ValueError("safety.workspace: Cartesian limits need an arm (kind 'arm' with an 'arm' section)")
        if self.safety.input_voltage_v is None and self._models_voltage_range() is None:
            raise ValueError(
                "safety.input_voltage_v is needed: the motor models' input voltage ranges do not overlap ("
                + ", ".join(f"{m}: {r[0]}-{r[1]} V" for m, r in self._model_voltage_ranges().items())
                + ")"
            )
        if self.kind == "diff_drive":
            if self.base is None:
                raise ValueError("kind 'diff_drive' needs a 'base' section")
            for j in (self.base.left_wheel, self.base.right_wheel):
                if j not in joints:
                    raise ValueError(f"base refers to joint {j!r}, which no motor drives; joints: {joints}")
                if self.motor(j).mode != ControlMode.velocity:
                    raise ValueError(f"wheel joint {j!r} must use mode 'velocity'")
        return self

    @property
    def joint_names(self) -> list[str]:
        """Joint names in the robot's canonical order (the order of ``motors``)."""
        return [m.joint for m in self.motors]

    @property
    def control_period(self) -> float:
        """Control period in s."""
        return 1.0 / self.control.rate_hz

    @property
    def input_voltage_v(self) -> tuple[float, float]:
        """The servo input voltage range (V) the health check accepts: ``safety.input_voltage_v``, or else the
        Input Voltage range of the datasheets that every motor model on the robot shares."""
        if self.safety.input_voltage_v is not None:
            return self.safety.input_voltage_v
        shared = self._models_voltage_range()
        assert shared is not None  # checked at validation
        return shared

    def _model_voltage_ranges(self) -> dict[str, tuple[float, float]]:
        models = {m.model for m in self.motors}
        return {m: (SERVO_MODELS[m]["min_input_v"], SERVO_MODELS[m]["max_input_v"]) for m in sorted(models)}

    def _models_voltage_range(self) -> tuple[float, float] | None:
        ranges = self._model_voltage_ranges().values()
        lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
        return (lo, hi) if lo < hi else None

    def motor_label(self, ident: int) -> str:
        """How messages name a motor: "motor 13 (joint3)" (a bus id the config does not have: "motor 99 (?)")."""
        joint = next((m.joint for m in self.motors if m.id == ident), "?")
        return f"motor {ident} ({joint})"

    def motor(self, joint: str) -> Motor:
        for m in self.motors:
            if m.joint == joint:
                return m
        raise KeyError(f"{self.name}: no motor drives joint {joint!r}; joints: {self.joint_names}")

    def camera(self, name: str | None = None) -> Camera:
        """The named camera, or the only/first one when ``name`` is None."""
        if not self.cameras:
            raise KeyError(f"{self.name}: no camera configured")
        if name is None:
            return self.cameras[0]
        for c in self.cameras:
            if c.name == name:
                return c
        raise KeyError(f"{self.name}: no camera {name!r}; cameras: {[c.name for c in self.cameras]}")


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """The parsed YAML of ``path``; a syntax error raises ``error`` naming the file."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML: {e}") from e


def format_validation_error(source: str | Path, kind: str, err: ValidationError) -> str:
    """A pydantic error as lines of ``field.path: message (got value)`` under ``source: invalid <kind>``."""
    lines = [f"{source}: invalid {kind} ({err.error_count()} problem(s))"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {loc}: {e['msg']}{got_s}")
    return "\n".join(lines)


def urdf_path(config: HardwareConfig) -> Path:
    """The URDF file of ``config`` (``sim.urdf`` in :data:`URDF_DIR`); FileNotFoundError when it is missing."""
    path = URDF_DIR / config.sim.urdf
    if not path.exists():
        raise FileNotFoundError(f"{config.name}: sim.urdf {config.sim.urdf!r} not found in {URDF_DIR}")
    return path

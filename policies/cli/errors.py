"""The errors a command reports as one line (``s2r: ...``, exit status 2) rather than a traceback: bad input,
a missing file, a robot that does not answer."""

from __future__ import annotations

from calibration.intrinsics import CalibrationError
from calibration.servo_bench import BenchError
from calibration.servo_sysid import SysidError
from policies.cluster import ClusterError
from real.cameras.frame import CameraError
from real.dynamixel.bus import DynamixelError
from real.hardware_log import LogError
from real.motor_driver import WrapAroundError
from robot.description import ConfigError
from robot.spec import BundleError
from sim.randomization.config import RandomizationError

USER_ERRORS = (
    ConfigError,
    RandomizationError,
    CameraError,
    BundleError,
    LogError,
    CalibrationError,
    SysidError,
    BenchError,
    ClusterError,
    WrapAroundError,
    DynamixelError,
    FileExistsError,
    FileNotFoundError,
)

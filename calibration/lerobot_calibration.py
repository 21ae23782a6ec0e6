"""An SO-101 calibrated with LeRobot needs no re-calibration: read LeRobot's calibration file and write the same
facts into our hardware config.

LeRobot's file (``~/.cache/huggingface/lerobot/calibration/robots/so101_follower/<id>.json``) holds, per motor
name: ``id``, ``drive_mode`` (1: the motor turns against the joint), ``homing_offset`` (the value LeRobot wrote to the
servo's Homing_Offset register, so that the arm's middle pose reads 2047) and ``range_min``/``range_max`` (the
Present_Position counts, after that offset, at the ends of the joint's recorded sweep). LeRobot then reports a body
joint in degrees as ``(present - mid) * 360 / 4095`` with ``mid = (range_min + range_max) / 2`` (its
``MotorNormMode.DEGREES``, in the motor's own sense: it does not apply ``drive_mode``; ``RANGE_M100_100`` maps the range
to -100..100 instead, flipped by ``drive_mode``), and the gripper as ``(present - range_min) / (range_max -
range_min) * 100`` (``RANGE_0_100``, flipped by ``drive_mode``).

How the fields map to ours (:class:`robot.description.Motor`):

- ``homing_offset`` -> ``homing_offset`` (written to the same register at configure: Present_Position reads as it
  did under LeRobot);
- ``mid`` -> ``offset = (mid - 2048) * 2 pi / 4096`` rad, so that our joint angle is 0 where LeRobot's is (the
  reference URDF's zero is LeRobot's middle pose); for the gripper, whose 0-100 has no angle, the closed end of the
  range (``range_min``, or ``range_max`` with drive_mode 1) is put at the config's ``arm.gripper_closed``;
- ``drive_mode`` -> ``direction`` for the gripper (0: 1, 1: -1), whose 0-100 it flips; body joints keep direction 1,
  as LeRobot's degrees ignore it;
- ``range_min``/``range_max`` -> ``limits.lower``/``upper`` in rad (in joint order after the direction), kept inside
  the config's limits (which ``s2r check-config`` keeps inside the URDF's).

Our angles use the encoder's 4096 counts a turn where LeRobot divides by 4095: the two differ by 1/4096 of the angle
(0.03 degrees at 120 degrees).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from calibration.motors import HomingResult, MotorCalibration
from real.feetech.control_table import POSITION_CENTER, TICK
from robot.description import ConfigError, HardwareConfig

#: LeRobot's divisor for degrees: the largest count of a turn (the encoder has 4096).
LEROBOT_MAX_RES = 4095
MIDDLE = POSITION_CENTER


@dataclass(frozen=True)
class LeRobotMotor:
    """One motor's entry of a LeRobot calibration file (Present_Position counts)."""

    name: str
    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    @property
    def mid(self) -> float:
        return (self.range_min + self.range_max) / 2

    def degrees(self, present: int) -> float:
        """LeRobot's reading of a body joint (``MotorNormMode.DEGREES``, which does not apply ``drive_mode``)."""
        return (present - self.mid) * 360 / LEROBOT_MAX_RES

    def range_0_100(self, present: int) -> float:
        """LeRobot's reading of the gripper (``MotorNormMode.RANGE_0_100``)."""
        value = (present - self.range_min) / (self.range_max - self.range_min) * 100
        return 100 - value if self.drive_mode else value


def read_lerobot_calibration(path: str | Path) -> dict[str, LeRobotMotor]:
    """The motors of a LeRobot calibration file, by name; ConfigError naming the file and the field that is wrong."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a readable LeRobot calibration file: {e}") from e
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: expected a JSON object of motor name -> calibration")
    motors = {}
    for name, entry in raw.items():
        fields = ("id", "drive_mode", "homing_offset", "range_min", "range_max")
        if not isinstance(entry, dict) or any(not isinstance(entry.get(f), int) for f in fields):
            raise ConfigError(f"{path}: motor {name!r} needs integer fields {', '.join(fields)}; got {entry!r}")
        motor = LeRobotMotor(name, *(entry[f] for f in fields))
        if not 0 <= motor.range_min < motor.range_max <= LEROBOT_MAX_RES:
            raise ConfigError(
                f"{path}: motor {name!r}: range {motor.range_min}..{motor.range_max} is not within 0..4095"
            )
        if motor.drive_mode not in (0, 1) or abs(motor.homing_offset) > 2047:
            raise ConfigError(f"{path}: motor {name!r}: drive_mode must be 0 or 1 and |homing_offset| <= 2047")
        motors[name] = motor
    return motors


def homing_from_lerobot(config: HardwareConfig, motors: dict[str, LeRobotMotor]) -> HomingResult:
    """What ``motors`` (a LeRobot calibration) says of each motor of ``config`` (a Feetech robot whose joints LeRobot
    names alike), as a homing result :func:`calibration.motors.save` writes into the config file."""
    if config.bus.protocol != "feetech":
        raise ConfigError(
            f"{config.name}: a LeRobot calibration is for Feetech servos; this bus is {config.bus.protocol}"
        )
    missing = [m.joint for m in config.motors if m.joint not in motors]
    if missing:
        raise ConfigError(f"the LeRobot calibration has no entry for joints {missing}; it has {sorted(motors)}")
    result = HomingResult(robot=config.name, motors=[])
    for m in config.motors:
        lr = motors[m.joint]
        if lr.id != m.id:
            raise ConfigError(f"{m.joint}: the LeRobot calibration says id {lr.id}, the config {m.id}")
        gripper = config.arm is not None and m.joint == config.arm.gripper_joint
        direction = -1 if lr.drive_mode and gripper else 1
        if gripper:
            closed = lr.range_max if lr.drive_mode else lr.range_min
            offset = (closed - MIDDLE) * TICK - config.arm.gripper_closed / (direction * m.scale)
        else:
            offset = (lr.mid - MIDDLE) * TICK
        ends = sorted(
            direction * ((count - MIDDLE) * TICK - offset) * m.scale for count in (lr.range_min, lr.range_max)
        )
        lower, upper = max(ends[0], m.limits.lower), min(ends[1], m.limits.upper)
        cal = MotorCalibration(
            m.joint, m.id, offset, direction, True, lower, upper, True, homing_offset=lr.homing_offset
        )
        if lower >= upper:
            result.warnings.append(f"{m.joint}: the recorded range does not overlap the configured limits; kept them")
            cal.lower, cal.upper, cal.limits_measured = m.limits.lower, m.limits.upper, False
        result.motors.append(cal)
    return result

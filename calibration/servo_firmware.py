"""The firmware's position loop read from a servo log's Present PWM register, so that system identification fits
the physics and not the firmware's arithmetic.

A Dynamixel X servo in position mode sets its PWM from the position error (:func:`sim.voltage_servo.duty_per_rad`:
the e-manual's formula times ``gain_scale``) and clips it at its PWM Limit. When a log records Present PWM beside
the position and goal, a least-squares slope of PWM on the formula's duty gives ``gain_scale`` and the largest PWM
reached where the formula asked for more gives ``max_duty``: two parameters a trajectory fit would otherwise trade
against the motor and friction (on the shared XL330 logs the fit chose gain_scale 0.60 and max_duty 0.95 where the
register reads 0.50 and 1.00 on every log).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from real.dynamixel.control_table import MODELS as DYNAMIXEL_MODELS
from sim.voltage_servo import PWM_FULL_SCALE, duty_per_rad


class PwmLog(Protocol):
    """What the law is read from (:class:`calibration.servo_sysid.ServoLog` is one): angles in rad, the P gain
    register, torque-enable flags and Present PWM as signed duty (None: not recorded)."""

    position: np.ndarray
    goal: np.ndarray
    torque_enable: np.ndarray
    kp: float
    pwm: np.ndarray | None


#: A register whose readings depart from a P law on the position error by more than this (RMS, fraction of full
#: duty) is not read as the loop's PWM (the e-manual formula's duty, measured: 0.1-0.9 % on the XL330 logs).
MAX_RESIDUAL = 0.02
#: Samples asking for less duty than this (fraction) carry no slope information beside the register's resolution.
MIN_DUTY = 0.03
#: A PWM reading is saturated when the law asks for this much more than the largest reading.
SATURATION_MARGIN = 0.05


@dataclass(frozen=True)
class FirmwareLaw:
    """``gain_scale`` and ``max_duty`` as :class:`sim.voltage_servo.VoltageServoParams` takes them, with the RMS
    departure of the readings from the law (fraction of full duty) and the number of samples the slope used."""

    gain_scale: float
    max_duty: float
    residual: float
    samples: int
    saturated: bool  # whether any sample reached the limit (else max_duty is the PWM Limit's full scale)


#: The X series' Present PWM register (real.dynamixel.control_table): 2 bytes, two's complement, 1/885 of full duty.
PRESENT_PWM = DYNAMIXEL_MODELS["XL330-M288"].register("present_pwm")


def pwm_from_register(raw: Sequence[float]) -> np.ndarray | None:
    """A log's raw register values (as read, unsigned) as signed PWM duty (fraction of full scale), or None when they
    cannot be Present PWM (not 2-byte values, or beyond +-885)."""
    try:
        counts = [PRESENT_PWM.decode(int(v).to_bytes(PRESENT_PWM.size, "little")) for v in raw]
    except (OverflowError, ValueError):
        return None
    if any(abs(c) > PWM_FULL_SCALE for c in counts):
        return None
    return np.array([PRESENT_PWM.to_si(c) for c in counts], dtype=float)


def firmware_law(logs: Sequence[PwmLog]) -> FirmwareLaw | None:
    """The P law that every log's Present PWM follows (torque-on samples), or None when a log lacks the register or
    the readings do not follow a P law on the position error (residual over :data:`MAX_RESIDUAL`)."""
    if not logs or any(log.pwm is None for log in logs):
        return None
    formula, reading = [], []
    for log in logs:
        on = log.torque_enable.astype(bool)
        formula.append(duty_per_rad(log.kp, 1.0) * (log.goal - log.position)[on])
        reading.append(log.pwm[on])
    x, y = np.concatenate(formula), np.concatenate(reading)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    inside = (np.abs(y) < 0.95 * peak) & (np.abs(x) > MIN_DUTY)
    if inside.sum() < 10:
        return None
    gain = float(np.sum(x[inside] * y[inside]) / np.sum(x[inside] ** 2))
    residual = float(np.sqrt(np.mean((y[inside] - gain * x[inside]) ** 2)))
    if gain <= 0 or residual > MAX_RESIDUAL:
        return None
    saturated = bool(np.any(gain * np.abs(x) > peak + SATURATION_MARGIN))
    return FirmwareLaw(gain, peak if saturated else 1.0, residual, int(inside.sum()), saturated)

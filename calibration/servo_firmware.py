"""The firmware's position loop read from a servo log's Present PWM register, so that system identification fits
the physics and not the firmware's arithmetic.

A Dynamixel X servo in position mode sets its PWM from the position error (:func:`sim.voltage_servo.duty_per_rad`:
the e-manual's formula times ``gain_scale``) and clips it at its PWM Limit. When a log records Present PWM beside
the position and goal, a least-squares slope of PWM on the formula's duty gives ``gain_scale``, the largest PWM
reached where the formula asked for more gives ``max_duty``, and the delay of the goal that best explains the
readings gives the loop's ``latency`` (goal sent to PWM applied): parameters a trajectory fit would otherwise trade
against the motor and friction (on the shared XL330 logs the fit chose gain_scale 0.60 and max_duty 0.95 where the
register reads 0.50 and 1.00 on every log, and a family of slow lifts left the latency anywhere in 0-40 ms where the
register reads 1.5 ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from real.dynamixel.control_table import MODELS as DYNAMIXEL_MODELS
from sim.voltage_servo import PWM_FULL_SCALE, duty_per_rad


class PwmLog(Protocol):
    """What the law is read from (:class:`calibration.servo_sysid.ServoLog` is one): sample times in s, angles in
    rad, the P gain register, torque-enable flags and Present PWM as signed duty (None: not recorded)."""

    t: np.ndarray
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
#: Goal delays tried (s): 0-20 ms by 0.25 ms (the shared logs are sampled every 5.3 ms; the goal between samples is
#: interpolated).
LAGS = np.arange(0.0, 0.02001, 0.00025)


@dataclass(frozen=True)
class FirmwareLaw:
    """``gain_scale``, ``max_duty`` and ``latency`` (s) as :class:`sim.voltage_servo.VoltageServoParams` takes them,
    with the RMS departure of the readings from the law (fraction of full duty) and the number of samples the slope
    used."""

    gain_scale: float
    max_duty: float
    latency: float
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


def _slope(logs: Sequence[PwmLog], lag: float) -> tuple[float, float, int, float, np.ndarray]:
    """Least-squares gain of the readings on the formula's duty with the goal delayed by ``lag`` (s): (gain, RMS
    residual, samples used, the largest reading, the formula's duty of every torque-on sample)."""
    formula, reading = [], []
    for log in logs:
        on = log.torque_enable.astype(bool)
        goal = np.interp(log.t - lag, log.t, log.goal)
        formula.append(duty_per_rad(log.kp, 1.0) * (goal - log.position)[on])
        reading.append(log.pwm[on])
    x, y = np.concatenate(formula), np.concatenate(reading)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    inside = (np.abs(y) < 0.95 * peak) & (np.abs(x) > MIN_DUTY)
    if inside.sum() < 10:
        return 0.0, np.inf, 0, peak, x
    gain = float(np.sum(x[inside] * y[inside]) / np.sum(x[inside] ** 2))
    residual = float(np.sqrt(np.mean((y[inside] - gain * x[inside]) ** 2)))
    return gain, residual, int(inside.sum()), peak, x


def firmware_law(logs: Sequence[PwmLog]) -> FirmwareLaw | None:
    """The P law that every log's Present PWM follows (torque-on samples), at the goal delay (:data:`LAGS`) that
    explains the readings best, or None when a log lacks the register or the readings do not follow a P law on the
    position error (residual over :data:`MAX_RESIDUAL`)."""
    if not logs or any(log.pwm is None for log in logs):
        return None
    fits = [_slope(logs, lag) for lag in LAGS]
    best = int(np.argmin([f[1] for f in fits]))
    gain, residual, samples, peak, x = fits[best]
    if samples == 0 or gain <= 0 or residual > MAX_RESIDUAL:
        return None
    saturated = bool(np.any(gain * np.abs(x) > peak + SATURATION_MARGIN))
    return FirmwareLaw(gain, peak if saturated else 1.0, float(LAGS[best]), residual, samples, saturated)

"""The firmware's position loop read from a servo log's Present PWM register, so that system identification fits
the physics and not the firmware's arithmetic.

A Dynamixel X servo in position mode sets its PWM from the position error (:func:`sim.voltage_servo.duty_per_rad`:
the e-manual's formula times ``gain_scale``) and clips it at its PWM Limit. When a log records Present PWM beside
the position and goal, a least-squares slope of PWM on the formula's duty gives ``gain_scale``, the largest PWM
reached where the formula asked for more gives ``max_duty``, and the delay of the goal that best explains the
readings gives the loop's ``latency``, with the goal held between samples as the simulation holds it
(:func:`held_index`): parameters a trajectory fit would otherwise trade against the motor and friction (on the
shared XL330 logs the fit chose gain_scale 0.60 and max_duty 0.95 where the register reads 0.50 and 1.00 on every
log, and a family of slow lifts left the latency anywhere in 0-40 ms where the register follows each sample's own
goal: under one sample, 5.3 ms). On a sampled log the delays that give the same held goals at the sample times
cannot be told apart: the latency read is the middle of the best such range, and none is read when that range
reaches the end of the delays tried or when no delay explains the readings clearly better than another (a goal
that never moves).
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
#: Goal delays tried (s): 0-50 ms (the fit's latency bounds) by 0.25 ms.
LAGS = np.arange(0.0, 0.05001, 0.00025)
#: The best delay must explain the readings this much better (relative RMS residual) than the worst to be read.
MIN_LAG_CONTRAST = 0.05


@dataclass(frozen=True)
class FirmwareLaw:
    """``gain_scale``, ``max_duty`` and ``latency`` (s, or None) as :class:`sim.voltage_servo.VoltageServoParams`
    takes them, with the RMS departure of the readings from the law (fraction of full duty) and the number of samples
    the slope used."""

    gain_scale: float
    max_duty: float
    latency: float | None  # None: the readings do not pin it (it is fitted)
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


def held_index(t: np.ndarray, at: np.ndarray, latency: float) -> np.ndarray:
    """For each time in ``at`` (s), the index of the last sample of ``t`` sent at or before ``at - latency``: the
    goal (and torque flag) the servo acts on then, held between samples (the first sample before the log starts)."""
    return np.clip(np.searchsorted(t, at - latency, side="right") - 1, 0, len(t) - 1)


def _duty(logs: Sequence[PwmLog], on: Sequence[np.ndarray], lag: float) -> np.ndarray:
    """The e-manual formula's duty (gain 1) on the goal ``lag`` s old, at every torque-on sample of ``logs``."""
    return np.concatenate(
        [
            duty_per_rad(log.kp, 1.0) * (log.goal[held_index(log.t, log.t, lag)] - log.position)[o]
            for log, o in zip(logs, on, strict=True)
        ]
    )


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares gain of readings ``y`` on the formula's duty ``x``, and the RMS residual."""
    gain = float(np.sum(x * y) / np.sum(x**2))
    return gain, float(np.sqrt(np.mean((y - gain * x) ** 2)))


def _latency(residuals: np.ndarray) -> float | None:
    """The middle of the run of delays around the best one that explain the readings as well (s), or None when the
    run reaches the last delay tried or the residuals hardly depend on the delay."""
    best = int(np.argmin(residuals))
    if residuals.max() - residuals[best] <= MIN_LAG_CONTRAST * residuals[best]:
        return None
    tied = residuals <= residuals[best] * (1 + 1e-9) + 1e-12
    lo = hi = best
    while lo > 0 and tied[lo - 1]:
        lo -= 1
    while hi < len(LAGS) - 1 and tied[hi + 1]:
        hi += 1
    if hi == len(LAGS) - 1:
        return None
    return round(float(LAGS[lo] + LAGS[hi]) / 2, 6)


def firmware_law(logs: Sequence[PwmLog]) -> FirmwareLaw | None:
    """The P law that every log's Present PWM follows (torque-on samples), at the goal delay (:data:`LAGS`) that
    explains the readings best, or None when a log lacks the register or the readings do not follow a P law on the
    position error (residual over :data:`MAX_RESIDUAL`)."""
    if not logs or any(log.pwm is None for log in logs):
        return None
    on = [log.torque_enable.astype(bool) for log in logs]
    y = np.concatenate([log.pwm[o] for log, o in zip(logs, on, strict=True)])
    peak = float(np.max(np.abs(y), initial=0.0))
    # the samples the slope uses, chosen once (on the undelayed goal) so that every delay is judged on the same ones
    inside = (np.abs(y) < 0.95 * peak) & (np.abs(_duty(logs, on, 0.0)) > MIN_DUTY)
    samples = int(inside.sum())
    if samples < 10:
        return None
    duties = [_duty(logs, on, lag) for lag in LAGS]
    fits = [_slope(x[inside], y[inside]) for x in duties]
    residuals = np.array([f[1] for f in fits])
    best = int(np.argmin(residuals))
    (gain, residual), x = fits[best], duties[best]
    if gain <= 0 or residual > MAX_RESIDUAL:
        return None
    saturated = bool(np.any(gain * np.abs(x) > peak + SATURATION_MARGIN))
    return FirmwareLaw(gain, peak if saturated else 1.0, _latency(residuals), residual, samples, saturated)

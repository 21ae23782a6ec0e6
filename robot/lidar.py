"""A 2-D laser distance sensor on the robot (the TurtleBot3 Burger's LDS-01 or LDS-02), as both backends see it: its
place in the hardware config, its measurement model, and the reduction of a full scan to the beams a policy takes.

A *scan* is one revolution: 360 ranges (m) indexed by angle in whole degrees, counter-clockwise from the sensor's
forward axis, 0 where the sensor saw nothing (no return, or outside its range). The driver (:mod:`real.lidar`)
delivers it from the sensor's bytes; the simulator casts rays in the same directions. Either way
:func:`reduce_scan` turns it into the policy's beams about the base's origin, so the simulated robot and the real
one see the same quantity. The policies were trained with the LDS-01's model (:data:`LDS01`); an LDS-02 reads
farther, and its extra reach is beyond the policy's :data:`SCAN_RANGE` anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from robot.config_base import Pose, Strict

READINGS = 360  # per revolution, one per degree


@dataclass(frozen=True)
class LidarModel:
    """A sensor model's datasheet facts: its range window (m), serial baud rate, nominal revolutions per second, and
    its distance precision as (range limit m, sigma m or fraction of the range) bands, nearest band first (each
    datasheet tolerance is taken as one standard deviation)."""

    name: str
    range_min_m: float
    range_max_m: float
    baudrate: int
    rate_hz: float
    precision: tuple[tuple[float, float, bool], ...]  # (below m, sigma, sigma is a fraction of the range)

    def sigma(self, ranges_m: np.ndarray) -> np.ndarray:
        """The range noise's standard deviation (m) at ``ranges_m`` (the farthest band's beyond the range too)."""
        r = np.asarray(ranges_m, dtype=float)
        out = np.zeros_like(r)
        for k, (upper, sigma, relative) in enumerate(reversed(self.precision)):
            out = np.where((r < upper) | (k == 0), sigma * r if relative else sigma, out)
        return out


#: ROBOTIS e-manual, LDS-01 specifications: range 120-3,500 mm; 1 deg angular resolution; 300 +- 10 rpm (5 Hz);
#: distance precision +-10 mm at 120-499 mm and +-3.5 % at 500-3,500 mm; 230,400 baud on its USB serial adapter.
LDS01 = LidarModel("LDS-01", 0.12, 3.5, 230400, 5.0, ((0.5, 0.010, False), (3.5, 0.035, True)))
#: ROBOTIS e-manual, LDS-02 specifications: range 160-8,000 mm; accuracy +-10 mm at 160-300 mm, +-3.0 % at
#: 300-6,000 mm, +-5.0 % at 6,000-8,000 mm; 2.3 kHz sampling; scan frequency 5 Hz or above; 115,200 baud, Tx only.
LDS02 = LidarModel("LDS-02", 0.16, 8.0, 115200, 5.0, ((0.3, 0.010, False), (6.0, 0.03, True), (8.0, 0.05, True)))
LIDAR_MODELS = {m.name: m for m in (LDS01, LDS02)}

#: The range window the policy's scan is simulated and reduced over: the LDS-01's, which the policies were trained
#: with (an LDS-02's readings beyond it fall past SCAN_RANGE; below it, a body is inside the base's footprint).
RANGE_MIN_M = LDS01.range_min_m
RANGE_MAX_M = LDS01.range_max_m
SCAN_RATE_HZ = LDS01.rate_hz
#: The policy's view: beams about the base's origin, beam 0 straight ahead, counter-clockwise, each the nearest
#: return in its sector, at most SCAN_RANGE (m; "nothing nearer").
SCAN_BEAMS = 16
SCAN_RANGE = 3.0
#: Readings lost at random (a dark or glancing surface returns nothing); measured LDS-01 scans drop a few percent.
DROPOUT = 0.02


class Lidar(Strict):
    """A laser distance sensor on a serial port and where it is mounted: ``mount`` is the sensor's pose in
    ``parent`` (its forward axis along x); only x, y and yaw matter to a planar scan."""

    name: str = Field(min_length=1)
    model: Literal["LDS-01", "LDS-02"]
    port: str = Field(min_length=1, description="device path, e.g. /dev/ttyUSB0 or a mock pty link")
    baudrate: int = Field(description="the model's own when not given (a check, not a choice)")
    parent: str = Field(default="base_link", description="a link of the robot")
    mount: Pose
    rate_hz: float = Field(default=SCAN_RATE_HZ, gt=0, le=20, description="revolutions per second")
    max_scan_age_s: float = Field(
        default=0.6, gt=0, description="the base stops when the newest whole scan is older than this (s)"
    )

    @property
    def spec(self) -> LidarModel:
        return LIDAR_MODELS[self.model]

    @model_validator(mode="before")
    @classmethod
    def _model_baudrate(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("baudrate") is None and data.get("model") in LIDAR_MODELS:
            data = {**data, "baudrate": LIDAR_MODELS[data["model"]].baudrate}
        return data

    @model_validator(mode="after")
    def _fresh_enough(self) -> Lidar:
        if self.baudrate != self.spec.baudrate:
            raise ValueError(f"an {self.model} talks at {self.spec.baudrate} baud, not {self.baudrate}")
        if self.max_scan_age_s < 1.0 / self.rate_hz:
            raise ValueError(
                f"max_scan_age_s {self.max_scan_age_s} s is shorter than one revolution ({1 / self.rate_hz:.3f} s)"
            )
        return self

    @property
    def mount_xy_yaw(self) -> tuple[np.ndarray, float]:
        return np.array(self.mount.xyz[:2], dtype=float), float(self.mount.rpy[2])


def reduce_scan(
    ranges_m: np.ndarray,
    mount_xy: np.ndarray | tuple[float, float] = (0.0, 0.0),
    mount_yaw: float = 0.0,
    beams: int = SCAN_BEAMS,
    range_max: float = SCAN_RANGE,
) -> np.ndarray:
    """The policy's ``beams`` ranges (m, float32) from a scan (:data:`READINGS` ranges, 0 = no return) taken by a
    sensor at ``mount_xy`` (m) and ``mount_yaw`` (rad) in the base frame: beam b is the nearest return, measured
    from the base's origin, whose bearing lies within half a sector of b * 360 / beams degrees; ``range_max``
    where there is none (or all are farther). Readings outside the sensor's range (:data:`RANGE_MIN_M` -
    :data:`RANGE_MAX_M`) are no return, as the simulated sensor gives them."""
    ranges = np.asarray(ranges_m, dtype=float)
    if ranges.shape != (READINGS,):
        raise ValueError(f"a scan has {READINGS} readings, got shape {ranges.shape}")
    valid = (ranges >= RANGE_MIN_M) & (ranges <= RANGE_MAX_M)
    angles = np.radians(np.arange(READINGS)) + mount_yaw
    x = mount_xy[0] + ranges * np.cos(angles)
    y = mount_xy[1] + ranges * np.sin(angles)
    dist = np.hypot(x, y)
    sector = np.round(np.arctan2(y, x) / (2 * math.pi / beams)).astype(int) % beams
    out = np.full(beams, range_max)
    np.minimum.at(out, sector[valid], dist[valid])
    return out.astype(np.float32)


def sensor_scan(
    bearings: np.ndarray, distances: np.ndarray, mount_xy: np.ndarray | tuple[float, float], mount_yaw: float
) -> np.ndarray:
    """The scan a sensor at ``mount_xy``, ``mount_yaw`` (base frame) reports for surface points seen from the base's
    origin at ``bearings`` (rad) and ``distances`` (m; <= 0 or inf: nothing): each point binned to its whole degree
    as the sensor sees it, the nearest per degree, 0 outside the sensor's range. Cast about twice as many rays as
    :data:`READINGS` so that every degree gets a point."""
    d = np.asarray(distances, dtype=float)
    hit = np.isfinite(d) & (d > 0)
    px = d[hit] * np.cos(bearings[hit]) - mount_xy[0]
    py = d[hit] * np.sin(bearings[hit]) - mount_xy[1]
    c, s = math.cos(mount_yaw), math.sin(mount_yaw)
    qx, qy = c * px + s * py, -s * px + c * py
    rng = np.hypot(qx, qy)
    degree = np.round(np.degrees(np.arctan2(qy, qx))).astype(int) % READINGS
    out = np.full(READINGS, np.inf)
    np.minimum.at(out, degree, rng)
    out[~np.isfinite(out) | (out < RANGE_MIN_M) | (out > RANGE_MAX_M)] = 0.0
    return out


def measurement_noise(
    ranges_m: np.ndarray, rng: np.random.Generator, dropout: float = DROPOUT, model: LidarModel = LDS01
) -> np.ndarray:
    """A scan as ``model`` measures it: Gaussian range noise of the datasheet's precision (the LDS-01: 10 mm below
    0.5 m, 3.5 % above), ``dropout`` of the readings lost (0), and readings pushed out of its range lost too."""
    r = np.asarray(ranges_m, dtype=float)
    out = np.where(r > 0, r + rng.normal(0.0, 1.0, r.shape) * model.sigma(r), 0.0)
    out[(rng.random(r.shape) < dropout) | (out < model.range_min_m) | (out > model.range_max_m)] = 0.0
    return out

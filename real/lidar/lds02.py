"""ROBOTIS LDS-02 (LDROBOT LD08) packets: the CRC-8, the vendor's angle correction, encoding and a streaming scan
parser. No I/O here (:mod:`real.lidar.reader` drives the serial port).

Facts from the ROBOTIS e-manual (LDS-02 appendix) and ROBOTIS's driver (``ld08_driver``: ``lipkg``, ``transform``):

- 115200 baud, transmit only: the sensor streams from power-on and takes no command.
- A packet is 47 bytes, all words little-endian::

      54 | 2C | SPEED (deg/s) | START (0.01 deg) | 12 x (DIST mm u16, CONF u8) | END (0.01 deg) | TIME (ms) | CRC

  The CRC-8 covers bytes 0-45: polynomial 0x4D, initial value 0, no reflection, no final XOR (the vendor's table).
- Point ``i`` of a packet is at ``start + i * ((end - start) mod 360) / 11`` degrees. Angles grow *clockwise*
  (the sensor's left-handed frame); a distance of 0 is no return. The sampling rate is fixed at 2.3 kHz, so a
  revolution holds ``2300 * 360 / speed`` points (460 at 5 Hz, about 0.78 deg apart).
- The sensor triangulates: the vendor moves each point to the centre of the lidar's circle with ``x = d + 5.9``,
  ``y = 0.11923 d - 20.14`` (mm), reporting the distance ``hypot(x, y)`` at the counter-clockwise angle
  ``360 - a + atan(y / x)``. This module applies the same correction (:func:`corrected`) and its inverse
  (:func:`raw_distance`, for the emulator).
- The vendor's parser also drops a packet whose angular span exceeds 1.5 times what its speed allows; so does this
  one (``implausible``), which keeps a random byte run that happens to pass the CRC-8 out of the scan, and it drops
  packets of a motor turning slower than :data:`MIN_SPEED_DEG_S` (stopped or stalling: no scan to be had).

The parser bins the corrected points into the 360 one-degree readings every driver hands out (:class:`Scan`),
the nearest point per degree, as the vendor's LaserScan conversion keeps the nearest per bin.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Sequence

import numpy as np

from real.lidar.scan import PacketStream, Protocol, Scan, u16
from robot.lidar import LDS02, READINGS

PACKET_SIZE = 47
HEADER = 0x54
VER_LEN = 0x2C  # version 1, 12 points
POINTS_PER_PACKET = 12
SAMPLE_RATE_HZ = 2300.0
BAUDRATE = LDS02.baudrate
NOMINAL_SPEED_DEG_S = LDS02.rate_hz * 360.0
CRC_POLY = 0x4D
CRC_SPAN = PACKET_SIZE - 1
#: The vendor's triangulation geometry (ld08_driver, transform.cpp, LD_EIGHT), millimetres.
OFFSET_X_MM, OFFSET_Y_MM, SLOPE_Y = 5.9, -20.14, 0.11923
#: Slower than this (deg/s; the datasheet's 5 Hz is 1800) the motor is stopped or stalling: its packets are dropped.
MIN_SPEED_DEG_S = 360.0

_PACKET = struct.Struct("<BBHH" + "HB" * POINTS_PER_PACKET + "HHB")


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


CRC_TABLE = _crc_table()


def crc8(data: bytes) -> int:
    """The CRC-8 of ``data`` (a packet's first 46 bytes)."""
    crc = 0
    for byte in data:
        crc = CRC_TABLE[crc ^ byte]
    return crc


def corrected(raw_angle_deg: np.ndarray, raw_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vendor's correction: raw points (clockwise angle, distance mm > 0) to (counter-clockwise angle in [0,
    360), distance mm) about the centre of the lidar's circle."""
    d = np.asarray(raw_mm, dtype=float)
    x, y = d + OFFSET_X_MM, SLOPE_Y * d + OFFSET_Y_MM
    angle = (360.0 - np.asarray(raw_angle_deg, dtype=float) + np.degrees(np.arctan(y / x))) % 360.0
    return angle, np.hypot(x, y)


def raw_distance(true_mm: np.ndarray) -> np.ndarray:
    """The inverse of :func:`corrected`'s distance: the raw distance (mm) the sensor sends for a point ``true_mm``
    from the circle's centre (solving ``(d + ox)^2 + (k d + oy)^2 = true^2`` for d >= 0)."""
    t = np.asarray(true_mm, dtype=float)
    a = 1.0 + SLOPE_Y**2
    b = 2.0 * (OFFSET_X_MM + SLOPE_Y * OFFSET_Y_MM)
    c = OFFSET_X_MM**2 + OFFSET_Y_MM**2 - t**2
    return (-b + np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / (2 * a)


def shift_deg(raw_mm: np.ndarray) -> np.ndarray:
    """The correction's angle shift (degrees) for raw distances ``raw_mm``."""
    d = np.asarray(raw_mm, dtype=float)
    return np.degrees(np.arctan((SLOPE_Y * d + OFFSET_Y_MM) / (d + OFFSET_X_MM)))


def encode_packet(
    speed_deg_s: float,
    start_deg: float,
    end_deg: float,
    distances_mm: Sequence[int],
    confidences: Sequence[int],
    timestamp_ms: int = 0,
) -> bytes:
    """One 47-byte packet: the motor at ``speed_deg_s``, its 12 points from ``start_deg`` to ``end_deg`` (raw,
    clockwise, [0, 360)), their raw distances (integer mm, 0 = no return) and confidences (0-255)."""
    distances, confs = list(distances_mm), list(confidences)
    if len(distances) != POINTS_PER_PACKET or len(confs) != POINTS_PER_PACKET:
        raise ValueError(f"a packet holds {POINTS_PER_PACKET} points, got {len(distances)} and {len(confs)}")
    if not all(0 <= operator.index(c) <= 0xFF for c in confs):
        raise ValueError("confidences must be 0-255")
    for what, v in (("speed", speed_deg_s), ("start angle", start_deg), ("end angle", end_deg)):
        if not math.isfinite(v):
            raise ValueError(f"{what} must be finite, got {v}")
    fields: list[int] = []
    for dist, conf in zip(distances, confs, strict=True):
        fields += [u16("distance (mm)", dist), conf]
    body = _PACKET.pack(
        HEADER,
        VER_LEN,
        u16("speed (deg/s)", round(speed_deg_s)),
        round(start_deg * 100) % 36000,
        *fields,
        round(end_deg * 100) % 36000,
        u16("timestamp (ms)", timestamp_ms),
        0,
    )[:CRC_SPAN]
    return body + bytes([crc8(body)])


class ScanParser(PacketStream):
    """Finds packets in the byte stream and assembles revolutions. Feed bytes as they arrive, with the host time.

    Resynchronises on ``54 2C``; a packet whose CRC does not match is skipped (``checksum_errors``, and
    ``errors_in_a_row`` since the last valid packet), and so is one whose speed is below :data:`MIN_SPEED_DEG_S` or
    whose angular span its speed cannot explain (``implausible``). A revolution ends when a packet starts at a raw
    angle not above the one before (the sensor passed its zero); it comes out as a :class:`Scan` then. Never raises
    on input; the buffer holds less than two packets.
    """

    start_byte = HEADER
    packet_size = PACKET_SIZE

    def __init__(self) -> None:
        self.implausible = 0
        super().__init__()

    def _new_revolution(self) -> None:
        self._angles: list[np.ndarray] = []
        self._dists: list[np.ndarray] = []
        self._confs: list[np.ndarray] = []
        self._starts: list[float] = []
        self._spans: list[float] = []
        self._speed_sum = 0.0
        self._last_ns = 0

    def second_byte_ok(self, byte: int) -> bool:
        return byte == VER_LEN

    def checksum_ok(self, packet: bytearray) -> bool:
        return crc8(packet[:CRC_SPAN]) == packet[CRC_SPAN]

    def _accept(self, packet: bytes, now_ns: int, out: list[Scan]) -> None:
        fields = _PACKET.unpack_from(packet)
        speed, start, end = fields[2], fields[3] / 100.0, fields[-3] / 100.0
        span = (end - start) % 360.0
        allowed = 1.5 * speed * POINTS_PER_PACKET / SAMPLE_RATE_HZ
        if speed < MIN_SPEED_DEG_S or start >= 360.0 or end >= 360.0 or span > allowed:
            self.implausible += 1
            return
        self.packets += 1
        self.errors_in_a_row = 0
        if self._starts and start <= self._starts[-1]:  # starts only grow within a revolution
            out.append(self._finish())
        dist = np.array(fields[4 : 4 + 2 * POINTS_PER_PACKET : 2], dtype=float)
        conf = np.array(fields[5 : 5 + 2 * POINTS_PER_PACKET : 2], dtype=np.uint16)
        raw_angles = start + np.arange(POINTS_PER_PACKET) * span / (POINTS_PER_PACKET - 1)
        hit = dist > 0
        angle, true_mm = corrected(raw_angles[hit], dist[hit])
        self._angles.append(angle)
        self._dists.append(true_mm)
        self._confs.append(conf[hit])
        self._starts.append(start)
        self._spans.append(span)
        self._speed_sum += speed
        self._last_ns = now_ns

    def _whole(self) -> bool:
        """At most one packet's worth of the circle is missing: the gaps between consecutive packet starts (the
        wrap from the last to the first included), counted in packet spans, leave at most one packet out."""
        starts = np.array(self._starts)
        span = float(np.median(self._spans)) * POINTS_PER_PACKET / (POINTS_PER_PACKET - 1)
        if span <= 0:
            return False
        gaps = np.diff(np.append(starts, starts[0] + 360.0))
        return float(np.maximum(np.round(gaps / span) - 1, 0).sum()) <= 1

    def _finish(self) -> Scan:
        ranges = np.full(READINGS, np.inf)
        intensities = np.zeros(READINGS, dtype=np.uint16)
        if self._angles:
            angle, dist, conf = (np.concatenate(x) for x in (self._angles, self._dists, self._confs))
            degree = np.round(angle).astype(int) % READINGS
            order = np.lexsort((dist, degree))  # by degree, nearest first within each
            first = order[np.unique(degree[order], return_index=True)[1]]
            ranges[degree[first]] = dist[first] / 1000.0
            intensities[degree[first]] = conf[first]
        ranges = np.where(np.isfinite(ranges), ranges, 0.0).astype(np.float32)
        ranges.setflags(write=False)
        intensities.setflags(write=False)
        count = len(self._starts)
        rpm = self._speed_sum / count / 6.0  # deg/s to rpm
        scan = Scan(ranges, intensities, rpm, self._last_ns, count, self._whole())
        self._new_revolution()
        return scan


def encode_revolution(
    ranges_m: np.ndarray,
    first_sample: int,
    samples: int,
    speed_deg_s: float = NOMINAL_SPEED_DEG_S,
    confidence: int = 200,
) -> bytes:
    """Packets for samples ``first_sample`` .. ``first_sample + samples - 1`` of the sensor's stream (``samples`` a
    multiple of 12), sample ``j`` taken at the raw angle ``j * speed / 2300`` degrees (mod 360). ``ranges_m``: (360,)
    the true distances about the circle's centre by counter-clockwise degree, 0 for nothing; each sample sends the
    raw distance and angle whose correction lands on the nearest degree's reading."""
    ranges = np.asarray(ranges_m, dtype=float)
    if ranges.shape != (READINGS,):
        raise ValueError(f"ranges_m must have shape ({READINGS},), got {ranges.shape}")
    if samples % POINTS_PER_PACKET:
        raise ValueError(f"samples must be a multiple of {POINTS_PER_PACKET}, got {samples}")
    step = speed_deg_s / SAMPLE_RATE_HZ
    raw_angle = ((first_sample + np.arange(samples)) * step) % 360.0
    # the raw distance a sample reports sets its correction's shift, which sets the degree it lands on: iterate
    # from 1 m (a shift of 5.6 deg; -0.4 at 0.16 m, 6.7 at 8 m; a sample without a return keeps looking there)
    dist = np.zeros(samples, dtype=np.int64)
    for _ in range(4):
        look = np.round((360.0 - raw_angle + shift_deg(np.where(dist > 0, dist, 1000))) % 360.0).astype(int) % READINGS
        true_mm = ranges[look] * 1000.0
        dist = np.where(true_mm > 0, np.rint(raw_distance(true_mm)), 0).astype(np.int64)
    # where that did not settle (an edge between near and far), the sample returns nothing rather than a false point
    landing, seen_mm = corrected(raw_angle, np.maximum(dist, 1))
    off = np.abs(ranges[np.round(landing).astype(int) % READINGS] * 1000.0 - seen_mm) > 5.0
    dist[off] = 0
    packets = []
    for k in range(0, samples, POINTS_PER_PACKET):
        dd = dist[k : k + POINTS_PER_PACKET].tolist()
        conf = [confidence if x > 0 else 0 for x in dd]
        start, end = raw_angle[k], raw_angle[k + POINTS_PER_PACKET - 1]
        stamp = int((first_sample + k) / SAMPLE_RATE_HZ * 1000) % 30000
        packets.append(encode_packet(speed_deg_s, start, end, dd, conf, stamp))
    return b"".join(packets)


PROTOCOL = Protocol("LDS-02", BAUDRATE, ScanParser, b"", b"", "the LD08's CRC-8 (polynomial 0x4D)")

"""ROBOTIS LDS-01 (Hitachi-LG HLS-LFCD2) packets: encoding, the checksum and a streaming scan parser. No I/O here
(:mod:`real.lidar.reader` drives the serial port).

The layout and the angles follow ROBOTIS's ROS driver (``hls_lfcd_lds_driver``, ``lfcd_laser.cpp``):

- 230400 baud. The host sends ``b`` to start the motor and the stream, ``e`` to stop them.
- One revolution is 60 packets of 42 bytes, six readings (one degree apart) in each::

      FA | A0+n | SPEED_L SPEED_H | 6 x (INT_L INT_H RANGE_L RANGE_H 00 00) | CHK_L CHK_H

  ``n``: the packet number, 0-59; SPEED: the motor speed in 0.1 rpm (nominal 300 rpm: 3000); INT: the intensity;
  RANGE: the distance in millimetres, 0 for no return; two reserved bytes; all words little-endian.
- Reading ``k = 6 n + i`` of a revolution is the distance at ``359 - k`` degrees, counter-clockwise from the
  sensor's forward axis (the driver stores it at ``ranges[359 - k]``). The sensor measures 0.12-3.5 m.

The checksum is the Neato XV-11 word checksum, as kaiaai/LDS (``LDS_HLS_LFCD2.cpp``) checks it; ROBOTIS's own
driver does not check it at all. Bytes 0-39 are read as 20 little-endian words ``w``; ``c = (c << 1) + w`` on 32
bits; the checksum is ``((c & 0x7FFF) + (c >> 15)) & 0x7FFF``. It is weak: bits 30 and 31 of ``c`` never reach
it, so it does not cover bits 3-7 of the packet number byte (a packet number can change by a multiple of 8
unnoticed; the parser then sees a revolution wrap), the top 4 bits of the speed, the top 3 of the first intensity,
the top 2 of the first range and the top bit of the second intensity.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Sequence

import numpy as np

from real.lidar.scan import U16_MAX, PacketStream, Protocol, Scan, u16
from robot.lidar import LDS01, RANGE_MAX_M, RANGE_MIN_M

PACKET_SIZE = 42
PACKETS_PER_SCAN = 60
READINGS_PER_PACKET = 6
READINGS_PER_SCAN = PACKETS_PER_SCAN * READINGS_PER_PACKET  # one per degree
START_BYTE = 0xFA
INDEX_BASE = 0xA0  # byte 1 is INDEX_BASE + packet number
BAUDRATE = LDS01.baudrate
NOMINAL_RPM = 300.0
START_COMMAND = b"b"
STOP_COMMAND = b"e"

#: Packets (of 60) a scan needs to count as whole: one lost packet (6 degrees) is tolerated.
WHOLE_PACKETS = 59

CHECKSUM_SPAN = 40  # the checksum covers bytes 0-39
_PACKET = struct.Struct("<BBH" + "HHH" * READINGS_PER_PACKET + "H")  # start, index, speed, readings, checksum
_WORDS = struct.Struct(f"<{CHECKSUM_SPAN // 2}H")


def checksum(data: bytes) -> int:
    """The 15-bit word checksum of a packet's bytes 0-39 (``data``: those 40 bytes, or the whole packet)."""
    if len(data) < CHECKSUM_SPAN:
        raise ValueError(f"the checksum covers {CHECKSUM_SPAN} bytes, got {len(data)}")
    chk32 = 0
    for word in _WORDS.unpack_from(data):
        chk32 = ((chk32 << 1) + word) & 0xFFFFFFFF
    return ((chk32 & 0x7FFF) + (chk32 >> 15)) & 0x7FFF


def encode_packet(number: int, rpm: float, ranges_mm: Sequence[int], intensities: Sequence[int]) -> bytes:
    """One 42-byte packet: packet ``number`` (0-59) of a revolution, the motor at ``rpm``, six readings in wire
    order (reading ``i`` is at ``359 - 6 * number - i`` degrees) as integer millimetres and intensities."""
    if not 0 <= operator.index(number) < PACKETS_PER_SCAN:
        raise ValueError(f"packet number must be 0-{PACKETS_PER_SCAN - 1}, got {number}")
    if not math.isfinite(rpm):
        raise ValueError(f"motor speed must be finite, got {rpm}")
    speed = u16("motor speed (0.1 rpm)", round(rpm * 10))
    ranges_mm, intensities = list(ranges_mm), list(intensities)
    if len(ranges_mm) != READINGS_PER_PACKET or len(intensities) != READINGS_PER_PACKET:
        raise ValueError(
            f"a packet holds {READINGS_PER_PACKET} readings, got {len(ranges_mm)} ranges and "
            f"{len(intensities)} intensities"
        )
    fields: list[int] = []
    for r, inten in zip(ranges_mm, intensities, strict=True):
        fields += [u16("intensity", inten), u16("range (mm)", r), 0]
    body = _PACKET.pack(START_BYTE, INDEX_BASE + number, speed, *fields, 0)[:CHECKSUM_SPAN]
    return body + checksum(body).to_bytes(2, "little")


def encode_scan(ranges_m: np.ndarray, intensities: np.ndarray | None = None, rpm: float = NOMINAL_RPM) -> bytes:
    """A revolution as the sensor sends it: 60 packets in wire order.

    ``ranges_m``: shape (360,), metres, indexed by the angle in whole degrees counter-clockwise from forward; 0 (or
    anything outside [RANGE_MIN_M, RANGE_MAX_M], NaN included) is sent as 0, no return; values are rounded to the
    millimetre. ``intensities``: shape (360,), same indexing, 0-65535 (default 0).
    """
    ranges = np.asarray(ranges_m, dtype=np.float64)
    if ranges.shape != (READINGS_PER_SCAN,):
        raise ValueError(f"ranges_m must have shape ({READINGS_PER_SCAN},), got {ranges.shape}")
    inten = np.zeros(READINGS_PER_SCAN) if intensities is None else np.asarray(intensities, dtype=np.float64)
    if inten.shape != (READINGS_PER_SCAN,):
        raise ValueError(f"intensities must have shape ({READINGS_PER_SCAN},), got {inten.shape}")
    if not (np.isfinite(inten).all() and (inten >= 0).all() and (np.rint(inten) <= U16_MAX).all()):
        raise ValueError(f"intensities must be 0-{U16_MAX}")
    with np.errstate(invalid="ignore"):
        measured = np.isfinite(ranges) & (ranges >= RANGE_MIN_M) & (ranges <= RANGE_MAX_M)
    mm = np.where(measured, np.rint(np.where(measured, ranges, 0.0) * 1000.0), 0).astype(np.int64)
    # reading k is the angle 359 - k: wire order is the angles reversed
    mm_wire, inten_wire = mm[::-1].tolist(), np.rint(inten).astype(np.int64)[::-1].tolist()
    n = READINGS_PER_PACKET
    return b"".join(
        encode_packet(p, rpm, mm_wire[p * n : (p + 1) * n], inten_wire[p * n : (p + 1) * n])
        for p in range(PACKETS_PER_SCAN)
    )


class ScanParser(PacketStream):
    """Finds packets in the byte stream and assembles revolutions. Feed bytes as they arrive, with the host time.

    Resynchronises on ``FA`` followed by a valid packet number byte; a packet whose checksum does not match is
    skipped (``checksum_errors``; ``errors_in_a_row`` counts them since the last valid packet). A revolution ends
    with packet 59, or when a packet number not above the previous one arrives (packet 0 of the next revolution,
    or a wrap past lost packets); it comes out as a :class:`Scan` then. Never raises on input; the buffer holds
    less than two packets.
    """

    start_byte = START_BYTE
    packet_size = PACKET_SIZE

    def _new_revolution(self) -> None:
        self._ranges_mm = [0] * READINGS_PER_SCAN
        self._intensities = [0] * READINGS_PER_SCAN
        self._count = 0
        self._last_number = -1
        self._speed_sum = 0
        self._last_ns = 0

    def second_byte_ok(self, byte: int) -> bool:
        return INDEX_BASE <= byte < INDEX_BASE + PACKETS_PER_SCAN

    def checksum_ok(self, packet: bytearray) -> bool:
        return checksum(packet) == int.from_bytes(packet[CHECKSUM_SPAN:PACKET_SIZE], "little")

    def _accept(self, packet: bytes, now_ns: int, out: list[Scan]) -> None:
        fields = _PACKET.unpack_from(packet)
        number = fields[1] - INDEX_BASE
        self.packets += 1
        self.errors_in_a_row = 0
        if self._count and number <= self._last_number:
            out.append(self._finish())
        first_angle = READINGS_PER_SCAN - 1 - READINGS_PER_PACKET * number
        for i in range(READINGS_PER_PACKET):
            self._intensities[first_angle - i] = fields[3 + 3 * i]
            self._ranges_mm[first_angle - i] = fields[4 + 3 * i]
        self._count += 1
        self._last_number = number
        self._speed_sum += fields[2]
        self._last_ns = now_ns
        if number == PACKETS_PER_SCAN - 1:
            out.append(self._finish())

    def _finish(self) -> Scan:
        ranges = np.array(self._ranges_mm, dtype=np.float32) / np.float32(1000.0)
        intensities = np.array(self._intensities, dtype=np.uint16)
        ranges.setflags(write=False)
        intensities.setflags(write=False)
        rpm = self._speed_sum / self._count / 10.0
        scan = Scan(ranges, intensities, rpm, self._last_ns, self._count, self._count >= WHOLE_PACKETS)
        self._new_revolution()
        return scan


PROTOCOL = Protocol("LDS-01", BAUDRATE, ScanParser, START_COMMAND, STOP_COMMAND, "the Neato XV-11 word checksum")

"""What every laser scanner driver hands out (a :class:`Scan`) and what the threaded reader needs to know of a
sensor's wire protocol (a :class:`Protocol`). No I/O here."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol as TypingProtocol

import numpy as np

U16_MAX = 0xFFFF


def u16(what: str, value: int) -> int:
    """``value`` as an unsigned 16-bit packet field; ValueError naming ``what`` when it does not fit."""
    value = operator.index(value)
    if not 0 <= value <= U16_MAX:
        raise ValueError(f"{what} must be 0-{U16_MAX}, got {value}")
    return value


@dataclass(frozen=True)
class Scan:
    """One revolution. ``ranges_m``: (360,) float32 metres indexed by the angle in degrees counter-clockwise from
    the sensor's forward axis, 0 for no return or a reading whose packet was lost (outside the sensor's range its
    value is passed on as is); ``intensities``: (360,) uint16, same indexing, 0 where lost; ``rpm``: the motor speed
    averaged over the packets received; ``stamp_ns``: host ``time.monotonic_ns()`` when the revolution's last
    packet was parsed; ``packets``: how many of its packets arrived valid; ``whole``: at most one packet's worth of
    the circle is missing. The arrays are read-only (a scan is shared between threads)."""

    ranges_m: np.ndarray
    intensities: np.ndarray
    rpm: float
    stamp_ns: int
    packets: int
    whole: bool


class StreamParser(TypingProtocol):
    """A streaming parser: bytes in (with their host arrival time), finished revolutions out; never raises on
    input. ``packets``: valid packets so far; ``checksum_errors``: candidates whose checksum failed;
    ``errors_in_a_row``: failures since the last valid packet."""

    packets: int
    checksum_errors: int
    errors_in_a_row: int

    def feed(self, data: bytes, now_ns: int) -> list[Scan]: ...


@dataclass(frozen=True)
class Protocol:
    """A sensor's wire protocol as the reader drives it: its model name, baud rate, the parser, the bytes that
    start and stop it (empty for a sensor that streams from power-on and takes no command) and, for error
    messages, what its checksum is."""

    model: str
    baudrate: int
    parser: Callable[[], StreamParser]
    start_command: bytes
    stop_command: bytes
    checksum: str


class PacketStream:
    """The framing both sensors' parsers share: bytes are buffered and searched for a packet that starts with
    :attr:`start_byte` and a second byte :meth:`second_byte_ok` accepts, :attr:`packet_size` long, whose checksum
    :meth:`checksum_ok` passes; a failed checksum skips one byte (``checksum_errors``, and ``errors_in_a_row``
    since the last valid packet) to resynchronise. Each packet goes to :meth:`_accept`, which appends the
    revolutions it completes to ``out``. Never raises on input; the buffer holds less than two packets."""

    start_byte: int
    packet_size: int

    def __init__(self) -> None:
        self._buf = bytearray()
        self.packets = 0
        self.checksum_errors = 0
        self.errors_in_a_row = 0
        self.discarded_bytes = 0
        self._new_revolution()

    def _new_revolution(self) -> None:
        raise NotImplementedError

    def second_byte_ok(self, byte: int) -> bool:
        raise NotImplementedError

    def checksum_ok(self, packet: bytearray) -> bool:
        raise NotImplementedError

    def _accept(self, packet: bytes, now_ns: int, out: list[Scan]) -> None:
        raise NotImplementedError

    def feed(self, data: bytes, now_ns: int) -> list[Scan]:
        """The revolutions that ``data`` completes; ``now_ns``: host ``time.monotonic_ns()`` of its arrival."""
        out: list[Scan] = []
        size = self.packet_size
        for start in range(0, len(data), size):  # a packet's worth at a time: the buffer stays small
            self._buf += data[start : start + size]
            self._drain(now_ns, out)
        return out

    def clear(self) -> None:
        """Forget buffered bytes and the revolution in progress (the counters stay)."""
        self._buf.clear()
        self._new_revolution()

    def _drain(self, now_ns: int, out: list[Scan]) -> None:
        buf, size = self._buf, self.packet_size
        while True:  # every pass returns or removes at least one byte
            start = buf.find(self.start_byte)
            if start < 0:
                self.discarded_bytes += len(buf)
                buf.clear()
                return
            if start:
                self.discarded_bytes += start
                del buf[:start]
            if len(buf) < 2:
                return
            if not self.second_byte_ok(buf[1]):
                self.discarded_bytes += 1
                del buf[:1]
                continue
            if len(buf) < size:
                return
            if not self.checksum_ok(buf):
                self.checksum_errors += 1
                self.errors_in_a_row += 1
                self.discarded_bytes += 1
                del buf[:1]  # resynchronise on the next start byte
                continue
            packet = bytes(buf[:size])
            del buf[:size]
            self._accept(packet, now_ns, out)

"""Feetech STS/SCS serial bus servo packets: encoding, the checksum and a streaming frame parser.

Packet layout (Feetech "FT-SCS" communication protocol; the vendor's ``feetech-servo-sdk`` is the reference peer in
the tests):

    FF FF | ID | LEN | INST (or ERROR) | PARAM ... | CHK

LEN counts the parameters plus two (the instruction or error byte and the checksum); CHK is the one's complement of
the low byte of the sum of every byte from ID to the last parameter. An instruction packet and a status packet have
the same shape: byte 4 is the instruction going to a servo and the error bits coming back, so which one a frame is
follows from the direction it travels, not its bytes. Multi-byte values are little-endian on the STS series (the
SCS series is big-endian; it is not driven here). There is no byte stuffing, hence no reliable resynchronisation
inside a frame: a frame whose checksum fails is skipped a byte at a time.

Instructions: ping, read (``[addr, n]``), write (``[addr, data...]``), reg write (held until action), action, sync
write (broadcast ``[addr, n, id, n data bytes, id, ...]``, no reply) and sync read (broadcast ``[addr, n, id, ...]``:
each listed servo answers in turn with an ordinary read reply).

Written here rather than taken from ``feetech-servo-sdk``: the SDK's port handler busy-polls the serial port, keeps
its byte order in a module global and has no thread-safe bus; the tests use it as the reference peer instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_ID = 0xFD
#: The longest frame the vendor SDK receives (bytes, header to checksum); LEN is at most this minus 4.
MAX_FRAME = 250


class Instruction(IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83


#: Status error bits (the vendor SDK's names): the servo reports its condition with every reply.
ERROR_BITS = {
    0x01: "input voltage",
    0x02: "angle sensor",
    0x04: "overheating",
    0x08: "overcurrent",
    0x20: "overload",
}


def checksum(body: bytes) -> int:
    """One's complement of the low byte of the sum of ``body`` (ID to the last parameter)."""
    return ~sum(body) & 0xFF


def encode(ident: int, code: int, params: bytes = b"") -> bytes:
    """A frame to (instruction) or from (status: ``code`` is the error byte) servo ``ident``."""
    if not 0 <= ident <= BROADCAST_ID:
        raise ValueError(f"servo id must be 0-{BROADCAST_ID}, got {ident}")
    if not 0 <= code <= 0xFF:
        raise ValueError(f"instruction or error byte must be 0-255, got {code}")
    if len(params) + 6 > MAX_FRAME:
        raise ValueError(f"{len(params)} parameter bytes do not fit a {MAX_FRAME}-byte frame")
    body = bytes([ident, len(params) + 2, code]) + bytes(params)
    return HEADER + body + bytes([checksum(body)])


def error_text(error: int) -> str:
    """The status error bits by name (``"none"`` for 0)."""
    names = [name for bit, name in ERROR_BITS.items() if error & bit]
    unknown = error & ~sum(ERROR_BITS)
    if unknown:
        names.append(f"unknown bits 0x{unknown:02X}")
    return ", ".join(names) or "none"


@dataclass(frozen=True)
class Frame:
    """A parsed frame: ``code`` is the instruction (to a servo) or the error bits (from one)."""

    ident: int
    code: int
    params: bytes

    @property
    def error(self) -> int:
        """The error bits of a reply (a frame from a servo)."""
        return self.code


class FrameParser:
    """Finds frames in a byte stream. Feed bytes as they arrive; complete, checksum-valid frames come out.

    Skips to the next ``FF FF``; a frame with an id above the broadcast id or a length below 2 is no frame (one byte
    dropped); a frame whose checksum fails is counted (``checksum_errors``) and one byte dropped. Never raises on
    input; the buffer never holds more than one frame's worth of bytes."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.checksum_errors = 0
        self.discarded_bytes = 0

    def clear(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        for start in range(0, len(data), MAX_FRAME):  # the buffer stays small whatever arrives at once
            self._buf += data[start : start + MAX_FRAME]
            self._drain(out)
        return out

    def _drain(self, out: list[Frame]) -> None:
        buf = self._buf
        while True:  # every pass returns or removes at least one byte
            start = buf.find(HEADER)
            if start < 0:
                keep = 1 if buf[-1:] == b"\xff" else 0  # a header may be split across reads
                self.discarded_bytes += len(buf) - keep
                del buf[: len(buf) - keep]
                return
            if start:
                self.discarded_bytes += start
                del buf[:start]
            if len(buf) < 4:
                return
            ident, length = buf[2], buf[3]
            if ident > BROADCAST_ID or length < 2 or length + 4 > MAX_FRAME:
                self.discarded_bytes += 1
                del buf[:1]
                continue
            size = length + 4
            if len(buf) < size:
                return
            if checksum(buf[2 : size - 1]) != buf[size - 1]:
                self.checksum_errors += 1
                self.discarded_bytes += 1
                del buf[:1]
                continue
            out.append(Frame(ident, buf[4], bytes(buf[5 : size - 1])))
            del buf[:size]

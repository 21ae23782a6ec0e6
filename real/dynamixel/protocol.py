"""Dynamixel Protocol 2.0 packets: encoding, CRC-16, byte stuffing and a streaming status/instruction parser.

Packet layout (ROBOTIS e-manual, "DYNAMIXEL Protocol 2.0"):

    FF FF FD 00 | ID | LEN_L LEN_H | INST | PARAM ... | CRC_L CRC_H

LEN counts the instruction, the (stuffed) parameters and the CRC. The CRC-16 (polynomial 0x8005, initial value 0,
no reflection) covers every byte from the header to the last parameter. Byte stuffing: inside the instruction and
parameter field, every ``FF FF FD`` is followed by an extra ``FD``; the receiver removes it. A status packet has
instruction 0x55 and an error byte before its parameters (bit 7: the hardware alert, bits 0-6: the error number).

Written here rather than taken from ``dynamixel-sdk``: the SDK couples packets to its own port handler, which
busy-polls the serial port and has no thread-safe bus; it is used in the tests as the reference peer instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_ID = 252
STATUS_INSTRUCTION = 0x55


class Instruction(IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    FACTORY_RESET = 0x06
    REBOOT = 0x08
    CLEAR = 0x10
    STATUS = 0x55
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83
    FAST_SYNC_READ = 0x8A
    BULK_READ = 0x92
    BULK_WRITE = 0x93
    FAST_BULK_READ = 0x9A


#: Status packet error numbers (bits 0-6 of the error byte), e-manual "Status Packet".
ERROR_NAMES = {
    0x01: "result fail",
    0x02: "instruction error",
    0x03: "CRC error",
    0x04: "data range error",
    0x05: "data length error",
    0x06: "data limit error",
    0x07: "access error",
}
ALERT_BIT = 0x80


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16 with polynomial 0x8005, initial value 0, as specified for Protocol 2.0."""
    crc = 0
    for b in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]) & 0xFFFF
    return crc


def stuff(field: bytes) -> bytes:
    """Insert ``FD`` after every ``FF FF FD`` (applied to the instruction + parameter field)."""
    return field.replace(b"\xff\xff\xfd", b"\xff\xff\xfd\xfd")


def unstuff(field: bytes) -> bytes:
    """Remove the ``FD`` stuffed after every ``FF FF FD``."""
    return field.replace(b"\xff\xff\xfd\xfd", b"\xff\xff\xfd")


def encode(ident: int, instruction: int, params: bytes = b"") -> bytes:
    """A complete packet for ``ident`` (0-252, or 254 broadcast) with stuffing and CRC."""
    if not (0 <= ident <= MAX_ID or ident == BROADCAST_ID):
        raise ValueError(f"Dynamixel id must be 0-{MAX_ID} or {BROADCAST_ID} (broadcast), got {ident}")
    body = stuff(bytes([instruction]) + bytes(params))
    length = len(body) + 2
    if length > 0xFFFF:
        raise ValueError(f"packet too long: {length} bytes after the length field")
    packet = HEADER + bytes([ident, length & 0xFF, length >> 8]) + body
    crc = crc16(packet)
    return packet + bytes([crc & 0xFF, crc >> 8])


def encode_status(ident: int, error: int = 0, params: bytes = b"") -> bytes:
    """A status packet (what a servo replies)."""
    return encode(ident, STATUS_INSTRUCTION, bytes([error]) + bytes(params))


def encode_fast_status(blocks: list[tuple[int, int, bytes]]) -> bytes:
    """The single status packet answering a Fast Sync Read: ``blocks`` are (error, id, data) in request order.

    Layout (e-manual "Fast Sync Read"; parsed the same way by dynamixel-sdk's ``fastSyncRead``): the header with
    id 0xFE, LEN = 1 + sum(4 + len(data)), instruction 0x55, then per servo ``error id data crc`` where each crc is
    the CRC of every byte before it, so the last one is the packet's CRC. The field is not byte-stuffed.
    """
    length = 1 + sum(4 + len(d) for _, _, d in blocks)
    out = bytearray(HEADER + bytes([BROADCAST_ID, length & 0xFF, length >> 8, STATUS_INSTRUCTION]))
    for error, ident, data in blocks:
        out += bytes([error, ident]) + bytes(data)
        crc = crc16(bytes(out))
        out += bytes([crc & 0xFF, crc >> 8])
    return bytes(out)


def split_fast_status(pkt: Packet, n_servos: int, data_len: int) -> list[tuple[int, int, bytes]]:
    """(error, id, data) of each servo in a Fast Sync Read reply (``pkt`` as the parser returns it)."""
    blocks, p = [], pkt.params
    error = pkt.error
    for k in range(n_servos):
        base = k * (data_len + 4) - (1 if k else 0)  # the first block's error byte is ``pkt.error``
        if k:
            error = p[base]
            base += 1
        if base + 1 + data_len > len(p):
            raise ValueError(f"fast sync read reply too short for {n_servos} servos x {data_len} bytes")
        blocks.append((error, p[base], bytes(p[base + 1 : base + 1 + data_len])))
    return blocks


@dataclass(frozen=True)
class Packet:
    """A decoded packet. For a status packet, ``error`` is the error byte and ``params`` follow it."""

    ident: int
    instruction: int
    params: bytes
    error: int = 0

    @property
    def is_status(self) -> bool:
        return self.instruction == STATUS_INSTRUCTION

    @property
    def alert(self) -> bool:
        """The servo reports a hardware error (read Hardware Error Status, register 70)."""
        return bool(self.error & ALERT_BIT)

    @property
    def error_number(self) -> int:
        return self.error & 0x7F

    def error_text(self) -> str:
        parts = []
        if self.error_number:
            parts.append(ERROR_NAMES.get(self.error_number, f"unknown error {self.error_number}"))
        if self.alert:
            parts.append("hardware alert")
        return ", ".join(parts) or "no error"


class PacketParser:
    """Finds packets in a byte stream. Feed bytes as they arrive; complete, CRC-checked packets come out.

    Garbage before a header, truncated packets and packets with a bad CRC are skipped (counted in
    ``crc_errors`` / ``discarded_bytes``); the parser never raises on input and its buffer stays bounded.
    """

    MAX_LENGTH = 1024  # the largest LEN accepted; longer claims are treated as noise

    def __init__(self) -> None:
        self._buf = bytearray()
        self.crc_errors = 0
        self.discarded_bytes = 0

    def feed(self, data: bytes) -> list[Packet]:
        self._buf += data
        out = []
        while True:
            start = self._buf.find(HEADER)
            if start < 0:
                # Keep a possible partial header at the end.
                keep = (
                    3
                    if self._buf.endswith(b"\xff\xff\xfd")
                    else 2
                    if self._buf.endswith(b"\xff\xff")
                    else (1 if self._buf.endswith(b"\xff") else 0)
                )
                self.discarded_bytes += len(self._buf) - keep
                del self._buf[: len(self._buf) - keep]
                return out
            if start:
                self.discarded_bytes += start
                del self._buf[:start]
            if len(self._buf) < 7:
                return out
            length = self._buf[5] | (self._buf[6] << 8)
            if length < 3 or length > self.MAX_LENGTH:
                self.discarded_bytes += 1
                del self._buf[:1]
                continue
            total = 7 + length
            if len(self._buf) < total:
                return out
            raw = bytes(self._buf[:total])
            crc = raw[-2] | (raw[-1] << 8)
            if crc16(raw[:-2]) != crc:
                self.crc_errors += 1
                self.discarded_bytes += 1
                del self._buf[:1]  # resynchronise on the next header
                continue
            del self._buf[:total]
            # Fast read replies (status packets from the broadcast id) are not byte-stuffed.
            fast = raw[4] == BROADCAST_ID and raw[7] == STATUS_INSTRUCTION
            body = raw[7:-2] if fast else unstuff(raw[7:-2])
            ident, instruction = raw[4], body[0]
            if instruction == STATUS_INSTRUCTION:
                if len(body) < 2:
                    self.discarded_bytes += total
                    continue
                out.append(Packet(ident, instruction, bytes(body[2:]), error=body[1]))
            else:
                out.append(Packet(ident, instruction, bytes(body[1:])))

    def clear(self) -> None:
        self._buf.clear()


def decode(data: bytes) -> Packet:
    """Exactly one packet from ``data`` (raises ValueError otherwise)."""
    parser = PacketParser()
    packets = parser.feed(data)
    if len(packets) != 1 or parser.discarded_bytes or parser._buf:
        raise ValueError(f"expected exactly one valid packet, got {len(packets)} ({data.hex(' ')})")
    return packets[0]

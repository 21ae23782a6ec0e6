"""Dynamixel Protocol 2.0 packets against the e-manual's published examples, stuffing and a fuzzed parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from real.dynamixel.protocol import (
    BROADCAST_ID,
    Instruction,
    Packet,
    PacketParser,
    crc16,
    decode,
    encode,
    encode_status,
    stuff,
    unstuff,
)

# Packet examples printed in the ROBOTIS e-manual, "DYNAMIXEL Protocol 2.0" (ping, read, write, reboot, status).
EMANUAL = [
    (lambda: encode(1, Instruction.PING), "FF FF FD 00 01 03 00 01 19 4E"),
    (lambda: encode(BROADCAST_ID, Instruction.PING), "FF FF FD 00 FE 03 00 01 31 42"),
    (lambda: encode_status(1, 0, bytes([0x06, 0x04, 0x26])), "FF FF FD 00 01 07 00 55 00 06 04 26 65 5D"),
    (lambda: encode(1, Instruction.READ, bytes([0x84, 0x00, 0x04, 0x00])), "FF FF FD 00 01 07 00 02 84 00 04 00 1D 15"),
    (
        lambda: encode(1, Instruction.WRITE, bytes([0x74, 0x00, 0x00, 0x02, 0x00, 0x00])),
        "FF FF FD 00 01 09 00 03 74 00 00 02 00 00 CA 89",
    ),
    (lambda: encode(1, Instruction.REBOOT), "FF FF FD 00 01 03 00 08 2F 4E"),
    (lambda: encode_status(1), "FF FF FD 00 01 04 00 55 00 A1 0C"),
]


@pytest.mark.parametrize(("build", "expected"), EMANUAL)
def test_emanual_packet_examples(build, expected):
    raw = bytes.fromhex(expected)
    assert build() == raw
    pkt = decode(raw)
    assert encode(pkt.ident, pkt.instruction, (bytes([pkt.error]) if pkt.is_status else b"") + pkt.params) == raw


def test_crc_covers_the_header():
    assert crc16(bytes.fromhex("FF FF FD 00 01 03 00 01")) == 0x4E19


def test_status_fields():
    pkt = decode(bytes.fromhex("FF FF FD 00 01 07 00 55 00 06 04 26 65 5D"))
    assert pkt == Packet(1, 0x55, bytes([0x06, 0x04, 0x26]), 0)
    assert int.from_bytes(pkt.params[:2], "little") == 1030  # XM430-W350 model number
    alert = decode(encode_status(3, 0x80 | 0x04))
    assert alert.alert and alert.error_number == 4 and alert.error_text() == "data range error, hardware alert"


def test_byte_stuffing_round_trip_and_length():
    params = bytes([0x10, 0xFF, 0xFF, 0xFD, 0x00, 0xFF, 0xFF, 0xFD])
    raw = encode(7, Instruction.WRITE, params)
    assert b"\xff\xff\xfd\xfd" in raw[7:]
    assert int.from_bytes(raw[5:7], "little") == len(raw) - 7
    assert decode(raw).params == params
    assert unstuff(stuff(b"\xff\xff\xfd\xff\xff\xfd")) == b"\xff\xff\xfd\xff\xff\xfd"


def test_parser_handles_noise_splits_and_bad_crc():
    good = [encode_status(1, 0, b"\x01\x02"), encode_status(2, 0, b"\x03\x04")]
    corrupt = bytearray(encode_status(3, 0, b"\x05"))
    corrupt[-1] ^= 0x01
    stream = b"\x00\xff\x12" + good[0] + bytes(corrupt) + b"\xff\xff" + good[1]
    parser = PacketParser()
    got = []
    for i in range(len(stream)):  # one byte at a time
        got += parser.feed(stream[i : i + 1])
    assert [(p.ident, p.params) for p in got] == [(1, b"\x01\x02"), (2, b"\x03\x04")]
    assert parser.crc_errors == 1


def test_bad_ids_are_refused():
    with pytest.raises(ValueError, match="0-252 or 254"):
        encode(253, Instruction.PING)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_parser_never_crashes_and_accepts_only_valid_crc(data):
    parser = PacketParser()
    for pkt in parser.feed(data):
        # Whatever came out must re-encode to a packet with a valid CRC that decodes to itself.
        again = encode(pkt.ident, pkt.instruction, (bytes([pkt.error]) if pkt.is_status else b"") + pkt.params)
        assert decode(again) == pkt
    assert len(parser._buf) <= PacketParser.MAX_LENGTH + 7


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 252),
    st.binary(max_size=60),
    st.integers(0, 1000),
    st.integers(0, 7),
)
def test_mutated_packets_are_rejected(ident, params, position, bit):
    raw = bytearray(encode(ident, Instruction.WRITE, params))
    pos = position % len(raw)
    raw[pos] ^= 1 << bit
    packets = PacketParser().feed(bytes(raw))
    original = decode(encode(ident, Instruction.WRITE, params))
    # CRC-16 detects every single-bit error: a flipped bit never yields a packet, let alone a wrong one.
    assert packets == [], (original, packets)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\xff", b"\xfd", b"\x00", b"\x12"]), max_size=40).map(b"".join))
def test_stuffing_round_trips_on_header_like_bytes(field):
    stuffed = stuff(field)
    assert unstuff(stuffed) == field
    assert b"\xff\xff\xfd\x00" not in stuffed  # a stuffed field can never look like a header

"""LDS-01 packets and scans: the checksum by hand, the wire layout and angles, round trips, resynchronisation, a
fuzzed parser, and the reader over a pseudo-terminal (start/stop commands, fresh and stale scans, corrupt packets,
a vanished port)."""

from __future__ import annotations

import os
import random
import time

import numpy as np
import pytest
from pty_sensor import SensorWriter, read_master

from real.lidar.lds01 import (
    PACKET_SIZE,
    PACKETS_PER_SCAN,
    START_BYTE,
    ScanParser,
    checksum,
    encode_packet,
    encode_scan,
)
from real.lidar.reader import ChecksumFailures, LdsReader, LidarError, LidarTimeout, StaleScan


def reference_checksum(packet: bytes) -> int:
    """The XV-11 word checksum written again, byte by byte, as a check on :func:`checksum`."""
    c = 0
    for i in range(0, 40, 2):
        c = (2 * c + packet[i] + 256 * packet[i + 1]) % 2**32
    return (c % 2**15 + c // 2**15) % 2**15


def valid_windows(stream: bytes) -> int:
    """How many 42-byte windows of ``stream`` are packets with a valid start, number and checksum."""
    count, p = 0, stream.find(START_BYTE)
    while 0 <= p <= len(stream) - PACKET_SIZE:
        window = stream[p : p + PACKET_SIZE]
        if 0xA0 <= window[1] < 0xA0 + PACKETS_PER_SCAN and reference_checksum(window) == int.from_bytes(
            window[40:], "little"
        ):
            count += 1
        p = stream.find(START_BYTE, p + 1)
    return count


def random_scan(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ranges = rng.uniform(0.12, 3.5, 360)
    ranges[rng.random(360) < 0.1] = 0.0  # some angles without a return
    return ranges, rng.integers(0, 4000, 360).astype(float)


# -- checksum and layout ------------------------------------------------------------------------------------------
def test_checksum_of_a_packet_worked_by_hand():
    # Packet 0 with every other byte 0: the only nonzero word is w0 = 0xA0FA, shifted left 19 times:
    # 0xA0FA << 19 = 0x5_07D0_0000, kept to 32 bits 0x07D0_0000; low 15 bits 0; >> 15 = 0x0FA0; sum 0x0FA0.
    assert checksum(bytes([0xFA, 0xA0]) + bytes(38)) == 0x0FA0
    assert encode_packet(0, 0.0, [0] * 6, [0] * 6) == bytes([0xFA, 0xA0]) + bytes(38) + bytes([0xA0, 0x0F])


def test_packet_layout_and_checksum_agree_with_a_second_implementation():
    ranges, intensities = [120, 250, 3500, 0, 65535, 1], [7, 0, 400, 65535, 3, 9]
    raw = encode_packet(17, 301.3, ranges, intensities)
    assert len(raw) == PACKET_SIZE and raw[:2] == bytes([0xFA, 0xA0 + 17])
    assert int.from_bytes(raw[2:4], "little") == 3013  # 0.1 rpm units
    for i in range(6):
        reading = raw[4 + 6 * i : 10 + 6 * i]
        assert int.from_bytes(reading[:2], "little") == intensities[i]
        assert int.from_bytes(reading[2:4], "little") == ranges[i]
        assert reading[4:] == b"\x00\x00"
    assert checksum(raw) == reference_checksum(raw) == int.from_bytes(raw[40:], "little") == 0x712E


def test_checksum_blind_spots_are_those_of_the_c_original():
    """Bits 30-31 of the 32-bit sum never reach the checksum: e.g. bit 3 of the packet number byte (word 0,
    shifted 19) and bit 7 of the first range's high byte (word 3, shifted 16) go unnoticed."""
    raw = bytearray(encode_packet(2, 300.0, [1000] * 6, [100] * 6))
    for pos, bit in ((1, 3), (7, 7)):
        mutated = bytearray(raw)
        mutated[pos] ^= 1 << bit
        assert checksum(mutated) == checksum(raw)


def test_flipping_any_byte_makes_the_parser_reject_the_packet():
    rng = random.Random(7)
    for _ in range(20):
        raw = encode_packet(rng.randrange(60), rng.uniform(0, 600), [rng.randrange(65536) for _ in range(6)], [0] * 6)
        for pos in range(PACKET_SIZE):
            mutated = bytearray(raw)
            mutated[pos] ^= 0xFF
            parser = ScanParser()
            parser.feed(bytes(mutated), 0)
            assert parser.packets == 0, (raw.hex(), pos)
        intact = ScanParser()
        intact.feed(raw, 0)
        assert intact.packets == 1


def test_encode_refuses_bad_input():
    with pytest.raises(ValueError, match="0-59"):
        encode_packet(60, 300.0, [0] * 6, [0] * 6)
    with pytest.raises(ValueError, match="6 readings"):
        encode_packet(0, 300.0, [0] * 5, [0] * 6)
    with pytest.raises(ValueError, match="range"):
        encode_packet(0, 300.0, [70000] + [0] * 5, [0] * 6)
    with pytest.raises(ValueError, match="speed"):
        encode_packet(0, -1.0, [0] * 6, [0] * 6)
    with pytest.raises(ValueError, match="shape"):
        encode_scan(np.zeros(359))
    with pytest.raises(ValueError, match="intensities"):
        encode_scan(np.zeros(360), np.full(360, -1.0))


# -- scans -------------------------------------------------------------------------------------------------------
def test_round_trip_gives_the_ranges_back_to_the_millimetre():
    ranges, intensities = random_scan(np.random.default_rng(0))
    stream = encode_scan(ranges, intensities, rpm=297.5)
    assert len(stream) == PACKETS_PER_SCAN * PACKET_SIZE
    parser = ScanParser()
    (scan,) = parser.feed(stream, 123)
    assert scan.packets == 60 and scan.stamp_ns == 123 and scan.rpm == pytest.approx(297.5)
    assert np.abs(scan.ranges_m - ranges).max() <= 0.0005 + 1e-6
    assert np.array_equal(scan.ranges_m == 0, ranges == 0)
    assert np.array_equal(scan.intensities, intensities)
    assert parser.packets == 60 and parser.checksum_errors == 0
    with pytest.raises(ValueError):
        scan.ranges_m[0] = 1.0  # read-only: scans are shared between threads


def test_a_reading_at_90_degrees_is_sent_and_parsed_at_90_degrees():
    ranges = np.zeros(360)
    ranges[90] = 0.5
    stream = encode_scan(ranges)
    # 90 degrees is reading k = 359 - 90 = 269: packet 44, reading 5; its range field is bytes 2-3 of the reading
    offset = 44 * PACKET_SIZE + 4 + 6 * 5 + 2
    assert stream[offset : offset + 2] == (500).to_bytes(2, "little")
    assert stream.count((500).to_bytes(2, "little")) == 1
    (scan,) = ScanParser().feed(stream, 0)
    assert np.flatnonzero(scan.ranges_m).tolist() == [90]
    assert scan.ranges_m[90] == pytest.approx(0.5)


def test_out_of_range_values_are_sent_as_no_return():
    ranges = np.full(360, 1.0)
    ranges[:6] = [0.05, 3.6, np.nan, np.inf, 0.12, 3.5]
    (scan,) = ScanParser().feed(encode_scan(ranges), 0)
    assert scan.ranges_m[:6].tolist() == pytest.approx([0, 0, 0, 0, 0.12, 3.5])


def test_resynchronises_after_leading_garbage_byte_by_byte():
    ranges, intensities = random_scan(np.random.default_rng(1))
    garbage = bytes([0xFA, 0xFA, 0xA3, 0x00, 0xFA, 0x12, 0xFF]) + bytes(range(256)) + bytes([0xFA, 0xA0, 0x01])
    stream = garbage + encode_scan(ranges, intensities)
    parser = ScanParser()
    scans = []
    for i in range(len(stream)):
        scans += parser.feed(stream[i : i + 1], i)
    (scan,) = scans
    assert scan.packets == 60 and scan.stamp_ns == len(stream) - 1
    assert np.abs(scan.ranges_m - ranges).max() <= 0.0005 + 1e-6
    assert parser.checksum_errors >= 1  # the false starts in the garbage


def test_resynchronises_after_a_truncated_packet():
    ranges = np.full(360, 1.0)
    stream = encode_scan(ranges)
    cut = 30 * PACKET_SIZE
    truncated = stream[:cut] + stream[cut : cut + 25] + stream[cut + PACKET_SIZE :]  # packet 30 loses 17 bytes
    parser = ScanParser()
    (scan,) = parser.feed(truncated, 0)
    assert scan.packets == 59 and parser.checksum_errors == 1
    lost = [359 - (6 * 30 + i) for i in range(6)]  # packet 30's angles
    assert np.flatnonzero(scan.ranges_m == 0).tolist() == sorted(lost)


def test_a_revolution_ends_at_packet_59_or_when_the_numbers_wrap():
    first, second = encode_scan(np.full(360, 1.0)), encode_scan(np.full(360, 2.0))
    parser = ScanParser()
    assert parser.feed(first[: 30 * PACKET_SIZE], 10) == []  # packets 0-29, then the rest is lost
    partial, full = parser.feed(second[: 20 * PACKET_SIZE], 20) + parser.feed(second[20 * PACKET_SIZE :], 30)
    assert (partial.packets, partial.stamp_ns, full.packets, full.stamp_ns) == (30, 10, 60, 30)
    assert np.count_nonzero(partial.ranges_m) == 180 and (full.ranges_m == np.float32(2.0)).all()
    # packets 0-29, then 10-59 of the next revolution (its packets 0-9 lost): the wrap ends the first
    scans = parser.feed(first[: 30 * PACKET_SIZE] + second[10 * PACKET_SIZE :], 40)
    assert [s.packets for s in scans] == [30, 50]


# -- fuzz --------------------------------------------------------------------------------------------------------
def _feed_in_chunks(parser: ScanParser, stream: bytes, rng: random.Random) -> list:
    scans, pos = [], 0
    while pos < len(stream):
        step = rng.choice((1, 7, 42, 100, 3000))
        scans += parser.feed(stream[pos : pos + step], pos)
        assert len(parser._buf) < 2 * PACKET_SIZE
        pos += step
    return scans


def _check_invariants(parser: ScanParser, scans: list, stream: bytes) -> None:
    # only checksum-valid packets are taken (each at most once), and scans hold only taken packets
    assert parser.packets <= valid_windows(stream)
    assert sum(s.packets for s in scans) <= parser.packets
    assert all(1 <= s.packets <= PACKETS_PER_SCAN and s.ranges_m.shape == (360,) for s in scans)


def test_fuzzed_garbage_never_raises_and_yields_nothing_without_a_valid_packet():
    rng = random.Random(1234)
    alphabet = [0xFA, 0xA0, 0xA5, 0xDB, 0xDC, 0x00, 0xFF]  # start and number bytes, to exercise resynchronisation
    started = time.monotonic()
    for _ in range(3000):
        n = rng.randrange(400)
        stream = bytes(rng.choice(alphabet) if rng.random() < 0.3 else rng.randrange(256) for _ in range(n))
        parser = ScanParser()
        scans = _feed_in_chunks(parser, stream, rng)
        _check_invariants(parser, scans, stream)
        if valid_windows(stream) == 0:
            assert parser.packets == 0 and scans == []
    assert time.monotonic() - started < 30


def test_mutated_streams_never_raise_and_keep_only_valid_packets():
    rng = random.Random(99)
    streams = [encode_scan(*random_scan(np.random.default_rng(s))) for s in range(4)]
    started = time.monotonic()
    for _ in range(1000):
        stream = bytearray(rng.choice(streams) + rng.choice(streams))
        for _ in range(rng.randrange(1, 6)):
            op, pos = rng.randrange(4), rng.randrange(len(stream))
            if op == 0:
                stream[pos] ^= rng.randrange(1, 256)
            elif op == 1:
                del stream[pos : pos + rng.randrange(1, 100)]
            elif op == 2:
                stream[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
            else:
                stream[pos:pos] = stream[pos : pos + rng.randrange(1, 200)]  # a repeated stretch
        parser = ScanParser()
        scans = _feed_in_chunks(parser, bytes(stream), rng)
        _check_invariants(parser, scans, bytes(stream))
        assert parser.packets > 0  # two revolutions survive a handful of mutations in part
    assert time.monotonic() - started < 30


# -- the reader over a pseudo-terminal ----------------------------------------------------------------------------
@pytest.fixture
def scan_ranges():
    return random_scan(np.random.default_rng(5))


def test_reader_starts_the_sensor_hands_out_fresh_scans_and_stops_it(pty, scan_ranges):
    master, port = pty
    writer = SensorWriter(master, encode_scan(*scan_ranges))
    reader = LdsReader("base_lidar", port, first_scan_timeout_s=2.0)
    try:
        with reader:
            assert read_master(master, want=b"b") == b"b"
            first = reader.latest(max_age_s=0.5)
            assert first.packets == 60 and np.abs(first.ranges_m - scan_ranges[0]).max() <= 0.0005 + 1e-6
            assert (time.monotonic_ns() - first.stamp_ns) < 0.5e9
            time.sleep(0.45)
            second = reader.latest(max_age_s=0.5)
            assert second.stamp_ns > first.stamp_ns
            stats = reader.stats
            assert stats["scans"] >= 2 and stats["packets"] >= 120 and stats["checksum_errors"] == 0
        assert read_master(master, want=b"e") == b"e"
        reader.close()  # idempotent
        with pytest.raises(LidarError, match="not connected"):
            reader.latest(max_age_s=1.0)
    finally:
        writer.stop()
        reader.close()


def test_a_silent_sensor_makes_the_scan_stale_within_a_second(pty, scan_ranges):
    master, port = pty
    writer = SensorWriter(master, encode_scan(*scan_ranges))
    with LdsReader("base_lidar", port, first_scan_timeout_s=2.0) as reader:
        reader.latest(max_age_s=0.5)
        writer.stop()
        started = time.monotonic()
        with pytest.raises(StaleScan) as info:
            while time.monotonic() - started < 2.0:
                reader.latest(max_age_s=0.5)
                time.sleep(0.02)
        assert time.monotonic() - started < 1.0
        assert "base_lidar" in str(info.value) and "limit 500 ms" in str(info.value)


def corrupt(stream: bytes) -> bytes:
    """Every packet's checksum broken."""
    raw = bytearray(stream)
    for p in range(0, len(raw), PACKET_SIZE):
        raw[p + 40] ^= 0x01
    return bytes(raw)


def test_only_corrupt_packets_raise_checksum_failures(pty, scan_ranges):
    master, port = pty
    good = encode_scan(*scan_ranges)
    writer = SensorWriter(master, good, hz=10.0)
    try:
        with LdsReader("base_lidar", port, first_scan_timeout_s=2.0) as reader:
            reader.latest(max_age_s=0.5)
            writer.payload = corrupt(good)
            deadline = time.monotonic() + 2.0
            with pytest.raises(ChecksumFailures, match="base_lidar.*checksum") as info:
                while time.monotonic() < deadline:
                    reader.latest(max_age_s=5.0)
                    time.sleep(0.02)
            assert "another checksum" in str(info.value)
            assert reader.stats["checksum_errors"] >= reader.checksum_window
        # connecting to a sensor that only ever sends corrupt packets says so instead of timing out
        with pytest.raises(ChecksumFailures, match="base_lidar"):
            LdsReader("base_lidar", port, first_scan_timeout_s=2.0).connect()
    finally:
        writer.stop()


def test_no_data_times_out_naming_the_sensor(pty):
    master, port = pty
    started = time.monotonic()
    with pytest.raises(LidarTimeout, match=r"base_lidar.*no bytes at all"):
        LdsReader("base_lidar", port, first_scan_timeout_s=0.3).connect()
    assert time.monotonic() - started < 2.0
    assert read_master(master, timeout_s=0.5, want=b"be") == b"be"  # started, then stopped on the way out


def test_a_port_that_cannot_be_opened_is_named():
    with pytest.raises(LidarError, match="base_lidar.*/dev/no-such-lidar") as info:
        LdsReader("base_lidar", "/dev/no-such-lidar").connect()
    assert not isinstance(info.value, LidarTimeout)


def test_a_vanished_port_is_reported_with_its_cause(pty, scan_ranges):
    master, port = pty
    writer = SensorWriter(master, encode_scan(*scan_ranges))
    with LdsReader("base_lidar", port, first_scan_timeout_s=2.0) as reader:
        reader.latest(max_age_s=0.5)
        writer.stop()
        os.close(master)  # the adapter is unplugged: reads on the port fail
        deadline = time.monotonic() + 2.0
        with pytest.raises(LidarError, match=r"base_lidar: port .* failed \(.+\)") as info:
            while time.monotonic() < deadline:
                reader.latest(max_age_s=5.0)
                time.sleep(0.02)
        assert not isinstance(info.value, StaleScan)


def test_a_scan_with_lost_packets_is_not_handed_out_as_whole(pty, scan_ranges):
    """Two packets of every revolution corrupted: the scans arrive, with 12 readings lost each, and a caller asking
    for a whole scan (the policy's) gets none: the newest whole one grows stale and stops it by name."""
    master, port = pty
    stream = bytearray(encode_scan(*scan_ranges))
    for k in (10, 30):
        stream[k * PACKET_SIZE + 20] ^= 0xFF
    writer = SensorWriter(master, bytes(stream))
    try:
        with LdsReader("base_lidar", port, first_scan_timeout_s=2.0) as reader:
            time.sleep(0.6)
            assert reader.latest(max_age_s=0.5).packets == 58
            with pytest.raises(StaleScan, match="base_lidar: no whole scan yet"):
                reader.latest(max_age_s=0.5, whole=True)
            assert reader.stats["partial_scans"] >= 2
            writer.payload = encode_scan(*scan_ranges)
            time.sleep(0.6)
            assert reader.latest(max_age_s=0.5, whole=True).packets == 60
    finally:
        writer.stop()

"""LDS-02 (LD08) packets and scans: the CRC-8 against a bitwise second implementation, the wire layout, the
vendor's angle correction and its inverse, clockwise raw angles, round trips, whole and partial revolutions, a
fuzzed parser, the reader over a pseudo-terminal (no command sent, stale and corrupt streams), the emulator, and the
state policy driving the mock base through an emulated LDS-02."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pytest
from pty_sensor import SensorWriter, read_master

from real.lidar.lds02 import (
    HEADER,
    PACKET_SIZE,
    SAMPLE_RATE_HZ,
    ScanParser,
    corrected,
    crc8,
    encode_packet,
    encode_revolution,
    raw_distance,
)
from real.lidar.reader import ChecksumFailures, LdsReader, StaleScan
from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config
from robot.lidar import Lidar

#: samples in one revolution at the nominal 5 Hz: 2300 * 360 / 1800
PER_REV = 460


def bitwise_crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x4D, initial 0, MSB first, no reflection: shifted bit by bit, as a check on the table."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x4D) if crc & 0x80 else crc << 1
            crc &= 0xFF
    return crc


def valid_windows(stream: bytes) -> int:
    """47-byte windows of ``stream`` that start with 54 2C and carry a valid CRC-8."""
    return sum(
        1
        for p in range(len(stream) - PACKET_SIZE + 1)
        if stream[p] == HEADER and stream[p + 1] == 0x2C and bitwise_crc8(stream[p : p + 46]) == stream[p + 46]
    )


def room(deg: np.ndarray | None = None) -> np.ndarray:
    """A smooth 360-degree scan (m): a 3 x 2 m room seen from off its centre, one corner missing (no return)."""
    a = np.radians(np.arange(360) if deg is None else deg)
    x = np.where(np.cos(a) > 0, 1.8 / np.maximum(np.cos(a), 1e-9), 1.2 / np.maximum(-np.cos(a), 1e-9))
    y = np.where(np.sin(a) > 0, 0.9 / np.maximum(np.sin(a), 1e-9), 1.1 / np.maximum(-np.sin(a), 1e-9))
    r = np.minimum(x, y)
    r[200:210] = 0.0
    return r


# -- CRC, layout, correction ----------------------------------------------------------------------------------------
def test_crc8_agrees_with_a_bitwise_implementation_and_the_polynomial():
    rng = random.Random(3)
    for n in (0, 1, 2, 46, 100):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc8(data) == bitwise_crc8(data)
    assert crc8(b"\x01") == 0x4D  # one bit through eight shifts: the polynomial itself


def test_packet_layout():
    dists, confs = [160 + 10 * i for i in range(12)], [200 - i for i in range(12)]
    raw = encode_packet(1800.0, 12.34, 21.5, dists, confs, timestamp_ms=29999)
    assert len(raw) == PACKET_SIZE and raw[:2] == bytes([0x54, 0x2C])
    assert int.from_bytes(raw[2:4], "little") == 1800  # deg/s
    assert int.from_bytes(raw[4:6], "little") == 1234  # 0.01 deg
    for i in range(12):
        assert int.from_bytes(raw[6 + 3 * i : 8 + 3 * i], "little") == dists[i] and raw[8 + 3 * i] == confs[i]
    assert int.from_bytes(raw[42:44], "little") == 2150
    assert int.from_bytes(raw[44:46], "little") == 29999
    assert raw[46] == bitwise_crc8(raw[:46])


def test_the_vendor_correction_worked_by_hand_and_its_inverse():
    # raw 1000 mm: x = 1005.9, y = 119.23 - 20.14 = 99.09; distance hypot = 1010.77; shift atan(99.09/1005.9) = 5.626
    angle, dist = corrected(np.array([90.0]), np.array([1000.0]))
    assert dist[0] == pytest.approx(math.hypot(1005.9, 99.09)) and angle[0] == pytest.approx(270.0 + 5.6262, abs=1e-3)
    d = np.array([160.0, 300.0, 1000.0, 3500.0, 8000.0])
    assert np.allclose(raw_distance(corrected(np.zeros(5), d)[1]), d)


def test_raw_angles_run_clockwise_a_reading_at_90_degrees_is_sent_near_raw_270():
    truth = np.zeros(360)
    truth[90] = 1.0
    stream = encode_revolution(truth, 0, 12 * 39)
    sent = []
    for p in range(0, len(stream), PACKET_SIZE):
        start, end = (int.from_bytes(stream[p + k : p + k + 2], "little") / 100 for k in (4, 42))
        for i in range(12):
            if int.from_bytes(stream[p + 6 + 3 * i : p + 8 + 3 * i], "little"):
                sent.append(start + i * ((end - start) % 360) / 11)
    assert sent and all(270.0 + 5.6 - 0.6 < a < 270.0 + 5.6 + 0.6 for a in sent), sent  # 360 - 90 + the shift
    (scan,) = ScanParser().feed(stream + encode_revolution(truth, 12 * 39, 12), 0)
    assert np.flatnonzero(scan.ranges_m).tolist() == [90] and scan.ranges_m[90] == pytest.approx(1.0, abs=0.001)


def test_encode_refuses_bad_input():
    with pytest.raises(ValueError, match="12 points"):
        encode_packet(1800, 0, 10, [0] * 11, [0] * 12)
    with pytest.raises(ValueError, match="distance"):
        encode_packet(1800, 0, 10, [70000] + [0] * 11, [0] * 12)
    with pytest.raises(ValueError, match="confidences"):
        encode_packet(1800, 0, 10, [0] * 12, [256] + [0] * 11)
    with pytest.raises(ValueError, match="multiple of 12"):
        encode_revolution(np.zeros(360), 0, 13)


# -- scans ---------------------------------------------------------------------------------------------------------
def _two_revolutions(truth: np.ndarray, speed: float = 1800.0) -> bytes:
    per_rev = SAMPLE_RATE_HZ * 360 / speed
    n = int(per_rev // 12 * 12 + 24)
    return encode_revolution(truth, 0, n, speed) + encode_revolution(truth, n, 12, speed)


@pytest.mark.parametrize("speed", [1800.0, 2160.0])  # 5 and 6 Hz (the datasheet: 5 Hz or above)
def test_round_trip_gives_the_room_back(speed):
    truth = room()
    parser = ScanParser()
    scans = parser.feed(_two_revolutions(truth, speed), 42)
    scan = scans[0]
    assert scan.whole and scan.rpm == pytest.approx(speed / 6) and scan.stamp_ns == 42
    both = (truth > 0) & (scan.ranges_m > 0)
    err = np.abs(scan.ranges_m - truth)[both]
    # the corners and the missing stretch's edges are discontinuities a triangulating sensor blurs by a degree
    assert np.median(err) < 0.001 and np.mean(err < 0.01) > 0.97, np.sort(err)[-10:]
    assert np.mean((scan.ranges_m > 0) == (truth > 0)) > 0.97
    assert parser.checksum_errors == parser.implausible == 0


def test_lost_packets_make_a_scan_partial_beyond_one():
    truth = room()
    stream = encode_revolution(truth, 0, PER_REV // 12 * 12 + 12) + encode_revolution(truth, 468, 12)
    packets = [stream[p : p + PACKET_SIZE] for p in range(0, len(stream), PACKET_SIZE)]
    one_lost = b"".join(packets[:10] + packets[11:])
    three_lost = b"".join(packets[:10] + packets[13:])
    two_apart = b"".join(packets[:10] + packets[11:20] + packets[21:])
    every_other = b"".join(packets[::2] + packets[-1:])
    assert ScanParser().feed(one_lost, 0)[0].whole
    for partial in (three_lost, two_apart, every_other):
        assert not ScanParser().feed(partial, 0)[0].whole
    # joining mid-revolution: the first scan is partial
    first = ScanParser().feed(b"".join(packets[20:]), 0)[0]
    assert first.packets == len(packets) - 1 - 20 and not first.whole


def test_a_packet_with_a_valid_crc_but_an_impossible_span_is_dropped():
    bad = encode_packet(1800, 10.0, 60.0, [1000] * 12, [100] * 12)  # 50 deg in 12 samples: 1800 deg/s allows 9.4
    parser = ScanParser()
    parser.feed(bad, 0)
    assert (parser.packets, parser.implausible, parser.errors_in_a_row) == (0, 1, 0)


def test_a_stopped_motor_gives_no_scan_and_holds_nothing():
    """Packets of a motor at 0 deg/s (start = end: a span its speed allows) are dropped, not gathered into a
    revolution that never ends: the reader sees no scan and stops the base on a stale scan, not a checksum."""
    stopped = encode_packet(0, 90.0, 90.0, [1000] * 12, [100] * 12)
    parser = ScanParser()
    assert parser.feed(stopped * 1000, 0) == []
    assert (parser.packets, parser.implausible, parser.errors_in_a_row) == (0, 1000, 0)
    assert parser._starts == []


def test_flipping_any_byte_makes_the_parser_reject_the_packet():
    raw = encode_packet(1800, 100.0, 108.6, [500 + i for i in range(12)], [100] * 12)
    for pos in range(PACKET_SIZE):
        mutated = bytearray(raw)
        mutated[pos] ^= 0xFF
        parser = ScanParser()
        parser.feed(bytes(mutated), 0)
        assert parser.packets == 0, pos
    intact = ScanParser()
    intact.feed(raw, 0)
    assert intact.packets == 1


def test_fuzzed_and_mutated_streams_never_raise_and_keep_only_valid_packets():
    rng = random.Random(77)
    streams = [_two_revolutions(room() * s) for s in (0.8, 1.0, 1.3)]
    started = time.monotonic()
    for k in range(1500):
        if k % 2:
            n = rng.randrange(400)
            stream = bytes(
                rng.choice((0x54, 0x2C, 0x00, 0xFF)) if rng.random() < 0.3 else rng.randrange(256) for _ in range(n)
            )
        else:
            buf = bytearray(rng.choice(streams))
            for _ in range(rng.randrange(1, 6)):
                op, pos = rng.randrange(3), rng.randrange(len(buf))
                if op == 0:
                    buf[pos] ^= rng.randrange(1, 256)
                elif op == 1:
                    del buf[pos : pos + rng.randrange(1, 100)]
                else:
                    buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
            stream = bytes(buf)
        parser, scans, pos = ScanParser(), [], 0
        while pos < len(stream):
            step = rng.choice((1, 7, 47, 100, 3000))
            scans += parser.feed(stream[pos : pos + step], pos)
            assert len(parser._buf) < 2 * PACKET_SIZE
            pos += step
        assert parser.packets <= valid_windows(stream)
        assert sum(s.packets for s in scans) <= parser.packets
        assert all(s.ranges_m.shape == (360,) and s.ranges_m.dtype == np.float32 for s in scans)
        if k % 2 == 0:
            assert parser.packets > 0
    assert time.monotonic() - started < 60


# -- the reader and the emulator -------------------------------------------------------------------------------------
def test_the_reader_sends_nothing_and_hands_out_whole_scans(pty):
    master, port = pty
    writer = SensorWriter(master, _two_revolutions(room())[: 39 * PACKET_SIZE], hz=5.0)
    try:
        with LdsReader("lds", port, model="LDS-02", first_scan_timeout_s=2.0) as reader:
            assert reader.baudrate == 115200
            time.sleep(0.5)
            scan = reader.latest(max_age_s=0.5, whole=True)
            assert np.median(np.abs(scan.ranges_m - room())[room() > 0]) < 0.002
            assert reader.stats["checksum_errors"] == 0
        assert read_master(master, timeout_s=0.3) == b""  # transmit only: no start or stop command
    finally:
        writer.stop()


def test_silent_then_corrupt_streams_stop_the_reader_by_name(pty):
    master, port = pty
    good = _two_revolutions(room())[: 39 * PACKET_SIZE]
    writer = SensorWriter(master, good, hz=10.0)
    try:
        with LdsReader("lds", port, model="LDS-02", first_scan_timeout_s=2.0) as reader:
            reader.latest(max_age_s=0.5)
            writer.stop()
            time.sleep(0.6)
            with pytest.raises(StaleScan, match="lidar lds: the newest scan is"):
                reader.latest(max_age_s=0.5)
            bad = bytearray(good)
            for p in range(0, len(bad), PACKET_SIZE):
                bad[p + 46] ^= 0x01
            writer = SensorWriter(master, bytes(bad), hz=10.0)
            deadline = time.monotonic() + 3.0
            with pytest.raises(ChecksumFailures, match=r"lds.*CRC-8 \(polynomial 0x4D\)"):
                while time.monotonic() < deadline:
                    reader.latest(max_age_s=5.0)
                    time.sleep(0.02)
    finally:
        writer.stop()


def test_a_config_names_the_model_and_refuses_a_wrong_baud_rate():
    mount = {"xyz": [0, 0, 0], "rpy": [0, 0, 0]}
    assert Lidar(name="lds", model="LDS-02", port="/dev/ttyUSB0", mount=mount).spec.baudrate == 115200
    with pytest.raises(ValueError, match="an LDS-02 talks at 115200 baud, not 230400"):
        Lidar(name="lds", model="LDS-02", port="/dev/ttyUSB0", mount=mount, baudrate=230400)


def _lds02_base(tmp_path):
    text = (HARDWARE_CONFIG_DIR / "mock" / "turtlebot3_burger.yaml").read_text()
    assert "model: LDS-01" in text
    path = tmp_path / "turtlebot3_burger.yaml"
    path.write_text(text.replace("model: LDS-01", "model: LDS-02"))
    return path


def test_the_emulated_lds02_serves_the_room_to_the_real_driver(tmp_path):
    from mock.hardware import MockHardware

    config = load_hardware_config(_lds02_base(tmp_path))
    hardware = MockHardware(config, None, seed=7)
    try:
        assert hardware.lidars["lds"].streaming  # from power-on
        with hardware.lidar("lds") as reader:
            time.sleep(0.8)
            scan = reader.latest(config.lidars[0].max_scan_age_s, whole=True)
            assert scan.rpm == pytest.approx(300.0) and reader.stats["checksum_errors"] == 0
            truth = hardware.reality.sensor_scan()  # the robot stands still: the room as the sensor sees it
            both = (truth > 0) & (scan.ranges_m > 0)
            # per degree: the datasheet's 3 % noise (a median error about 0.67 sigma), the 2 % dropouts
            assert np.median(np.abs(scan.ranges_m - truth)[both] / truth[both]) < 0.03
            assert np.mean((scan.ranges_m > 0) == (truth > 0)) > 0.93
    finally:
        hardware.close()


@pytest.mark.slow
def test_the_state_policy_drives_the_mock_base_on_an_lds02(tmp_path):
    from policies.deploy import DeployConfig, deploy

    summary = deploy(
        DeployConfig(robot=str(_lds02_base(tmp_path)), policy="navigate_state", goal="1.2,0.4", status=False)
    )
    assert summary.ended == "completed", summary.message
    assert summary.episodes[0].outcome == "success", summary.episodes[0]
    assert summary.lidar["model"] == "LDS-02" and summary.lidar["checksum_errors"] == 0
    assert summary.lidar["scan_age_ms_100"] < 600  # every scan the policy acted on was whole and fresh

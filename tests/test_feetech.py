"""Feetech STS frames, the STS3215 memory table's sign-magnitude registers, a fuzzed frame parser, and the emulator
of an SO-101's six servos driven by the vendor's own SDK (``scservo_sdk``, from ``feetech-servo-sdk``) over a
pseudo-terminal: ping, read, write, reg write + action, sync write, sync read, faults, homing offset, EEPROM lock."""

from __future__ import annotations

import random
import time

import pytest

from real.dynamixel.emulator import EmulatorThread
from real.feetech.control_table import MODELS, POSITION_CENTER
from real.feetech.emulator import FeetechServo, feetech_emulator
from real.feetech.protocol import FrameParser, Instruction, checksum, encode, error_text
from real.serial_bus import BusError

STS = MODELS["STS3215"]
SO101_IDS = [1, 2, 3, 4, 5, 6]


# -- frames ----------------------------------------------------------------------------------------------------------
def test_frames_worked_by_hand():
    # ping servo 1: 1 + 2 + 1 = 4, one's complement 0xFB
    assert encode(1, Instruction.PING) == bytes.fromhex("ff ff 01 02 01 fb")
    # write Goal_Position (42 = 0x2A) of servo 1 to 2048 (00 08): sum 1 + 5 + 3 + 0x2A + 0 + 8 = 0x3B -> 0xC4
    assert encode(1, Instruction.WRITE, bytes([42, 0x00, 0x08])) == bytes.fromhex("ff ff 01 05 03 2a 00 08 c4")
    assert checksum(bytes([0xFE, 0x04, 0x83, 0xFF])) == 0x7B  # sum 0x284, low byte 0x84, complement 0x7B
    assert error_text(0x21) == "input voltage, overload" and error_text(0) == "none"
    with pytest.raises(ValueError, match="servo id"):
        encode(0xFF, Instruction.PING)


def test_sign_magnitude_registers():
    offset, speed, load = STS.register("homing_offset"), STS.register("present_velocity"), STS.register("present_load")
    assert offset.encode(-5) == bytes([0x05, 0x08]) and offset.decode(bytes([0x05, 0x08])) == -5  # sign in bit 11
    assert speed.encode(-100) == bytes([0x64, 0x80]) and speed.decode(bytes([0x64, 0x80])) == -100  # bit 15
    assert load.decode(bytes([0xF4, 0x05])) == -500  # 0x5F4: direction bit 10 set, 500 (50 % of the max torque)
    assert offset.raw_range == (-2047, 2047)
    with pytest.raises(ValueError, match="homing_offset"):
        offset.encode(2048)
    goal = STS.register("goal_position")
    assert goal.from_si(0.0) == POSITION_CENTER and goal.to_si(POSITION_CENTER + 1024) == pytest.approx(
        3.14159 / 2, 1e-4
    )


def test_the_parser_resynchronises_and_keeps_only_valid_frames():
    good = [encode(i, 0, bytes([i, 2 * i])) for i in range(1, 7)]
    stream = b"\xff\x00\xff\xff\xff" + good[0] + b"\xff\xff\x07\x09" + good[1] + good[2][:-1] + b"\x00" + good[3]
    frames = FrameParser().feed(stream)
    assert [f.ident for f in frames] == [1, 2, 4]
    rng = random.Random(5)
    for _ in range(2000):  # fuzz: no crash, the buffer stays small, every frame out has a valid checksum
        parser = FrameParser()
        data = bytes(rng.choice((0xFF, 0xFF, 0x01, 0x02)) if rng.random() < 0.4 else rng.randrange(256)
                     for _ in range(rng.randrange(300)))  # fmt: skip
        for k in range(0, len(data), 7):
            for f in parser.feed(data[k : k + 7]):
                raw = encode(f.ident, f.code, f.params)
                assert raw in data
            assert len(parser._buf) <= 250


# -- the emulator through the vendor SDK ------------------------------------------------------------------------------
@pytest.fixture
def so101_bus(tmp_path):
    """The six STS3215 of an SO-101 (ids 1-6, 1 Mbps) on a pty; the vendor SDK's port and packet handlers on it."""
    scs = pytest.importorskip("scservo_sdk")
    emulator = feetech_emulator(SO101_IDS)
    link = tmp_path / "ttySO101"
    with EmulatorThread(emulator, link):
        port = scs.PortHandler(str(link))
        assert port.openPort() and port.setBaudRate(1_000_000)
        try:
            yield scs, emulator, port, scs.PacketHandler(0)  # 0: the STS series' little-endian words
        finally:
            port.closePort()


def test_the_vendor_sdk_pings_reads_and_writes_every_servo(so101_bus):
    scs, emulator, port, ph = so101_bus
    for ident in SO101_IDS:
        model, result, error = ph.ping(port, ident)
        assert (model, result, error) == (777, scs.COMM_SUCCESS, 0), ph.getTxRxResult(result)
    _, result, _ = ph.ping(port, 9)
    assert result == scs.COMM_RX_TIMEOUT  # nobody at id 9
    position, result, _ = ph.read2ByteTxRx(port, 3, STS.register("present_position").address)
    assert result == scs.COMM_SUCCESS and position == POSITION_CENTER
    assert ph.write1ByteTxRx(port, 3, STS.register("torque_enable").address, 1)[0] == scs.COMM_SUCCESS
    assert ph.write2ByteTxRx(port, 3, STS.register("goal_position").address, POSITION_CENTER + 512)[0] == 0
    time.sleep(0.4)
    position, _, _ = ph.read2ByteTxRx(port, 3, STS.register("present_position").address)
    assert abs(position - (POSITION_CENTER + 512)) <= 2  # the servo moved there (45 deg)
    assert emulator.servos[3].position == pytest.approx(512 * STS.register("goal_position").unit, abs=0.003)


def test_sync_write_sync_read_and_reg_write_action(so101_bus):
    scs, emulator, port, ph = so101_bus
    torque, goal = STS.register("torque_enable").address, STS.register("goal_position").address
    present = STS.register("present_position").address
    for ident in SO101_IDS:
        ph.write1ByteTxRx(port, ident, torque, 1)
    writer = scs.GroupSyncWrite(port, ph, goal, 2)
    targets = {ident: POSITION_CENTER + 100 * ident for ident in SO101_IDS}
    for ident, value in targets.items():
        assert writer.addParam(ident, [value & 0xFF, value >> 8])
    assert writer.txPacket() == scs.COMM_SUCCESS
    time.sleep(0.4)
    reader = scs.GroupSyncRead(port, ph, present, 2)
    for ident in SO101_IDS:
        reader.addParam(ident)
    assert reader.txRxPacket() == scs.COMM_SUCCESS
    got = {ident: reader.getData(ident, present, 2) for ident in SO101_IDS}
    assert all(abs(got[i] - targets[i]) <= 2 for i in SO101_IDS), got
    # reg write holds the goal until action
    assert ph.regWriteTxRx(port, 2, goal, 2, [0x00, 0x08])[0] == scs.COMM_SUCCESS
    time.sleep(0.2)
    assert abs(ph.read2ByteTxRx(port, 2, present)[0] - targets[2]) <= 2
    assert ph.action(port, 2) == scs.COMM_SUCCESS
    time.sleep(0.3)
    assert abs(ph.read2ByteTxRx(port, 2, present)[0] - POSITION_CENTER) <= 2


def test_faults_reach_the_sdk_as_timeouts_corrupt_replies_and_error_bits(so101_bus):
    scs, emulator, port, ph = so101_bus
    present = STS.register("present_position").address
    emulator.servos[4].faults.drop_reply = True
    assert ph.read2ByteTxRx(port, 4, present)[1] == scs.COMM_RX_TIMEOUT
    emulator.servos[4].faults.drop_reply = False
    emulator.servos[5].faults.corrupt_crc = True
    assert ph.read2ByteTxRx(port, 5, present)[1] == scs.COMM_RX_CORRUPT
    emulator.servos[5].faults.corrupt_crc = False
    emulator.servos[6].faults.hardware_error = 0x20  # overload
    _, result, error = ph.read2ByteTxRx(port, 6, present)
    assert result == scs.COMM_SUCCESS and error == 0x20 and "Overload" in ph.getRxPacketError(error)
    assert error_text(error) == "overload"


def test_homing_offset_is_subtracted_and_flash_keeps_it_only_unlocked(so101_bus):
    scs, emulator, port, ph = so101_bus
    offset, lock = STS.register("homing_offset"), STS.register("lock").address
    present = STS.register("present_position").address
    servo = emulator.servos[1]
    servo.position = 0.0  # actual count 2048
    ph.write2ByteTxRx(port, 1, offset.address, int.from_bytes(offset.encode(-100), "little"))
    assert servo.get("homing_offset") == -100 and ph.read2ByteTxRx(port, 1, present)[0] == POSITION_CENTER + 100
    servo.power_cycle()  # written with Lock at 1 (as it powers up): not kept
    assert servo.get("homing_offset") == 0 and ph.read2ByteTxRx(port, 1, present)[0] == POSITION_CENTER
    ph.write1ByteTxRx(port, 1, lock, 0)
    ph.write2ByteTxRx(port, 1, offset.address, int.from_bytes(offset.encode(-100), "little"))
    ph.write1ByteTxRx(port, 1, lock, 1)
    servo.power_cycle()
    assert servo.get("homing_offset") == -100 and servo.get("lock") == 1  # kept; Lock is back at its power-up 1
    assert ph.read2ByteTxRx(port, 1, present)[0] == POSITION_CENTER + 100  # actual - (-100)
    servo.position = -3.1  # -2021 counts: actual 2048 - 2021 = 27, minus -100: 127
    assert ph.read2ByteTxRx(port, 1, present)[0] == 127
    # with torque on, a goal at the present count holds the servo where it is
    ph.write1ByteTxRx(port, 1, STS.register("torque_enable").address, 1)
    time.sleep(0.2)
    assert servo.position == pytest.approx(-3.1, abs=0.002)


def test_the_present_position_wraps_within_a_turn():
    servo = FeetechServo(1)
    servo.position = -3.2  # just past half a turn below the middle: actual count 2048 - 2086 = -38
    assert servo.present_ticks() == 4058


# -- the project's driver -------------------------------------------------------------------------------------------
@pytest.fixture
def so101_driver(tmp_path):
    """The six emulated servos and the project's Feetech bus on their pty."""
    from real.feetech.bus import FeetechBus

    emulator = feetech_emulator(SO101_IDS)
    link = tmp_path / "ttySO101"
    with EmulatorThread(emulator, link), FeetechBus(str(link)) as bus:
        yield emulator, bus


def test_the_driver_pings_reads_writes_and_syncs(so101_driver):
    emulator, bus = so101_driver
    assert bus.scan(range(0, 9)) == {i: 777 for i in SO101_IDS}  # ids 0, 7 and 8 time out: nobody there
    scanned = dict(bus.stats)
    goal, present, torque = (
        STS.register("goal_position"),
        STS.register("present_position"),
        STS.register("torque_enable"),
    )
    for ident in SO101_IDS:
        bus.write(ident, torque, 1)
    bus.sync_write(goal, {i: POSITION_CENTER - 50 * i for i in SO101_IDS})
    time.sleep(0.4)
    got = bus.sync_read(SO101_IDS, present)
    assert all(abs(got[i] - (POSITION_CENTER - 50 * i)) <= 2 for i in SO101_IDS), got
    bus.reg_write(2, goal, POSITION_CENTER)
    time.sleep(0.2)
    assert abs(bus.read(2, present) - (POSITION_CENTER - 100)) <= 2  # held until action
    bus.action()
    time.sleep(0.3)
    assert abs(bus.read(2, present) - POSITION_CENTER) <= 2
    velocity = STS.register("present_velocity")
    emulator.servos[3].faults.freeze = {"present_velocity": -250}
    assert bus.read(3, velocity) == -250  # sign-magnitude through the bytes
    assert bus.stats["timeouts"] == scanned["timeouts"] and bus.stats["corrupt"] == 0


def test_lost_and_corrupt_replies_are_retried_and_named_when_they_persist(so101_driver):
    from real.serial_bus import BusTimeout, CorruptReply

    emulator, bus = so101_driver
    present = STS.register("present_position")
    emulator.servos[4].faults.drop_next = 1
    emulator.servos[5].faults.corrupt_probability = 0.5
    for _ in range(10):
        bus.sync_read(SO101_IDS, present)
    assert bus.stats["retries"] >= 1 and bus.stats["timeouts"] >= 1 and bus.stats["corrupt"] >= 1
    emulator.servos[6].faults.drop_reply = True
    with pytest.raises(BusTimeout, match=r"no reply from motor\(s\) \[6\]"):
        bus.read(6, present)
    emulator.servos[6].faults.drop_reply = False
    emulator.servos[5].faults.corrupt_probability = 0.0
    emulator.servos[5].faults.corrupt_crc = True
    with pytest.raises(CorruptReply, match=r"motor\(s\) \[5\]"):
        bus.read(5, present)
    emulator.servos[5].faults.corrupt_crc = False
    assert bus.read(5, present) == POSITION_CENTER  # the fence cleared the line; the bus goes on


def test_late_replies_are_never_taken_for_another_request(so101_driver):
    """Servo 1's replies come 40 ms late, past the 20 ms allowance, while its registers hold distinct values:
    every read returns its own register's value or raises, never another's."""
    emulator, bus = so101_driver
    held = {"present_voltage": 74, "present_temperature": 41, "moving": 1, "status": 0}
    emulator.servos[1].faults.freeze = dict(held)
    emulator.servos[1].faults.delay_s = 0.04
    wrong, answered = [], 0
    for k in range(24):
        name = list(held)[k % len(held)]
        try:
            value = bus.read(1, STS.register(name))
        except BusError:
            continue
        answered += 1
        if value != held[name]:
            wrong.append((name, value))
    assert wrong == [] and answered >= 18, (wrong, answered, bus.stats)
    assert bus.stats["late"] >= 1 and bus.host_latency_s >= 0.04


def test_error_bits_raise_an_alert_by_name_unless_the_value_is_wanted(so101_driver):
    from real.feetech.bus import ServoAlert

    emulator, bus = so101_driver
    emulator.servos[2].faults.hardware_error = 0x24  # overheating and overload
    with pytest.raises(ServoAlert, match="motor 2: read present_position of motor 2: overheating, overload"):
        bus.read(2, STS.register("present_position"))
    assert bus.read(2, STS.register("present_position"), alert_ok=True) == POSITION_CENTER


def test_a_vanished_port_is_a_port_error(tmp_path):
    from real.feetech.bus import FeetechBus
    from real.serial_bus import PortError

    link = tmp_path / "ttyGone"
    server = EmulatorThread(feetech_emulator(SO101_IDS), link)
    bus = FeetechBus(str(link)).open()
    assert bus.ping(1) == 777
    server.stop()
    with pytest.raises(PortError):
        for _ in range(5):
            bus.ping(1)
    bus.close()
    with pytest.raises(PortError, match="cannot open"):
        FeetechBus(str(tmp_path / "nothing")).open()


def test_a_servo_that_is_gone_does_not_stall_the_bus(tmp_path):
    """On a fresh bus the only servo a fence could ask is the one that just failed to answer: inside the failed
    request's late window the fence raises (its reply may still come), after it the bus listens out the fence's
    own window and goes on. The next request succeeds, paying the late window once."""
    from real.feetech.bus import FeetechBus
    from real.serial_bus import BusTimeout

    link = tmp_path / "ttyOne"
    with EmulatorThread(feetech_emulator([1]), link), FeetechBus(str(link)) as bus:
        with pytest.raises(BusTimeout, match=r"motor\(s\) \[9\]"):
            bus.read(9, STS.register("present_position"))
        started = time.monotonic()
        assert bus.read(1, STS.register("present_position")) == POSITION_CENTER
        assert time.monotonic() - started >= bus.late_window_s - 0.05
        assert bus.stats["fences"] >= 2 and bus.stats["retries"] >= 1
        assert bus.read(1, STS.register("present_position")) == POSITION_CENTER  # clean: no fence, no wait

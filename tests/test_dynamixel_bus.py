"""Our bus and the vendor's SDK against the servo emulator, over a real pseudo-terminal, with every fault knob."""

from __future__ import annotations

import threading
import time

import dynamixel_sdk as sdk
import pytest

from real.dynamixel.bus import BusTimeout, CorruptReply, DynamixelBus, DynamixelError, ServoError
from real.dynamixel.control_table import MODELS
from real.dynamixel.emulator import BusEmulator, EmulatedServo, EmulatorThread

IDS = [11, 12, 13, 14, 15]
R = MODELS["XM430-W350"].registers


@pytest.fixture
def emulator(tmp_path):
    em = BusEmulator({i: EmulatedServo(i, "XM430-W350") for i in IDS})
    with EmulatorThread(em, tmp_path / "ttyDXL") as server:
        em.link = server.link
        yield em


@pytest.fixture
def bus(emulator):
    # 50 ms of host latency budget: a loaded test machine (a training run beside the tests) missed 20 ms
    with DynamixelBus(emulator.link, host_latency_s=0.05) as b:
        yield b


def test_ping_scan_read_write_sync(bus, emulator):
    assert bus.ping(11) == 1020
    assert bus.scan(range(0, 20)) == {i: 1020 for i in IDS}
    bus.write(11, R["torque_enable"], 1)
    bus.write(11, R["goal_position"], 3072)
    time.sleep(0.7)  # pi/2 at the 4.8 rad/s velocity limit, then the first-order tail
    assert abs(bus.read(11, R["present_position"]) - 3072) <= 2
    for i in IDS[1:]:
        bus.write(i, R["torque_enable"], 1)
    bus.sync_write(R["goal_position"], {i: 1024 + 100 * k for k, i in enumerate(IDS)})
    time.sleep(0.9)
    positions = bus.sync_read(IDS, R["present_position"])
    assert all(abs(positions[i] - (1024 + 100 * k)) <= 2 for k, i in enumerate(IDS))


def test_servo_errors_name_motor_register_and_error(bus, emulator):
    with pytest.raises(ServoError, match="motor 12: write model_number = 7 to motor 12: access error"):
        bus.write(12, R["model_number"], 7)
    bus.write(12, R["torque_enable"], 1)
    with pytest.raises(ServoError, match="write operating_mode.*access error"):
        bus.write(12, R["operating_mode"], 1)  # EEPROM is locked while torque is on
    bus.write(12, R["torque_enable"], 0)
    bus.write(12, R["max_position_limit"], 3000)
    bus.write(12, R["torque_enable"], 1)
    with pytest.raises(ServoError, match="data range error"):
        bus.write(12, R["goal_position"], 3500)
    emulator.servos[13].faults.hardware_error = 1 << 5
    with pytest.raises(ServoError, match="motor 13.*hardware alert.*overload error") as err:
        bus.write(13, R["goal_position"], 2048)
    assert err.value.hardware_error == 1 << 5
    bus.reboot(13)
    assert bus.read(13, R["hardware_error_status"]) == 0


@pytest.mark.parametrize("late_window_s", [0.5, 0.25])
def test_a_lost_fence_reply_asks_another_servo_when_the_late_window_allows(emulator, late_window_s):
    """On a noisy bus the fence's own reply can be lost too: the fence then pings the next servo the bus has heard,
    and the retried transaction goes through on one retry, if that second ping ends within the failed request's
    late window (0.5 s here; the request times out after about 50 ms and each ping waits 100 ms). With a 0.25 s
    window it would not, so the fence gives up as a single ping did, and the third attempt goes through."""
    with DynamixelBus(emulator.link, host_latency_s=0.05, late_window_s=late_window_s) as bus:
        assert bus.ping(12) == 1020 and bus.ping(13) == 1020  # 13 answered last: the first fence candidate
        emulator.servos[14].faults.drop_next = 1  # the request's reply is lost
        emulator.servos[13].faults.drop_next = 1  # and so is the fence's
        assert bus.ping(14) == 1020
        second_ping = late_window_s == 0.5
        assert bus.stats["retries"] == (1 if second_ping else 2) and bus.stats["fences"] == 2
        for ident in (12, 13):  # both drops were consumed; the fence pinged 13, then 12
            assert emulator.servos[ident].faults.drop_next == 0 and bus.ping(ident) == 1020
        if not second_ping:
            return
        for ident in (12, 13, 14):  # a bus where nothing answers: bounded, named
            emulator.servos[ident].faults.drop_reply = True
        fences, started = bus.stats["fences"], time.monotonic()
        with pytest.raises(BusTimeout, match=r"no reply from motor\(s\) \[14\].*did not answer a fence ping"):
            bus.ping(14)
        assert time.monotonic() - started < 2 * late_window_s  # three attempts, no fence past the late window
        assert bus.stats["fences"] - fences == 3  # the second attempt pinged 13 and 12, the third the only one left


def test_faults_give_errors_or_retries_never_hangs_or_wrong_values(bus, emulator):
    faults = emulator.servos[14].faults
    assert bus.ping(13) == 1020  # a healthy servo the bus has heard: after a failed transaction it pings it (fence)
    faults.drop_next = 1  # a transient loss: one retry fixes it
    assert bus.ping(14) == 1020 and bus.stats["retries"] == 1 and bus.stats["fences"] == 1
    for knob, error in (
        ("drop_reply", BusTimeout),
        ("corrupt_crc", CorruptReply),
        ("flip_bit", CorruptReply),
        ("vanished", BusTimeout),
    ):
        setattr(faults, knob, True)
        t0 = time.monotonic()
        with pytest.raises(error, match="motor\\(s\\) \\[14\\]"):  # the fence pings 13, not the failing 14
            bus.read(14, R["present_position"])
        assert time.monotonic() - t0 < 0.5  # three bounded attempts, no hang
        setattr(faults, knob, False)
    faults.delay_s = 0.2  # past the timeout
    with pytest.raises(BusTimeout):
        bus.ping(14)
    faults.delay_s = 0.0
    time.sleep(0.3)  # let the late replies drain
    faults.freeze = {"present_position": 1234}
    assert bus.read(14, R["present_position"]) == 1234
    assert bus.sync_read([13, 14], R["present_position"])[14] == 1234


def test_bus_watchdog_stops_a_silent_host(bus, emulator):
    bus.write(15, R["torque_enable"], 1)
    bus.write(15, R["bus_watchdog"], 5)  # 100 ms
    bus.write(15, R["goal_position"], 2500)
    time.sleep(0.3)  # the host goes quiet
    assert bus.read(15, R["bus_watchdog"]) == 0xFF  # -1: tripped
    with pytest.raises(ServoError, match="data range error"):
        bus.write(15, R["goal_position"], 2600)
    bus.write(15, R["bus_watchdog"], 0)  # the host clears it
    bus.write(15, R["goal_position"], 2600)


def test_bus_refuses_use_when_closed_and_guards_factory_reset(emulator):
    b = DynamixelBus(emulator.link)
    with pytest.raises(DynamixelError, match="is not open"):
        b.ping(11)
    with b:
        with pytest.raises(DynamixelError, match="confirm=True"):
            b.factory_reset(11)
        b.write(11, R["position_p_gain"], 400)
        b.factory_reset(11, confirm=True)
        assert b.read(11, R["position_p_gain"]) == 800
    with pytest.raises(DynamixelError, match="cannot open"):
        DynamixelBus("/nonexistent/ttyUSB9").open()


def test_vendor_sdk_talks_to_the_emulator(emulator):
    """The official ROBOTIS dynamixel-sdk pings, reads, writes, sync-reads and sync-writes the emulator."""
    port = sdk.PortHandler(emulator.link)
    assert port.openPort() and port.setBaudRate(1_000_000)
    ph = sdk.PacketHandler(2.0)
    try:
        model, comm, err = ph.ping(port, 11)
        assert (model, comm, err) == (1020, sdk.COMM_SUCCESS, 0)
        for i in IDS:
            assert ph.write1ByteTxRx(port, i, 64, 1)[:2] == (sdk.COMM_SUCCESS, 0)
        assert ph.write4ByteTxRx(port, 12, 116, 3000)[:2] == (sdk.COMM_SUCCESS, 0)
        value, comm, err = ph.read4ByteTxRx(port, 12, 116)
        assert (value, comm, err) == (3000, sdk.COMM_SUCCESS, 0)
        writer = sdk.GroupSyncWrite(port, ph, 116, 4)
        for k, i in enumerate(IDS):
            assert writer.addParam(i, list((1500 + 200 * k).to_bytes(4, "little")))
        assert writer.txPacket() == sdk.COMM_SUCCESS
        time.sleep(0.8)
        reader = sdk.GroupSyncRead(port, ph, 132, 4)
        for i in IDS:
            assert reader.addParam(i)
        assert reader.txRxPacket() == sdk.COMM_SUCCESS
        got = {i: reader.getData(i, 132, 4) for i in IDS}
        assert all(abs(got[i] - (1500 + 200 * k)) <= 2 for k, i in enumerate(IDS)), got
        value, comm, err = ph.read4ByteTxRx(port, 12, 116)
        assert value == 1500 + 200
    finally:
        port.closePort()


def test_emulator_process_and_mock_bus_command(tmp_path):
    import signal
    import subprocess
    import sys

    from mock.bus_process import EmulatorProcess

    link = tmp_path / "ttyOMX"
    with EmulatorProcess("openmanipulator_x", link), DynamixelBus(str(link)) as b:
        assert b.scan(range(0, 20)) == {11: 1020, 12: 1020, 13: 1020, 14: 1020, 15: 1020}
    assert not link.exists()
    link = tmp_path / "ttyTB3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "policies.cli", "mock-bus", "--config", "turtlebot3_burger", "--link", str(link)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "emulating turtlebot3_burger" in proc.stdout.readline()
        with DynamixelBus(str(link)) as b:
            assert b.scan(range(0, 5)) == {1: 1060, 2: 1060}
            with pytest.raises(ServoError, match="has no register|access error"):
                b.write(1, MODELS["XL430-W250"].register("present_load"), 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "stopped after" in out and not link.exists()


def test_bus_is_thread_safe_and_clients_can_reconnect(emulator):
    errors, counts = [], {}

    def worker(ident: int, bus: DynamixelBus) -> None:
        try:
            for _ in range(30):
                assert bus.read(ident, R["model_number"]) == 1020
                bus.write(ident, R["led"], 1)
            counts[ident] = 30
        except Exception as e:  # collected and asserted below
            errors.append(e)

    # thread safety, not timing: the emulator shares this process's interpreter with five busy client threads, so
    # allow it more than the default 20 ms to answer on a loaded machine
    with DynamixelBus(emulator.link, host_latency_s=0.1) as shared:
        threads = [threading.Thread(target=worker, args=(i, shared)) for i in IDS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert not errors and counts == {i: 30 for i in IDS}
    for _ in range(3):  # the emulator keeps the slave side open: close and reopen freely
        with DynamixelBus(emulator.link) as again:
            assert again.ping(11) == 1020


def test_fast_sync_read_and_its_faults(bus, emulator):
    for i in IDS:
        bus.write(i, R["torque_enable"], 1)
    bus.sync_write(R["goal_position"], {i: 1500 + 100 * k for k, i in enumerate(IDS)})
    time.sleep(0.8)
    fast = bus.fast_sync_read(IDS, R["present_position"])
    assert fast == bus.sync_read(IDS, R["present_position"])
    assert all(abs(fast[i] - (1500 + 100 * k)) <= 2 for k, i in enumerate(IDS))
    emulator.servos[13].faults.vanished = True  # the chain breaks at id 13: a timeout, after retries
    with pytest.raises(BusTimeout):
        bus.fast_sync_read(IDS, R["present_position"])
    emulator.servos[13].faults.vanished = False
    emulator.servos[11].faults.corrupt_crc = True
    with pytest.raises(CorruptReply):
        bus.fast_sync_read(IDS, R["present_position"])
    emulator.servos[11].faults.corrupt_crc = False
    emulator.servos[12].faults.hardware_error = 1 << 2
    with pytest.raises(ServoError, match="motor 12.*overheating"):
        bus.fast_sync_read(IDS, R["present_position"])


def test_vendor_sdk_fast_sync_read_parses_the_emulator(emulator):
    port = sdk.PortHandler(emulator.link)
    assert port.openPort() and port.setBaudRate(1_000_000)
    ph = sdk.PacketHandler(2.0)
    try:
        reader = sdk.GroupSyncRead(port, ph, 0, 2)  # model number
        for i in IDS:
            assert reader.addParam(i)
        # the SDK waits a fixed 16 ms latency budget for the five chained replies; a loaded machine can miss it
        # (seen once in CI), which says nothing about parsing: allow it two more tries
        results = []
        for _ in range(3):
            results.append(reader.fastSyncRead())
            if results[-1] == sdk.COMM_SUCCESS:
                break
        assert results[-1] == sdk.COMM_SUCCESS, results
        assert {i: reader.getData(i, 0, 2) for i in IDS} == {i: 1020 for i in IDS}
    finally:
        port.closePort()

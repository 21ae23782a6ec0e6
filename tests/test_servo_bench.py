"""The servo test bench recorder (``s2r calibrate bench``) against an emulated XL330 swinging a simulated pendulum,
over a real pseudo-terminal: the logs it writes read as sysid logs, every goal passes the bench's limits, and a
lost servo or a stop signal, in the middle of a transition, ends the log with torque off and nothing lost."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from calibration import bench_trajectories, servo_bench
from calibration.servo_bench import BenchError, BenchLimits, record
from calibration.servo_firmware import firmware_law
from calibration.servo_sysid import load_servo_log
from mock.pendulum_bench import PendulumBench, bench_emulator
from policies.cli import main
from real.dynamixel.bus import DynamixelBus
from real.dynamixel.emulator import EmulatorThread
from real.stop_signals import StopSignals

HANG = 0.3  # rad: the mock pendulum hangs there in motor angles; the logs' zero


@pytest.fixture
def bench(tmp_path):
    """(emulator, bus) of a mock bench whose pendulum hangs at rest at HANG."""
    emulator = bench_emulator(PendulumBench(hang_rad=HANG))
    with EmulatorThread(emulator, tmp_path / "ttyBENCH") as server, DynamixelBus(server.link) as bus:
        yield emulator, bus


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_lift_and_drop_recording_reads_as_a_sysid_log_with_torque_on_then_off(bench, tmp_path):
    emulator, bus = bench
    result = record(bus, 1, "lift_and_drop", 400, 0.49, 0.1, tmp_path / "drop.json", duration_s=4.0)
    assert result.complete and not result.stopped
    assert result.torque_off_read_back and emulator.servos[1].get("torque_enable") == 0  # the servo's own register
    on_disk = json.loads((tmp_path / "drop.json").read_text())
    assert on_disk["complete"] and on_disk["zero_rad"] == pytest.approx(HANG, abs=0.01)
    log = load_servo_log(tmp_path / "drop.json")
    assert log.trajectory == "lift_and_drop" and log.kp == 400 and log.load.mass == 0.49
    assert len(log.t) == 400 and np.all(np.diff(log.t) > 0) and log.t[-1] == pytest.approx(4.0, abs=0.1)
    lift, free = log.t < 1.95, log.t > 2.05  # (the log's clock starts at its first sample)
    assert np.all(log.torque_enable[lift]) and not np.any(log.torque_enable[free])
    assert abs(log.position[0]) < 0.01  # from rest, in angles from it
    assert log.position[lift].min() < -1.0  # it lifted toward horizontal
    # with torque off it falls through the bottom, swings and comes to rest; the PWM it reads is 0
    assert np.any(np.diff(np.sign(log.position[free])) != 0) and abs(log.position[-1]) < 0.1
    assert np.all(log.pwm[free] == 0) and np.abs(log.pwm[lift]).max() > 0.2
    law = firmware_law([log])  # the emulator's firmware follows the e-manual's formula: gain 1
    assert law is not None and law.gain_scale == pytest.approx(1.0, abs=0.03)


class _WriteLog:
    """The real bus, with every write it sends recorded (register name, raw value) on its way to the servo."""

    def __init__(self, bus: DynamixelBus) -> None:
        self.bus, self.writes = bus, []

    def write(self, ident, reg, raw) -> None:
        self.writes.append((reg.name, raw))
        self.bus.write(ident, reg, raw)

    def __getattr__(self, name):
        return getattr(self.bus, name)


def test_every_goal_passes_the_bench_limits(bench, tmp_path):
    limits = BenchLimits(limit=0.5, max_speed=2.0)
    assert limits.filter(5.0, 0.49, 1.0) == 0.5 and limits.filter(-5.0, 0.0, 0.1) == pytest.approx(-0.2)
    assert limits.filter(float("nan"), 0.3, 0.01) == 0.3  # a non-finite goal holds the last one
    emulator, bus = bench
    spy, rate = _WriteLog(bus), 100.0
    result = record(spy, 1, "chirp", 400, 0.49, 0.1, tmp_path / "c.json", rate, 3.0, limits=limits)
    assert result.complete
    # what reached the servo: every goal register written, in angles from the zero, the first before torque on
    names = [name for name, _ in spy.writes]
    first_goal, torque_on = names.index("goal_position"), names.index("torque_enable", names.index("goal_position"))
    assert first_goal < torque_on and spy.writes[torque_on][1] == 1
    goal_reg = emulator.servos[1].model.register("goal_position")
    sent = (
        np.array([goal_reg.to_si(raw) for name, raw in spy.writes if name == "goal_position"]) - result.log["zero_rad"]
    )
    assert np.abs(sent).max() <= 0.5 + 1e-3 and np.abs(sent).max() > 0.49  # the chirp asks 0.6: clamped
    assert np.abs(np.diff(sent)).max() <= 2.0 / rate + 2e-3  # it asks up to 7.5 rad/s: the rate limit binds
    assert np.abs(np.diff(sent)).max() > 0.9 * 2.0 / rate


def test_a_servo_lost_as_its_torque_goes_off_ends_the_log_with_what_was_recorded(bench, tmp_path):
    """The fault inside a transition: the servo drops off the bus on the write that turns its torque off (the
    drop at 2 s). The recording ends with the bus error, says torque off was not confirmed, and keeps its
    samples."""
    emulator, bus = bench
    servo = emulator.servos[1]

    def arm() -> None:  # once the lift has torque on, the next torque write is the drop's
        _wait_for(lambda: servo.get("torque_enable") == 1)
        servo.faults.vanish_on_write = "torque_enable"

    threading.Thread(target=arm, daemon=True).start()
    result = record(bus, 1, "lift_and_drop", 400, 0.49, 0.1, tmp_path / "lost.json", duration_s=4.0)
    assert not result.complete and "the bus failed after" in result.stopped and "motor 1" in result.stopped
    assert not result.torque_off_read_back  # nothing answers: the summary does not claim it
    assert result.path == tmp_path / "lost.json.partial" and not (tmp_path / "lost.json").exists()
    kept = json.loads(result.path.read_text())
    assert kept["complete"] is False and kept["stopped"] == result.stopped
    assert all(e["torque_enable"] for e in kept["entries"])
    assert load_servo_log(result.path).t[-1] == pytest.approx(2.0, abs=0.2)  # every sample up to the drop


def test_a_bus_that_stops_answering_mid_lift_ends_the_log_with_torque_off_read_back(bench, tmp_path):
    """The servo stays, its replies stop for a while (a transient fault longer than the retries): the log ends,
    and the torque-off after it is confirmed by the servo's own register."""
    emulator, bus = bench
    servo = emulator.servos[1]

    def arm() -> None:
        _wait_for(lambda: servo.get("torque_enable") == 1)
        time.sleep(0.5)
        servo.faults.drop_next = 8

    threading.Thread(target=arm, daemon=True).start()
    result = record(bus, 1, "up_and_down", 400, 0.49, 0.1, tmp_path / "gap.json", duration_s=3.0)
    assert not result.complete and result.stopped.startswith("the bus failed after")
    assert result.torque_off_read_back and servo.get("torque_enable") == 0
    assert json.loads(result.path.read_text())["entries"]


def test_an_overload_mid_lift_ends_the_log_and_torque_off_is_still_read_back(bench, tmp_path):
    """A servo in hardware alert answers every request with the alert bit: the log ends naming it, and the
    torque-off write (whose status carries the alert) is still confirmed by reading the register back."""
    emulator, bus = bench
    servo = emulator.servos[1]

    def overload() -> None:
        _wait_for(lambda: servo.get("torque_enable") == 1)
        time.sleep(0.5)
        servo.faults.hardware_error = 1 << 5  # overload

    threading.Thread(target=overload, daemon=True).start()
    result = record(bus, 1, "up_and_down", 800, 0.49, 0.1, tmp_path / "alert.json", duration_s=3.0)
    assert not result.complete and "overload" in result.stopped
    assert result.torque_off_read_back and servo.get("torque_enable") == 0


def test_an_error_in_the_host_code_ends_the_log_with_torque_off_then_propagates(bench, tmp_path, monkeypatch):
    emulator, bus = bench

    def broken(t: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
        if t[0] > 1.0:
            raise ZeroDivisionError("a bug in a trajectory")
        return 0.5 * np.ones_like(t), np.ones_like(t, dtype=bool)

    monkeypatch.setitem(servo_bench.TRAJECTORIES, "broken", broken)
    monkeypatch.setitem(bench_trajectories.TRAJECTORIES, "broken", broken)
    with pytest.raises(ZeroDivisionError):
        record(bus, 1, "broken", 400, 0.49, 0.1, tmp_path / "bug.json", duration_s=3.0)
    assert emulator.servos[1].get("torque_enable") == 0
    kept = json.loads((tmp_path / "bug.json.partial").read_text())
    assert kept["stopped"].startswith("failed after") and "a bug in a trajectory" in kept["stopped"]
    assert len(kept["entries"]) > 50


def test_a_stop_signal_in_the_lift_turns_torque_off_and_keeps_the_log(bench, tmp_path):
    emulator, bus = bench
    signals = StopSignals()
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        result = record(bus, 1, "up_and_down", 800, 0.49, 0.1, tmp_path / "stop.json", duration_s=4.0, signals=signals)
    finally:
        timer.cancel()
        signals.restore()
    assert not result.complete and result.stopped.startswith("stopped after") and "SIGINT" in result.stopped
    assert result.torque_off_read_back and emulator.servos[1].get("torque_enable") == 0
    kept = json.loads(result.path.read_text())
    assert kept["complete"] is False and 0 < len(kept["entries"]) < 400


def test_bad_requests_are_refused_before_anything_moves(bench, tmp_path):
    emulator, bus = bench
    servo = emulator.servos[1]
    for args, match in (
        (("spin", 400), "unknown trajectory 'spin'"),
        (("sin_sin", 0), "kp 0 is outside"),
    ):
        with pytest.raises(BenchError, match=match):
            record(bus, 1, *args, 0.49, 0.1, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists() and servo.get("torque_enable") == 0
    with pytest.raises(BenchError, match=r"rests at \+0\.30\d rad, -0\.(49|50)\d from the zero given"):
        record(bus, 1, "sin_sin", 400, 0.49, 0.1, tmp_path / "x.json", zero=HANG + 0.5)
    with pytest.raises(BenchError, match="zero must be a finite number"):
        record(bus, 1, "sin_sin", 400, 0.49, 0.1, tmp_path / "x.json", zero=float("nan"))
    servo.set("max_position_limit", 2048 + 600)  # a horn whose turn ends 0.62 rad above the rest at 0.3
    with pytest.raises(BenchError, match="outside its position limits 0..2648: mount the horn"):
        record(bus, 1, "up_and_down", 400, 0.49, 0.1, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists() and servo.get("torque_enable") == 0
    servo.position = HANG + 1.0  # let go from 1 rad: it swings, torque off
    model = servo_bench.MODEL_BY_NUMBER[bus.ping(1)]
    with pytest.raises(BenchError, match="still moving after 1 s"):
        servo_bench.rest_angle(bus, 1, model, timeout_s=1.0)
    assert servo.get("torque_enable") == 0


def test_cli_records_on_the_mock_bench_and_sysid_fits_the_logs(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["calibrate", "bench", "--mock", "--mass", "0.49", "--length", "0.1", "--out", str(out)]
    assert main(args + ["--kp", "400", "--trajectory", "lift_and_drop", "sin_sin", "--duration", "3"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("complete, torque off (read back)") == 2 and "s2r sysid --logs" in printed
    report = tmp_path / "report.json"
    sysid = ["sysid", "--logs", str(out / "*.json"), "--model", "coulomb_viscous", "--iterations", "3"]
    assert main(sysid + ["--out", str(tmp_path / "p.yaml"), "--json", str(report)]) == 0
    fit = json.loads(report.read_text())["fit"]
    assert fit["torque_off_s"] == pytest.approx(1.0, abs=0.05)  # the drop's last second
    assert fit["firmware_from_pwm"]["gain_scale"] == pytest.approx(1.0, abs=0.03)
    assert main(args + ["--port", "/dev/null"]) == 2
    assert "give either --port" in capsys.readouterr().err
    assert not math.isnan(fit["mae_rad"])


def test_ctrl_c_held_down_in_the_second_log_keeps_the_first_and_the_partial_second(tmp_path):
    """The command in its own process, Ctrl-C held down (SIGINT every 10 ms) from the start of its second log to
    its exit: the first log is whole, the second is kept as a partial log, torque off is read back after it, and
    nothing is recorded after the stop."""
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "policies.cli", "calibrate", "bench", "--mock", "--mass", "0.49", "--length", "0.1"]
    cmd += ["--out", str(out), "--kp", "400", "--trajectory", "up_and_down", "lift_and_drop", "--duration", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "up_and_down_kp400.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # into the second log's lift (the first ends at rest: its rest check takes 0.3 s)
    while proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.01)
    stdout, stderr = proc.communicate(timeout=30)
    # 1: ended early; 130: a SIGINT after the command put the default handler back ("s2r: interrupted")
    assert proc.returncode in (1, 130) and "Traceback" not in stderr, stderr
    assert json.loads((out / "up_and_down_kp400.json").read_text())["complete"] is True
    partial = out / "lift_and_drop_kp400.json.partial"
    kept = json.loads(partial.read_text())
    assert kept["complete"] is False and "SIGINT" in kept["stopped"] and 0 < len(kept["entries"]) < 300
    assert f"{partial}: {len(kept['entries'])} samples, INCOMPLETE" in stdout and "torque off (read back)" in stdout
    assert "recording ended early" in stdout and not (out / "lift_and_drop_kp400.json").exists()

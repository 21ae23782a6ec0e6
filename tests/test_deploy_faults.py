"""Deployments on the mock arm ended by a signal, a software stop, a vanished port or a host stall, in process so
the test can read the servo emulator's registers afterwards: every ending leaves torque at 0 on every servo or
names the servo that could not be reached, and the summary and the log say what was read back."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import policies.deploy
from mock.hardware import MockHardware
from policies.deploy import DeployConfig, deploy
from real.log_reader import read_log
from robot.config_file import load_hardware_config

ROBOT = "mock/openmanipulator_x"
POLICY = "policies/bundles/grasp_state"


@pytest.fixture
def hardware():
    mock = MockHardware(load_hardware_config(ROBOT), None, seed=3_000_000)
    yield mock
    mock.close()


def _torque(hardware: MockHardware) -> list[int]:
    return [s.get("torque_enable") for s in hardware.emulator.servos.values()]


def _last_lifecycle(log) -> dict:
    return [m.data for m in read_log(log, topics=["/lifecycle"])][-1]


def test_signals_during_the_park_and_torque_off_cannot_cut_it_short(tmp_path, hardware):
    """SIGINT mid-episode, then SIGINT every 10 ms for 3 s, through the park and the torque-off loop: the run ends
    once, stopped, with torque read back off on all five servos."""
    done = threading.Event()

    def storm() -> None:
        time.sleep(2.0)
        end = time.monotonic() + 3.0
        while time.monotonic() < end and not done.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)

    # the test's own handler around deploy's: the storm's last signals may land after deploy has returned
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    thread = threading.Thread(target=storm)
    thread.start()
    log = tmp_path / "storm.mcap"
    try:
        summary = deploy(DeployConfig(ROBOT, POLICY, episodes=50, status=False, log=str(log)), hardware=hardware)
    finally:
        done.set()
        thread.join()
        signal.signal(signal.SIGINT, previous)
    assert summary.ended == "stopped" and summary.message.startswith("SIGINT received: parked, torque off (read back")
    assert _torque(hardware) == [0] * 5 and summary.torque_off["unreachable"] == {}
    assert _last_lifecycle(log)["torque"] is False


def test_sigusr1_is_the_software_stop(hardware):
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.start()
    summary = deploy(DeployConfig(ROBOT, POLICY, episodes=50, status=False), hardware=hardware)
    timer.join()
    assert summary.ended == "stopped" and summary.message.startswith("software stop (SIGUSR1) received: parked")
    assert _torque(hardware) == [0] * 5


def test_space_in_the_terminal_is_the_software_stop(hardware):
    master, slave = os.openpty()  # the terminal deploy runs in
    try:
        timer = threading.Timer(2.0, os.write, (master, b" "))
        timer.start()
        summary = deploy(DeployConfig(ROBOT, POLICY, episodes=50, status=False, stop_keys_fd=slave), hardware=hardware)
        timer.join()
    finally:
        os.close(master)
        os.close(slave)
    assert summary.ended == "stopped" and "software stop" in summary.message
    assert _torque(hardware) == [0] * 5


def test_a_port_that_vanishes_mid_run_is_reported_with_the_motors_to_cut(tmp_path, hardware):
    timer = threading.Timer(2.0, hardware._server.stop)  # the USB adapter is pulled
    timer.start()
    log = tmp_path / "vanished.mcap"
    summary = deploy(DeployConfig(ROBOT, POLICY, episodes=50, status=False, log=str(log)), hardware=hardware)
    timer.join()
    assert summary.ended == "error" and "PortError" in summary.message
    assert (
        "TORQUE NOT CONFIRMED OFF" in summary.message and "cut power to motor(s) 11, 12, 13, 14, 15" in summary.message
    )
    assert sorted(summary.torque_off["unreachable"]) == ["11", "12", "13", "14", "15"]
    last = _last_lifecycle(log)
    assert last["torque"] is None and sorted(last["unreachable"]) == ["11", "12", "13", "14", "15"]


def test_a_host_stall_past_the_bus_watchdog_is_recovered_not_silently_frozen(monkeypatch, hardware):
    """The policy stalls the host for 0.45 s once (the servos' bus watchdog is 0.3 s): the trip is detected,
    cleared, counted as a safety event, and the episode still succeeds."""
    load = policies.deploy.load

    def stalling_load(*args, **kwargs):
        policy = load(*args, **kwargs)
        act, calls = policy.act, []

        def act_with_a_stall(obs):
            calls.append(1)
            if len(calls) == 4:
                time.sleep(0.45)
            return act(obs)

        policy.act = act_with_a_stall
        return policy

    monkeypatch.setattr(policies.deploy, "load", stalling_load)
    summary = deploy(DeployConfig(ROBOT, POLICY, episodes=1, status=False), hardware=hardware)
    assert summary.safety_events.get("bus_watchdog_trip") == 1, summary.safety_events
    assert summary.ended == "completed" and summary.episodes[0].outcome == "success", summary
    assert _torque(hardware) == [0] * 5


def test_a_stop_signal_never_cuts_a_log_record_short(tmp_path):
    """A stop signal arriving while a record is written is raised when the record is complete."""
    from real.hardware_log import HardwareLog
    from real.log_reader import log_info
    from real.stop_signals import Stopped, StopSignals

    stop = StopSignals()
    path = tmp_path / "held.mcap"
    try:
        log = HardwareLog(path, {"robot": "test"}, guard=stop.holding)
        with pytest.raises(Stopped, match="SIGTERM"):
            with stop.holding():  # as a write holds it
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                log.write("/a", {"v": 1})
        log.write("/a", {"v": 2})  # the run is ending: later signals are counted, not raised
        os.kill(os.getpid(), signal.SIGTERM)
        log.close()
    finally:
        stop.restore()
    assert stop.received == ["SIGTERM", "SIGTERM"]
    assert [m.data["v"] for m in read_log(path)] == [1, 2] and log_info(path)["damaged"] is None


def test_a_watchdog_trip_while_parking_is_counted_and_logged(tmp_path, monkeypatch, hardware):
    from real.robot import Robot

    deactivate = Robot.deactivate

    def stall_then_park(self, *args, **kwargs):
        time.sleep(0.45)  # the host stalls as the park begins: the servos' 0.3 s bus watchdog trips
        return deactivate(self, *args, **kwargs)

    monkeypatch.setattr(Robot, "deactivate", stall_then_park)
    log = tmp_path / "park.mcap"
    summary = deploy(DeployConfig(ROBOT, POLICY, episodes=1, status=False, log=str(log)), hardware=hardware)
    assert summary.safety_events.get("bus_watchdog_trip") == 1 and summary.ended == "completed"
    assert [m.data["kind"] for m in read_log(log, topics=["/safety"])].count("bus_watchdog_trip") == 1
    assert _torque(hardware) == [0] * 5


def test_a_reality_naming_no_term_is_refused_by_name(tmp_path, capsys):
    """A misspelt term would leave the reality nominal where the user meant it shifted: it is refused in one line,
    naming it, before anything starts."""
    from pathlib import Path

    from policies.cli import main as s2r
    from robot.config_file import load_hardware_config

    reality = tmp_path / "typo.yaml"
    reality.write_text("image_noise_stdev: 0.02\nlatency_s: 0.03\n")
    port = Path(load_hardware_config(ROBOT).bus.port)
    assert s2r(["deploy", "--robot", ROBOT, "--policy", POLICY, "--reality", str(reality), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("s2r: reality") and "image_noise_stdev" in err
    assert "latency_s" not in err and not port.exists()  # no emulator was started


def test_a_host_reality_term_is_accepted_with_a_note(tmp_path):
    from mock.reality import check_reality_domain

    reality = tmp_path / "jitter.yaml"
    reality.write_text("control_period_jitter: 0.01\nlatency_s: 0.03\n")
    assert check_reality_domain("grasp", reality) == ["control_period_jitter"]
    summary = deploy(DeployConfig(ROBOT, POLICY, episodes=1, status=False, reality=str(reality), max_steps=3))
    assert summary.notes == ["reality term control_period_jitter: the control loop's own timing stands in for it"]

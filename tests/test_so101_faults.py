"""Faults on the SO-101's Feetech bus, through the deploy of its shipped policy on the mock arm (the real driver
bytes to the emulated servos): a noisy line, a port that vanishes mid-run, a servo alert at activation."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mock.hardware import MockHardware
from policies.deploy import deploy
from real.deploy_config import DeployConfig
from real.log_reader import read_log
from robot.config_file import load_hardware_config

ROBOT, POLICY = "mock/so101", "so101_grasp_state"
IDS = ["1", "2", "3", "4", "5", "6"]


@pytest.fixture
def hardware():
    mock = MockHardware(load_hardware_config(ROBOT), None, seed=3_000_000)
    yield mock
    mock.close()


def test_a_noisy_feetech_bus_costs_retries_not_rate(tmp_path):
    """5 % of replies lost and 1 % corrupted per servo: retried, counted, 10 Hz kept, every command within the
    safety filter's step."""
    log = tmp_path / "noisy.mcap"
    faults = {"drop_probability": 0.05, "corrupt_probability": 0.01}
    summary = deploy(DeployConfig(ROBOT, POLICY, episodes=2, log=str(log), status=False, bus_faults=faults))
    assert summary.ended == "completed", summary.message
    assert summary.bus["retries"] >= 5 and summary.bus["timeouts"] + summary.bus["corrupt"] >= 5
    assert summary.loop["cycle_ms_p50"] == pytest.approx(100.0, abs=5.0) and summary.loop["overruns"] <= 2
    max_step = load_hardware_config(ROBOT).safety.max_step
    starts = [m.stamp_ns for m in read_log(log, topics=["/episode"]) if m.data["event"] == "start"]
    commands = list(read_log(log, topics=["/command"]))
    episode_of = np.searchsorted(starts, [m.stamp_ns for m in commands], side="right")
    sent = np.array([m.data["sent"] for m in commands])
    for k in range(1, len(starts) + 1):
        assert np.all(np.abs(np.diff(sent[episode_of == k], axis=0)) <= max_step + 1e-9)
    assert summary.torque_off == {"off": [int(i) for i in IDS], "unreachable": {}}


def test_a_port_that_vanishes_mid_run_names_the_motors_to_cut(hardware):
    timer = threading.Timer(2.0, hardware._server.stop)  # the USB adapter is pulled
    timer.start()
    summary = deploy(DeployConfig(ROBOT, POLICY, episodes=50, status=False), hardware=hardware)
    timer.join()
    assert summary.ended == "error" and "PortError" in summary.message
    assert "TORQUE NOT CONFIRMED OFF" in summary.message and "cut power to motor(s) 1, 2, 3, 4, 5, 6" in summary.message
    assert sorted(summary.torque_off["unreachable"]) == IDS


def test_a_servo_in_alert_at_start_is_refused_before_anything_moves(hardware):
    """Servo 3 reports an overload from the start: configure refuses the robot, naming the servo and its condition,
    before any register is written; torque never went on."""
    hardware.emulator.servos[3].faults.hardware_error = 0x20
    summary = deploy(DeployConfig(ROBOT, POLICY, episodes=1, status=False), hardware=hardware)
    assert summary.ended == "error", summary.message
    assert "id 3 (elbow_flex): in alert (overload)" in summary.message
    assert all(s.get("torque_enable") == 0 for s in hardware.emulator.servos.values())
    assert hardware.emulator.servos[1].get("max_position_limit") == 4095 and not summary.episodes  # as it powered up


def test_an_overload_mid_run_stops_it_by_name_and_parks_what_it_can(hardware):
    """Servo 3 overloads during the first episode: the next state read stops the run (a safety stop naming it) and
    torque goes off on all six, read back."""
    timer = threading.Timer(2.0, lambda: setattr(hardware.emulator.servos[3].faults, "hardware_error", 0x20))
    timer.start()
    summary = deploy(DeployConfig(ROBOT, POLICY, episodes=5, status=False), hardware=hardware)
    timer.join()
    assert summary.ended == "safety_stop", summary.message
    assert "motor 3 (elbow_flex)" in summary.message and "overload" in summary.message
    assert summary.torque_off["unreachable"] == {} and len(summary.torque_off["off"]) == 6
    assert all(s.get("torque_enable") == 0 for s in hardware.emulator.servos.values())

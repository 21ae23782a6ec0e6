"""Faults inside the SO-101's transitions, through the real Feetech driver over a pseudo-terminal against the
emulated STS3215 servos: a brown-out at torque on, a signal during activation, a port that comes back, a servo that
will not take or keeps losing torque, goals it refuses, health out of range, and replies lost while parking.
The same cases the Dynamixel arm has (tests/test_hardware_faults.py); every claim about torque is read back from the
emulated servos' registers. STS servos have no bus watchdog, so its cases have no counterpart here."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from mock.plants import make_plant
from mock.servo_emulators import emulator_for_config
from real.robot import Lifecycle, Robot
from real.safety import SafetyStop
from real.serial_bus import BusTimeout, PortError
from real.serial_emulator import EmulatorThread
from robot.config_file import load_hardware_config

IDS = [1, 2, 3, 4, 5, 6]


@pytest.fixture
def arm(tmp_path):
    """The six emulated STS3215 (first-order motion) on a pty, and the SO-101 config pointed at it."""
    config = load_hardware_config("so101")
    emulator = emulator_for_config(config, make_plant(config, "simple"))
    link = tmp_path / "ttySO101"
    server = EmulatorThread(emulator, link)
    emulator.link, emulator.server = link, server
    yield emulator, config.model_copy(update={"bus": config.bus.model_copy(update={"port": str(link)})})
    emulator.server.stop()


def _torque(emulator) -> list[int]:
    return [s.get("torque_enable") for s in emulator.servos.values()]


def test_a_brown_out_during_activation_leaves_no_motor_powered(arm):
    """Servo 3 vanishes when its torque comes on, after 1 and 2 got theirs: activation fails, every other servo is
    read back with torque off, 3 is named as unreachable."""
    emulator, config = arm
    robot = Robot(config)
    with pytest.raises(BusTimeout), robot:
        robot.configure()
        emulator.servos[3].faults.vanish_on_write = "torque_enable"
        robot.activate()
    assert _torque(emulator) == [0] * 6  # 3 browned out before its torque-on took
    assert robot.torque_report.off == [1, 2, 4, 5, 6] and list(robot.torque_report.unreachable) == [3]
    assert "cut power to motor(s) 3" in robot.torque_report.describe(config)
    assert robot.state == Lifecycle.finalized


def test_a_signal_during_activation_is_held_until_it_ends_then_torque_goes_off(arm):
    emulator, config = arm
    robot = Robot(config)
    robot.configure()
    for s in emulator.servos.values():
        s.faults.delay_s = 0.04  # each reply 40 ms late: activation takes about 0.5 s, a busy host's timer fits in it
    sent = []
    timer = threading.Timer(0.05, lambda: (sent.append(time.monotonic()), os.kill(os.getpid(), signal.SIGINT)))
    # Python's own Ctrl-C handling, whatever an earlier test of the run left installed (a clean-clone CI saw this
    # test's SIGINT not raise after the rest of the suite; run alone or after the SO-101 files it does)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        start = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            robot.activate()
        ended = time.monotonic()
        assert start < sent[0] < ended - 0.01  # the signal came in the middle of the activation
        assert robot.state == Lifecycle.active  # held: activation completed before it was raised
    finally:
        timer.join()
        robot.shutdown()
        signal.signal(signal.SIGINT, previous)
    assert robot.torque_report.confirmed and _torque(emulator) == [0] * 6


def test_a_port_that_comes_back_gets_torque_off_after_a_reopen(arm):
    emulator, config = arm
    robot = Robot(config)
    robot.configure()
    robot.activate()
    assert _torque(emulator) == [1] * 6
    emulator.server.stop()  # the USB adapter is pulled
    with pytest.raises(PortError):
        for _ in range(5):
            robot.read()
    again = EmulatorThread(emulator, emulator.link)  # re-plugged on the same path
    try:
        robot.shutdown()
        assert robot.torque_report.confirmed and _torque(emulator) == [0] * 6
    finally:
        again.stop()


def test_a_servo_that_does_not_take_torque_stops_activation(arm):
    emulator, config = arm
    emulator.servos[2].faults.freeze = {"torque_enable": 0}
    with Robot(config) as robot:
        robot.configure()
        with pytest.raises(SafetyStop, match=r"torque is off on motor 2 \(shoulder_lift\)"):
            robot.activate()
    assert robot.torque_report.confirmed and _torque(emulator) == [0] * 6


def test_a_servo_that_loses_torque_mid_run_stops_the_run(arm):
    """A brown-out resets servo 4 mid-run (torque off, nothing else said): the periodic read-back catches it."""
    emulator, config = arm
    with Robot(config) as robot:
        robot.configure()
        robot.activate()
        emulator.servos[4].set("torque_enable", 0)
        deadline = time.monotonic() + config.safety.health_period_s + 1.0
        with pytest.raises(SafetyStop, match=r"torque is off on motor 4 \(wrist_flex\)"):
            while time.monotonic() < deadline:
                robot.write(robot.read().position)
                time.sleep(0.05)
    assert _torque(emulator) == [0] * 6


def test_goals_the_servos_refuse_stop_the_run(arm):
    emulator, config = arm
    with Robot(config) as robot:
        robot.configure()
        robot.activate()
        emulator.servos[5].faults.freeze = {"goal_position": 2048 + 300}
        with pytest.raises(SafetyStop, match=r"refuse their goals.*motor 5 \(wrist_roll\)"):
            for _ in range(5):
                robot.write(robot.read().position)
                time.sleep(0.02)
    assert _torque(emulator) == [0] * 6


def test_an_overheating_or_overvolted_servo_stops_the_run_by_name(arm):
    """Temperature (degC) and input voltage (0.1 V) registers read every ``safety.health_period_s``; the STS3215
    takes 4.0-7.4 V (robot/servo_models.py)."""
    emulator, config = arm
    with Robot(config) as robot:
        robot.configure()
        robot.activate()
        emulator.servos[3].faults.freeze = {"present_temperature": 75}
        emulator.servos[6].faults.freeze = {"present_voltage": 95}  # 9.5 V: a 3S battery on a 2S arm
        deadline = time.monotonic() + config.safety.health_period_s + 1.0
        with pytest.raises(SafetyStop, match=r"motor 3 \(elbow_flex\): 75 .C above.*motor 6 \(gripper\): 9.5 V"):
            while time.monotonic() < deadline:
                robot.read()
                time.sleep(0.05)
    assert _torque(emulator) == [0] * 6


def test_replies_lost_while_parking_are_retried_and_torque_still_goes_off(arm):
    """The park and the torque-off are the exit path: three replies of every servo lost in the middle of it cost
    retries, not the torque-off, which is read back."""
    emulator, config = arm
    robot = Robot(config)
    start = robot.configure()
    robot.activate()
    target = start.position + np.array([0.2, 0.2, -0.2, 0.0, 0.0, 0.0])
    for _ in range(6):
        robot.write(target)
        time.sleep(0.05)
    bus = robot.bus
    retries = bus.stats["retries"]
    for s in emulator.servos.values():
        s.faults.drop_next = 3
    robot.shutdown()
    assert robot.torque_report.confirmed and _torque(emulator) == [0] * 6
    assert bus.stats["retries"] >= retries + 3, bus.stats
    assert robot.state == Lifecycle.finalized

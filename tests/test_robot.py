"""The robot lifecycle over the real driver code and the servo emulator on a pseudo-terminal: configure, activate,
filtered writes, park and torque off on every exit path, hardware errors."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from mock.plants import make_plant
from real.dynamixel.emulator import EmulatorThread, emulator_for_config, open_pty
from real.robot import Lifecycle, Robot
from real.safety import SafetyStop


@pytest.fixture
def arm_emulator(tmp_path, arm_config):
    """The arm's five servos with first-order motion, served from a thread (faults settable by the test)."""
    em = emulator_for_config(arm_config, make_plant(arm_config, "simple"))
    with EmulatorThread(em, tmp_path / "ttyOMX") as server:
        em.link = server.link
        yield em


def _torque(em) -> list[int]:
    return [s.get("torque_enable") for s in em.servos.values()]


def test_lifecycle_moves_only_through_the_filter_and_parks(arm_emulator, arm_config):
    robot = Robot(arm_config, port=arm_emulator.link)
    with pytest.raises(RuntimeError, match="cannot write while unconfigured"):
        robot.write(np.zeros(5))
    start = robot.configure()
    assert robot.state == Lifecycle.inactive and _torque(arm_emulator) == [0] * 5
    assert all(s.get("bus_watchdog") == 15 for s in arm_emulator.servos.values())  # 300 ms in 20 ms units
    robot.activate()
    assert robot.state == Lifecycle.active and _torque(arm_emulator) == [1] * 5
    # a target 1.5 rad away moves at most max_step (0.25 rad) per cycle
    sent, events = robot.write(start.position + np.array([1.5, 0, 0, 0, 0]))
    assert sent[0] == pytest.approx(start.position[0] + 0.25, abs=1e-9) and events[0].kind == "step_limit"
    for _ in range(16):  # the first-order plant settles; polling keeps the servos' bus watchdog fed
        time.sleep(0.05)
        reading = robot.read()
    assert reading.position[0] == pytest.approx(sent[0], abs=0.01)
    robot.deactivate()
    assert robot.state == Lifecycle.inactive and _torque(arm_emulator) == [0] * 5
    np.testing.assert_allclose(robot.read().position, robot.rest, atol=0.01)  # parked at rest before letting go
    robot.shutdown()
    assert robot.state == Lifecycle.finalized and robot.bus is None


def test_an_exception_inside_the_run_still_parks_and_releases(arm_emulator, arm_config):
    with pytest.raises(ZeroDivisionError), Robot(arm_config, port=arm_emulator.link) as robot:
        robot.configure()
        robot.activate()
        robot.write(robot.read().position + 0.1)
        1 / 0  # noqa: B018 - any error in the control loop
    assert robot.state == Lifecycle.finalized and _torque(arm_emulator) == [0] * 5


def test_a_servo_hardware_error_stops_the_run_naming_the_motor(arm_emulator, arm_config):
    with Robot(arm_config, port=arm_emulator.link) as robot:
        robot.configure()
        robot.activate()
        arm_emulator.servos[13].faults.hardware_error = 1 << 5
        with pytest.raises(SafetyStop, match=r"motor 13 \(joint3\): overload error"):
            robot.read()
        arm_emulator.servos[13].faults.hardware_error = 0
    assert _torque(arm_emulator) == [0] * 5


def test_configure_refuses_a_bus_without_the_motors(tmp_path, arm_config):
    master, slave, _ = open_pty(tmp_path / "ttyEmpty")  # nobody answers
    try:
        robot = Robot(arm_config, port=str(tmp_path / "ttyEmpty"))
        with pytest.raises(Exception, match="no answer from ids"):
            robot.configure()
        assert robot.state == Lifecycle.unconfigured and robot.bus is None
    finally:
        os.close(master)
        os.close(slave)


def test_fill_pixel_holes_keeps_regions_without_readings():
    depth = np.full((12, 12), 0.8, np.float32)
    depth[2, 2] = 0.0  # an aligner's hole
    depth[2, 3] = 0.6  # a nearer neighbour: the hole takes the nearest reading
    depth[6:11, 6:11] = 0.0  # a region with no reading (beyond range, a dark surface)
    from robot.frame_reduction import fill_pixel_holes

    filled = fill_pixel_holes(depth)
    assert filled[2, 2] == pytest.approx(0.6)
    assert np.all(filled[7:10, 7:10] == 0) and filled[6, 6] == pytest.approx(0.8)  # only its border is filled
    assert fill_pixel_holes(np.full((3, 3), 0.5, np.float32)).tolist() == [[0.5] * 3] * 3
    edge = np.zeros((4, 4), np.float32)
    edge[0, 1] = 0.7  # holes on the image border: filled from inside the image only, never from outside
    out = fill_pixel_holes(edge)
    assert out[0, 0] == pytest.approx(0.7) and out[3, 3] == 0 and out.max() == pytest.approx(0.7)

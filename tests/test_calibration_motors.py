"""Servo homing on the emulator: the real driver bytes over a pty, servos whose horns are mounted with unknown
offsets and directions, held in poses and swept through their ranges by a scripted operator."""

from __future__ import annotations

import re

import numpy as np
import pytest
from held_arm import HeldArm, ScriptedOperator

from calibration.motors import HomingError, home_motors, save
from policies.cli import main
from real.dynamixel.bus import DynamixelBus
from real.dynamixel.emulator import EmulatorThread, emulator_for_config
from real.dynamixel.motor_bus import MotorBus, WrapAroundError
from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config
from robot.description import HardwareConfig

#: How the true robot's horns are mounted (motor angle at joint zero, rad) and which way each motor turns.
TRUE_OFFSETS = [0.31, -0.52, 1.04, 0.12, -0.2]
TRUE_DIRECTIONS = [1, 1, -1, -1, 1]
#: Joint ranges the operator sweeps through (joint units).
SWEEP = {"joint1": (-2.0, 2.0), "joint2": (-1.2, 1.3), "joint3": (-1.1, 1.0), "joint4": (-1.5, 1.6)}


def _true_config(config: HardwareConfig, offsets=TRUE_OFFSETS, directions=TRUE_DIRECTIONS) -> HardwareConfig:
    motors = [
        m.model_copy(update={"offset": o, "direction": d})
        for m, o, d in zip(config.motors, offsets, directions, strict=True)
    ]
    return config.model_copy(update={"motors": motors})


@pytest.fixture
def robot_file(tmp_path):
    """The shipped arm config, copied, its bus on the test's pty link."""
    text = (HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml").read_text()
    link = tmp_path / "ttyOMX"
    path = tmp_path / "arm.yaml"
    path.write_text(re.sub(r"(?m)^(\s*port:).*$", rf"\1 {link}", text, count=1))
    return path


def _serve(config: HardwareConfig, truth: HardwareConfig):
    plant = HeldArm(truth)
    return plant, EmulatorThread(emulator_for_config(config, plant), config.bus.port)


def test_homing_finds_offsets_directions_and_ranges_and_saves_them(robot_file):
    config = load_hardware_config(robot_file)
    truth = _true_config(config)
    plant, server = _serve(config, truth)
    with server, DynamixelBus(config.bus.port, config.bus.baudrate) as bus:
        result = home_motors(config, bus, ScriptedOperator(plant, SWEEP))
        torque = [s.get("torque_enable") for s in server.emulator.servos.values()]
    assert torque == [0] * 5
    by_joint = {c.joint: c for c in result.motors}
    for m, offset, direction in zip(config.motors, TRUE_OFFSETS, TRUE_DIRECTIONS, strict=True):
        cal = by_joint[m.joint]
        # hand error 5 mm or mrad of joint -> motor angle error 5 mrad / scale; plus a tick
        assert cal.offset == pytest.approx(offset, abs=0.006 / m.scale + 0.002), m.joint
        if cal.direction_checked:
            assert cal.direction == direction, m.joint
    # joint1's rest is 0: its direction cannot be told from the poses, and the result says so
    assert not by_joint["joint1"].direction_checked and by_joint["joint1"].direction == 1
    assert any("joint1" in w and "direction" in w for w in result.warnings)
    assert by_joint["joint3"].direction == -1 and by_joint["joint4"].direction == -1
    for joint, (lo, hi) in SWEEP.items():
        assert by_joint[joint].lower == pytest.approx(lo + 0.05, abs=0.02)
        assert by_joint[joint].upper == pytest.approx(hi - 0.05, abs=0.02)
    assert not by_joint["gripper"].limits_measured  # not swept: configured limits kept

    before = robot_file.read_text()
    save(result, robot_file)
    after = robot_file.read_text()
    assert (robot_file.parent / "arm.yaml.bak").read_text() == before
    assert [line for line in before.splitlines() if line.lstrip().startswith("#")] == [
        line for line in after.splitlines() if line.lstrip().startswith("#")
    ]
    saved = load_hardware_config(robot_file)
    assert [m.offset for m in saved.motors] == [c.offset for c in result.motors]
    assert saved.motors[2].direction == -1 and saved.motors[2].limits.upper == by_joint["joint3"].upper

    # The robot now reads the held pose as the true joint values (joint1 excepted: its direction was unknown and
    # is right by chance here, since the truth is +1).
    held = np.array([0.4, -0.3, 0.5, 0.7, 0.01])
    plant, server = _serve(saved, truth)
    plant.joints = held
    with server, DynamixelBus(saved.bus.port, saved.bus.baudrate) as bus:
        reading = MotorBus(saved, bus).read().position
    assert reading == pytest.approx(held, abs=0.01)


def test_a_range_across_the_encoder_wrap_around_is_refused(robot_file):
    config = load_hardware_config(robot_file)
    truth = _true_config(config, offsets=[2.9, 0.0, 0.0, 0.0, 0.0], directions=[1] * 5)  # joint1 near the seam
    plant, server = _serve(config, truth)
    before = robot_file.read_text()
    with server, DynamixelBus(config.bus.port, config.bus.baudrate) as bus:
        with pytest.raises(HomingError, match="joint1.*wrap-around"):
            home_motors(config, bus, ScriptedOperator(plant, SWEEP))
    assert robot_file.read_text() == before
    # A config whose limits cross the seam is refused when the robot is configured, too.
    with server.__class__(emulator_for_config(config, HeldArm(config)), config.bus.port):
        with DynamixelBus(config.bus.port, config.bus.baudrate) as bus:
            with pytest.raises(WrapAroundError, match="joint1"):
                MotorBus(_true_config(config, offsets=[2.9, 0, 0, 0, 0], directions=[1] * 5), bus).configure()


def test_cli_homes_through_console_prompts(robot_file, monkeypatch, capsys):
    config = load_hardware_config(robot_file)
    plant, server = _serve(config, _true_config(config))
    operator = ScriptedOperator(plant, SWEEP)
    prompts: list[str] = []
    monkeypatch.setattr("builtins.input", operator.console(dict(config.arm.rest), prompts))
    with server:
        assert main(["calibrate", "motors", "--robot", str(robot_file)]) == 0
    out = capsys.readouterr().out
    assert "torque goes off" in prompts[0]  # warned before anything is released
    assert "joint3 (id 13): offset +1.04" in out and "direction -1" in out
    assert load_hardware_config(robot_file).motors[2].direction == -1

"""A robot's motors in SI joint units, configured and commanded through the emulator over a pty."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import yaml

from mock.bus_process import EmulatorProcess
from real.dynamixel.bus import DynamixelBus, DynamixelError
from real.dynamixel.motor_bus import MotorBus
from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config


def test_arm_configure_command_and_read_in_joint_units(tmp_path, arm_config):
    link = tmp_path / "ttyOMX"
    with EmulatorProcess("openmanipulator_x", link), DynamixelBus(str(link)) as bus:
        motors = MotorBus(arm_config, bus)
        motors.configure(bus_watchdog_s=1.0)
        # The configured limits reached the servos' EEPROM (joint1 +-2.8 rad -> 2048 -+ 1825 ticks).
        reg = motors._reg(11, "max_position_limit")
        assert bus.read(11, reg) == 2048 + round(2.8 / (2 * math.pi / 4096))
        motors.set_torque(True)
        target = np.array([0.3, -0.5, 0.4, 0.2, 0.01])
        sent = motors.write(target)
        assert sent[15] == 2048 + round(0.01 / 0.015 / (2 * math.pi / 4096))  # gripper: m -> rad via scale
        time.sleep(0.8)
        state = motors.read()
        tolerance = 2 * 2 * math.pi / 4096 * np.array([1, 1, 1, 1, 0.015])  # 2 ticks, in joint units
        assert np.all(np.abs(state.position - target) <= tolerance), (state.position, target)
        assert np.all(np.abs(state.velocity) < 0.1) and state.stamp_ns > 0
        with pytest.raises(ValueError, match="5 finite joint targets"):
            motors.write(np.array([0.0, math.nan, 0, 0, 0]))


def test_wheels_follow_direction_and_velocity_units(tmp_path, base_config):
    link = tmp_path / "ttyTB3"
    with EmulatorProcess("turtlebot3_burger", link), DynamixelBus(str(link)) as bus:
        motors = MotorBus(base_config, bus)
        motors.configure()
        motors.set_torque(True)
        sent = motors.write(np.array([2.0, 2.0]))  # both wheels forward at 2 rad/s
        rpm_unit = 0.229 * 2 * math.pi / 60
        assert sent == {1: round(2.0 / rpm_unit), 2: -round(2.0 / rpm_unit)}  # the right motor is mirrored
        time.sleep(0.5)
        np.testing.assert_allclose(motors.read().velocity, [2.0, 2.0], atol=rpm_unit)


def test_configure_names_missing_and_wrong_motors(tmp_path):
    data = yaml.safe_load((HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml").read_text())
    data["motors"][1]["model"] = "XL430-W250"
    data["motors"][4]["id"] = 20
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump(data))
    link = tmp_path / "ttyOMX"
    with EmulatorProcess("openmanipulator_x", link), DynamixelBus(str(link), retries=0) as bus:
        with pytest.raises(DynamixelError, match=r"no answer from ids \[20\].*id 12 \(joint2\): model number 1020"):
            MotorBus(load_hardware_config(path), bus).configure()


def test_pybullet_plant_moves_simulated_joints_through_the_real_driver(tmp_path, arm_config):
    link = tmp_path / "ttyOMX"
    with EmulatorProcess("openmanipulator_x", link, physics="pybullet"), DynamixelBus(str(link)) as bus:
        motors = MotorBus(arm_config, bus)
        motors.configure()
        rest = np.array([arm_config.arm.rest[j] for j in arm_config.joint_names])
        # Powered up at rest with torque off: the limp arm has started to sag under gravity.
        assert np.all(np.abs(motors.read().position - rest) < 0.5)
        motors.set_torque(True)
        target = rest + np.array([0.4, 0.2, -0.2, 0.3, -0.01])
        motors.write(target)
        time.sleep(1.0)
        state = motors.read()
        assert np.all(np.abs(state.position - target) < np.array([0.03, 0.05, 0.05, 0.05, 0.003])), state.position
        assert abs(state.effort[1]) > 0.01  # the shoulder carries the arm: present current from the simulation
        motors.set_torque(False)
        time.sleep(1.0)
        assert abs(motors.read().position[1] - target[1]) > 0.2  # limp: the arm falls under gravity


def test_torque_on_holds_where_the_arm_is(tmp_path, arm_config):
    """Torque on without any read first: the servo holds its present position (no jump to a stale goal)."""
    link = tmp_path / "ttyOMX"
    with EmulatorProcess("openmanipulator_x", link, physics="pybullet"), DynamixelBus(str(link)) as bus:
        motors = MotorBus(arm_config, bus)
        motors.configure()
        before = motors.read().position  # wherever the limp arm sagged to while it was configured
        motors.set_torque(True)
        time.sleep(0.3)
        state = motors.read()
        assert np.all(np.abs(state.position - before) < 0.2) and np.all(np.abs(state.velocity) < 0.5), (before, state)


def test_current_based_position_mode_and_homing_offset_cleared(tmp_path):
    data = yaml.safe_load((HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml").read_text())
    data["motors"][4]["mode"] = "current_position"  # the gripper squeezes with a current limit
    path = tmp_path / "omx.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_hardware_config(path)
    link = tmp_path / "ttyOMX"
    with EmulatorProcess("openmanipulator_x", link), DynamixelBus(str(link)) as bus:
        motors = MotorBus(config, bus)
        bus.write(11, motors._reg(11, "homing_offset"), 300)  # a stray offset left in the servo
        assert abs(bus.read(11, motors._reg(11, "present_position")) - (2048 + 300)) <= 2
        motors.configure()
        assert bus.read(15, motors._reg(15, "operating_mode")) == 5  # current-based position
        assert bus.read(11, motors._reg(11, "homing_offset")) == 0
        assert abs(motors.read().position[0]) < 0.01  # the config's offset (0) is the only one applied
    data["motors"][0]["model"] = "XL430-W250"
    data["motors"][0]["mode"] = "current_position"
    path.write_text(yaml.safe_dump(data))
    from robot.description import ConfigError

    with pytest.raises(ConfigError, match="motors.0: .*XL430-W250 has no current control"):
        load_hardware_config(path)


@pytest.mark.parametrize("robot", ["openmanipulator_x", "turtlebot3_burger"])
def test_efforts_are_the_simulated_joint_torques_in_newton_metres(tmp_path, robot):
    """Effort comes back in N*m (N for the gripper in m) whatever the servo reports: Present Current (XM430) times
    its torque per amp, or Present Load (XL430) times its stall torque. Through the emulator the driver reads the
    simulated joint torques back, to the registers' resolution."""
    from mock.plants import make_plant
    from real.dynamixel.emulator import EmulatorThread, emulator_for_config

    config = load_hardware_config(robot)
    plant = make_plant(config, "pybullet")
    link = tmp_path / "tty"
    with EmulatorThread(emulator_for_config(config, plant), link), DynamixelBus(str(link)) as bus:
        motors = MotorBus(config, bus)
        motors.configure()
        motors.set_torque(True)
        held = motors.read().position
        hold = np.where([m.mode.value == "velocity" for m in config.motors], 0.8, held)  # wheels turn
        motors.write(hold)
        time.sleep(0.8)
        state = motors.read()
        truth = plant.robot.read().effort
    raw_unit = {"XM430-W350": 2.69e-3, "XL330-M288": 1e-3, "XL430-W250": 1e-3}  # A or load fraction per count
    per_raw = np.array(
        [
            4.1 / 2.3 if m.model == "XM430-W350" else 0.52 / 1.47 if m.model == "XL330-M288" else 1.5
            for m in config.motors
        ]
    )  # N*m per A (4.1 / 2.3, 0.52 / 1.47) or per full load (1.5)
    scale = np.array([m.scale for m in config.motors])
    resolution = np.array([raw_unit[m.model] for m in config.motors]) * per_raw / scale  # N*m (N) per count
    assert np.any(np.abs(truth) > 4 * resolution), truth  # something carries a load
    error = np.abs(state.effort - truth)
    assert np.all(error <= 2 * resolution + 0.03 * np.abs(truth)), (state.effort, truth)
    # the raw registers: the same torque in A, or as a fraction of the stall torque
    np.testing.assert_allclose(np.abs(motors.effort_raw) * per_raw / scale, np.abs(state.effort), rtol=1e-9)

"""A LeRobot SO-101 calibration file imported into our config gives, through our Feetech driver and the emulated
servos, the joint angles LeRobot's own convention gives for the same raw positions."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from calibration.lerobot_calibration import homing_from_lerobot, read_lerobot_calibration
from calibration.motors import save
from mock.plants import make_plant
from mock.servo_emulators import emulator_for_config
from real.feetech.control_table import MODELS
from real.robot import Robot
from real.serial_emulator import EmulatorThread
from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config
from robot.description import ConfigError

#: A follower arm as `lerobot-calibrate --robot.type=so101_follower` writes one (values of an arm of ours).
CALIBRATION = {
    "shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1402, "range_min": 760, "range_max": 3410},
    "shoulder_lift": {"id": 2, "drive_mode": 0, "homing_offset": 1187, "range_min": 830, "range_max": 3260},
    "elbow_flex": {"id": 3, "drive_mode": 0, "homing_offset": -977, "range_min": 1000, "range_max": 3000},
    "wrist_flex": {"id": 4, "drive_mode": 1, "homing_offset": -1690, "range_min": 860, "range_max": 3190},
    "wrist_roll": {"id": 5, "drive_mode": 0, "homing_offset": 305, "range_min": 120, "range_max": 3980},
    "gripper": {"id": 6, "drive_mode": 0, "homing_offset": 1411, "range_min": 2010, "range_max": 3390},
}
TICK = MODELS["STS3215"].register("present_position").unit


@pytest.fixture
def imported(tmp_path):
    """so101.yaml (copied) with the LeRobot calibration imported, and the file it came from."""
    source = tmp_path / "so101_follower.json"
    source.write_text(json.dumps(CALIBRATION))
    config_path = tmp_path / "so101.yaml"
    shutil.copy(HARDWARE_CONFIG_DIR / "so101.yaml", config_path)
    result = homing_from_lerobot(load_hardware_config(config_path), read_lerobot_calibration(source))
    save(result, config_path)
    return load_hardware_config(config_path), read_lerobot_calibration(source)


def test_the_fields_land_in_the_config(imported):
    config, lerobot = imported
    for m in config.motors:
        lr = lerobot[m.joint]
        flipped = lr.drive_mode and m.joint == "gripper"  # LeRobot's degrees ignore drive_mode, its 0-100 does not
        assert m.homing_offset == lr.homing_offset and m.direction == (-1 if flipped else 1)
        if m.joint != "gripper":
            assert m.offset == pytest.approx((lr.mid - 2048) * TICK)
    grip = config.motor("gripper")  # closed (range_min) at arm.gripper_closed, open as far as the range goes
    assert grip.limits.lower == pytest.approx(config.arm.gripper_closed)
    assert grip.limits.upper == pytest.approx(min(1.74, config.arm.gripper_closed + (3390 - 2010) * TICK))
    elbow = config.motor("elbow_flex")  # the recorded range where it lies inside the configured limits ...
    assert elbow.limits.lower == pytest.approx(-1000 * TICK) and elbow.limits.upper == pytest.approx(1000 * TICK)
    pan = config.motor("shoulder_pan")  # ... and those limits where it goes beyond them
    assert (pan.limits.lower, pan.limits.upper) == (-1.9, 1.9)


def test_joint_angles_match_lerobot_for_the_same_raw_positions(imported, tmp_path):
    config, lerobot = imported
    emulator = emulator_for_config(config, make_plant(config, "simple"))
    link = tmp_path / "ttySO101"
    rng = np.random.default_rng(3)
    with EmulatorThread(emulator, link), Robot(config, port=str(link)) as robot:
        robot.configure()  # writes each homing offset to its servo, as LeRobot left it
        for _ in range(5):
            present = {}
            for m in config.motors:
                lr = lerobot[m.joint]
                present[m.joint] = int(rng.integers(lr.range_min, lr.range_max + 1))
                servo = emulator.servos[m.id]  # the actual count is the present one plus the offset
                servo.position = (present[m.joint] + lr.homing_offset - 2048) * TICK
            reading = robot.read()
            for k, m in enumerate(config.motors):
                lr, raw = lerobot[m.joint], present[m.joint]
                assert emulator.servos[m.id].get("present_position") == raw
                if m.joint == "gripper":  # LeRobot's 0-100 over the recorded range, ours rad on the same line
                    span = (lr.range_max - lr.range_min) * TICK
                    ours = (reading.position[k] - config.arm.gripper_closed) / span * 100
                    assert ours == pytest.approx(lr.range_0_100(raw), abs=0.05)
                else:  # degrees: ours use 4096 counts a turn, LeRobot 4095, 1/4096 of the angle apart
                    assert math.degrees(reading.position[k]) == pytest.approx(lr.degrees(raw), abs=0.05)


def test_a_bad_file_is_refused_by_name(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"gripper": {"id": 6, "drive_mode": 0, "homing_offset": 0, "range_min": 3000}}))
    with pytest.raises(ConfigError, match="gripper.*range_max"):
        read_lerobot_calibration(bad)
    bad.write_text(json.dumps({**CALIBRATION, "gripper": {**CALIBRATION["gripper"], "range_max": 5000}}))
    with pytest.raises(ConfigError, match="gripper.*within 0..4095"):
        read_lerobot_calibration(bad)
    short = {k: v for k, v in CALIBRATION.items() if k != "wrist_roll"}
    bad.write_text(json.dumps(short))
    with pytest.raises(ConfigError, match="wrist_roll"):
        homing_from_lerobot(load_hardware_config("so101"), read_lerobot_calibration(bad))


def test_the_command_imports_the_file(tmp_path, capsys):
    from policies.cli import main as s2r

    source = tmp_path / "follower.json"
    source.write_text(json.dumps(CALIBRATION))
    config_path = tmp_path / "so101.yaml"
    shutil.copy(HARDWARE_CONFIG_DIR / "so101.yaml", config_path)
    assert s2r(["calibrate", "lerobot", "--file", str(source), "--robot", str(config_path), "--dry-run"]) == 0
    assert "homing_offset -1402" in capsys.readouterr().out and load_hardware_config(config_path).motors[0].offset == 0
    assert s2r(["calibrate", "lerobot", "--file", str(source), "--robot", str(config_path)]) == 0
    assert load_hardware_config(config_path).motor("shoulder_pan").homing_offset == -1402
    assert (tmp_path / "so101.yaml.bak").exists()


def test_sweep_homing_refuses_a_feetech_arm(capsys):
    """`s2r calibrate motors` homes Dynamixel arms; on the SO-101 it says what to use instead, before opening a port."""
    from policies.cli import main as s2r

    assert s2r(["calibrate", "motors", "--robot", "so101"]) == 2
    assert "s2r calibrate lerobot" in capsys.readouterr().err

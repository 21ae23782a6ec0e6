"""Leader-arm teleoperation on two emulated Feetech buses (the SO-101 leader, moved by a simulated hand with its
torque off, and the follower), through the real driver code and the follower's safety filter; a leader that goes
silent mid-run parks the follower with torque off; a teleoperated log trains a behaviour-cloning warm start."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mock.hand import HandPlant
from mock.plants import make_plant
from mock.servo_emulators import emulator_for_config
from real.deploy_log import DeployLog
from real.log_reader import read_log
from real.robot import Robot
from real.serial_bus import BusError
from real.serial_emulator import EmulatorThread
from real.teleop import LeaderArm, teleoperate
from robot.config_file import load_hardware_config
from robot.tasks.grasp import GraspTask


def _on(config, link):
    return config.model_copy(update={"bus": config.bus.model_copy(update={"port": str(link)})})


@pytest.fixture
def two_buses(tmp_path):
    """(leader emulator, leader config, follower emulator, follower config), each on its own pty."""
    follower = _on(load_hardware_config("so101"), tmp_path / "ttyFollower")
    leader = _on(load_hardware_config("so101_leader"), tmp_path / "ttyLeader")
    start = GraspTask(follower).start_pose()
    lead = emulator_for_config(leader, HandPlant(leader, start, amplitude=0.25, period_s=3.0))
    follow = emulator_for_config(follower, make_plant(follower, "simple"))
    with EmulatorThread(lead, leader.bus.port), EmulatorThread(follow, follower.bus.port):
        yield lead, leader, follow, follower


def test_the_follower_follows_the_leader_through_the_safety_filter(two_buses, tmp_path):
    lead, leader_cfg, follow, config = two_buses
    path = tmp_path / "teleop.mcap"
    log = DeployLog(str(path), config, {"robot": config.name, "task": "teleop"}, guard=threading.Lock)
    goals = {i: s.get("goal_position") for i, s in lead.servos.items()}
    with LeaderArm(leader_cfg) as leader:
        summary = teleoperate(Robot(config), leader, 3.0, log)
    assert summary.ended == "completed" and summary.cycles >= 25 and summary.overruns <= 2
    assert summary.parked and summary.torque == "torque off (read back on all 6 motors)"
    assert all(s.get("torque_enable") == 0 for s in lead.servos.values())  # the leader was never driven
    assert {i: s.get("goal_position") for i, s in lead.servos.items()} == goals
    assert all(s.get("torque_enable") == 0 for s in follow.servos.values())
    commands = [m.data for m in read_log(path, topics=["/command"])]
    joints = [np.array(m.data["position"]) for m in read_log(path, topics=["/joint_states"])]
    sent = np.array([c["sent"] for c in commands])
    requested = np.array([c["requested"] for c in commands])
    assert np.all(np.abs(np.diff(sent, axis=0)) <= config.safety.max_step + 1e-9)  # nothing past the filter
    lower, upper = [np.array([getattr(m.limits, k) for m in config.motors]) for k in ("lower", "upper")]
    assert np.all(sent >= lower - 1e-9) and np.all(sent <= upper + 1e-9)
    # after the first second (the arm moving from rest to the leader), the follower is where the leader was a cycle
    # before, within what the first-order servos lag
    settled = slice(10, None)
    lag = np.abs(np.array(joints[1:])[settled] - sent[:-1][settled])
    assert np.median(lag) < 0.03, np.median(lag)
    assert np.abs(sent[settled] - requested[settled]).max() < 0.05  # the hand's pace is within the step limit
    leader_topic = [m.data for m in read_log(path, topics=["/teleop/leader"])]
    assert len(leader_topic) == summary.cycles and leader_topic[0]["name"] == config.joint_names


def test_a_leader_that_goes_silent_mid_run_parks_the_follower(two_buses):
    lead, leader_cfg, follow, config = two_buses
    timer = threading.Timer(1.0, lambda: setattr(lead.servos[3].faults, "vanished", True))
    with LeaderArm(leader_cfg) as leader, pytest.raises(BusError, match="motor"):
        timer.start()
        teleoperate(Robot(config), leader, 10.0)
    assert all(s.get("torque_enable") == 0 for s in follow.servos.values())  # parked and released, read back


def test_a_teleoperated_log_trains_a_behaviour_cloning_warm_start(tmp_path):
    """Teleoperate the mock SO-101 (its grasp world logs the privileged state), then train from the log alone."""
    from policies.cli import main as s2r
    from policies.train import train
    from policies.train_config import TrainConfig

    log = tmp_path / "demo.mcap"
    argv = ["teleop", "--leader", "mock/so101_leader", "--robot", "mock/so101", "--seconds", "3", "--log", str(log)]
    assert s2r(argv) == 0
    cycles = len(list(read_log(log, topics=["/command"])))
    assert cycles >= 25 and len(list(read_log(log, topics=["/reality/privileged"]))) == cycles
    out = tmp_path / "run"
    cfg = TrainConfig(
        task="grasp", robot="so101", demos=[str(log)], bc_demos=0, steps=256, n_envs=1, eval_episodes=2, out=str(out)
    )
    report = train(cfg)
    assert report["logged_demonstrations"]["samples"] == cycles
    assert np.isfinite(report["behaviour_cloning"]["bc_action_mse"])
    assert np.isnan(report["behaviour_cloning"]["bc_value_mse"])  # no returns: the critic is not fitted to any
    from policies.loader import load

    bundle = load(out / "bundle")
    assert bundle.meta["robot"]["name"] == "so101" and bundle.meta["training"]["demos"] == [str(log)]


def test_the_keyboard_jogs_the_tool_and_quits(tmp_path):
    """Keyboard teleoperation of the SO-101 on an emulated bus: each r raises the tool target one 2 cm step through
    the grasp task's inverse kinematics, c closes the gripper, q ends the run early; the targets pass the safety
    filter and the arm parks with torque off, read back."""
    import os
    import time

    from real.keyboard_leader import KeyboardLeader

    config = _on(load_hardware_config("so101"), tmp_path / "ttyFollower")
    follow = emulator_for_config(config, make_plant(config, "simple"))
    start = GraspTask(config).start_pose()
    for motor, q in zip(config.motors, start, strict=True):  # the arm held at the task's start pose
        follow.servos[motor.id].position = motor.direction * q / motor.scale + motor.offset
    read_fd, write_fd = os.pipe()

    def type_keys():
        for delay, keys in ((0.6, b"r"), (0.3, b"r"), (0.3, b"r"), (0.3, b"c"), (0.8, b"q")):
            time.sleep(delay)
            os.write(write_fd, keys)

    path = tmp_path / "keys.mcap"
    log = DeployLog(str(path), config, {"robot": config.name, "task": "teleop"}, guard=threading.Lock)
    typist = threading.Thread(target=type_keys, daemon=True)
    with EmulatorThread(follow, config.bus.port):
        robot = Robot(config)
        leader = KeyboardLeader(config, read_fd, robot.read_patiently)
        typist.start()
        summary = teleoperate(robot, leader, 10.0, log, stop=lambda: leader.quit)
    os.close(read_fd)
    os.close(write_fd)
    assert summary.ended == "completed" and summary.seconds < 5.0 and leader.keys_read == 5
    assert summary.parked and summary.torque == "torque off (read back on all 6 motors)"
    requested = np.array([m.data["requested"] for m in read_log(path, topics=["/command"])])
    task = GraspTask(config)
    first, last = task.kin.forward(requested[0])[0], task.kin.forward(requested[-1])[0]
    assert last[2] - first[2] == pytest.approx(0.06, abs=0.002) and np.abs(last[:2] - first[:2]).max() < 0.002
    gripper = config.joint_names.index(config.arm.gripper_joint)
    assert requested[0][gripper] == pytest.approx(config.arm.gripper_open)
    assert requested[-1][gripper] == pytest.approx(config.arm.gripper_closed)

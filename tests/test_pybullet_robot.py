"""The simulated robot: servo-like joints with gains, velocity and torque limits, and command latency."""

from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

from sim.pybullet_robot import PyBulletRobot, default_servo_params
from sim.servo_model import CommandDelay, ServoParams


@pytest.fixture
def world():
    c = p.connect(p.DIRECT)
    p.setGravity(0, 0, -9.81, physicsClientId=c)
    p.setPhysicsEngineParameter(fixedTimeStep=1 / 240, physicsClientId=c)
    yield c
    p.disconnect(c)


def _arm(world, config, **changes):
    params = default_servo_params(config)
    for k, v in changes.items():
        setattr(params, k, v)
    robot = PyBulletRobot(world, config, params=params)
    q0 = np.array([config.arm.rest[j] for j in config.joint_names])
    robot.reset_joints(q0)
    return robot, q0


def test_joint_order_follows_config(world, arm_config):
    robot, q0 = _arm(world, arm_config)
    np.testing.assert_allclose(robot.read().position, q0, atol=1e-9)
    names = [p.getJointInfo(robot.body, i, physicsClientId=world)[1].decode() for i in robot.indices]
    assert names == arm_config.joint_names


def test_position_step_reaches_target_within_velocity_limit(world, arm_config):
    robot, q0 = _arm(world, arm_config)
    target = q0 + np.array([0.6, 0.3, -0.3, 0.4, -0.02])
    robot.command(target)
    peak = np.zeros(5)
    for _ in range(120):  # 0.5 s
        robot.step(1)
        peak = np.maximum(peak, np.abs(robot.read().velocity))
    np.testing.assert_allclose(robot.read().position, target, atol=0.01)
    limits = np.array([m.limits.velocity for m in arm_config.motors])
    assert np.all(peak <= limits * 1.02), (peak, limits)
    assert peak[0] > 0.9 * limits[0]  # a 0.6 rad step saturates the joint speed


def test_weak_servos_cannot_hold_the_arm_against_gravity(world, arm_config):
    strong, q0 = _arm(world, arm_config)
    strong.command(q0)
    strong.step(240)
    assert abs(strong.read().position[1] - q0[1]) < 0.01
    p.resetSimulation(physicsClientId=world)
    p.setGravity(0, 0, -9.81, physicsClientId=world)
    weak, _ = _arm(world, arm_config, max_torque=default_servo_params(arm_config).max_torque * 0.01)
    weak.command(q0)
    weak.step(240)
    assert abs(weak.read().position[1] - q0[1]) > 0.1  # 0.041 N*m cannot carry the arm


def test_command_latency_delays_motion(world, arm_config):
    robot, q0 = _arm(world, arm_config, latency=0.040)
    robot.command(q0 + [0.5, 0, 0, 0, 0])
    robot.step(9)  # 37.5 ms: not yet applied
    assert abs(robot.read().position[0] - q0[0]) < 1e-4
    robot.step(6)  # 62.5 ms: applied at 40 ms, moving
    assert robot.read().position[0] - q0[0] > 0.02
    assert robot.time == pytest.approx(15 / 240)


def test_command_delay_keeps_order_and_takes_newest_due():
    d = CommandDelay(latency=0.02)
    d.push(0.0, np.array([1.0]))
    d.push(0.01, np.array([2.0]))
    assert d.pop_due(0.015) is None
    assert d.pop_due(0.02)[0] == 1.0
    d.push(0.02, np.array([3.0]))
    assert d.pop_due(0.05)[0] == 3.0  # 2.0 was due too but superseded
    assert d.pop_due(1.0) is None


def test_servo_params_are_validated(arm_config):
    good = default_servo_params(arm_config)
    with pytest.raises(ValueError, match="velocity_gain: expected shape"):
        ServoParams(good.position_gain, np.ones(3), good.max_torque, good.max_velocity, good.damping)
    with pytest.raises(ValueError, match="latency"):
        ServoParams(good.position_gain, good.velocity_gain, good.max_torque, good.max_velocity, good.damping, 2.0)
    with pytest.raises(ValueError, match="non-negative"):
        ServoParams(-good.position_gain, good.velocity_gain, good.max_torque, good.max_velocity, good.damping)


def test_bad_commands_are_refused(world, arm_config):
    robot, q0 = _arm(world, arm_config)
    with pytest.raises(ValueError, match="finite"):
        robot.command(q0 * np.nan)
    with pytest.raises(ValueError, match="expected 5"):
        robot.command(q0[:3])


def test_wheels_track_velocity_targets_and_base_pose_is_the_link_frame(world, base_config):
    floor = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=world)
    p.createMultiBody(0, floor, physicsClientId=world)
    yaw = 0.7
    robot = PyBulletRobot(world, base_config, (0.5, -0.3, 0.010), p.getQuaternionFromEuler([0, 0, yaw]))
    pos, orn = robot.link_pose("base_link")
    np.testing.assert_allclose(pos, [0.5, -0.3, 0.010], atol=1e-7)
    assert p.getEulerFromQuaternion(orn)[2] == pytest.approx(yaw)
    robot.reset_joints(np.zeros(2))
    robot.step(24)
    robot.command(np.array([4.0, 4.0]))  # rad/s: 0.132 m/s straight ahead
    robot.step(240)
    np.testing.assert_allclose(robot.read().velocity, [4.0, 4.0], atol=0.1)
    start = robot.link_pose("base_link")[0]
    robot.step(240)
    moved = robot.link_pose("base_link")[0] - start
    assert np.hypot(*moved[:2]) == pytest.approx(4.0 * base_config.base.wheel_radius, rel=0.05)
    assert math.atan2(moved[1], moved[0]) == pytest.approx(yaw, abs=0.05)


def test_torque_off_goes_limp_and_torque_on_holds_where_it_is(world, arm_config):
    robot, q0 = _arm(world, arm_config)
    robot.set_torque(np.zeros(5))
    robot.step(480)  # 2 s limp: the arm falls under gravity
    fallen = robot.read().position
    assert np.abs(fallen - q0).max() > 0.3
    robot.set_torque(np.ones(5))
    robot.step(120)
    np.testing.assert_allclose(robot.read().position, fallen, atol=0.02)  # no swing back to an old setpoint

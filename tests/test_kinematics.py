"""Closed-form arm kinematics agree with PyBullet's forward kinematics of the same URDF."""

from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

from robot.kinematics import ArmKinematics, UnreachableError
from sim.pybullet_robot import PyBulletRobot


def test_forward_matches_pybullet(arm_config):
    kin = ArmKinematics(arm_config)
    client = p.connect(p.DIRECT)
    try:
        robot = PyBulletRobot(client, arm_config)
        rng = np.random.default_rng(0)
        lo, hi = kin.lower, kin.upper
        for _ in range(50):
            q = rng.uniform(lo, hi)
            robot.reset_joints(q)
            pos, orn = robot.link_pose(arm_config.arm.ee_link)
            fk_pos, pitch = kin.forward(q)
            np.testing.assert_allclose(fk_pos, pos, atol=1e-7)
            # The tool x axis: pitch below horizontal, pointing along the base yaw.
            x_axis = np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3)[:, 0]
            assert -x_axis[2] == pytest.approx(math.sin(pitch), abs=1e-7)
    finally:
        p.disconnect(client)


def test_inverse_round_trip_over_the_workspace(arm_config):
    kin = ArmKinematics(arm_config)
    seed = np.array([arm_config.arm.rest[j] for j in arm_config.joint_names])
    # The grasp workspace with the tool pointing straight down (objects lie 0.13-0.20 m from the base).
    for x in np.linspace(0.10, 0.20, 5):
        for y in np.linspace(-0.08, 0.08, 5):
            for z in (0.005, 0.03, 0.06):
                q = kin.inverse(np.array([x, y, z]), math.pi / 2, seed)
                pos, pitch = kin.forward(q)
                np.testing.assert_allclose(pos, [x, y, z], atol=1e-9)
                assert pitch == pytest.approx(math.pi / 2)
                assert q[4] == seed[4]  # the gripper passes through


def test_unreachable_targets_raise(arm_config):
    kin = ArmKinematics(arm_config)
    seed = np.zeros(5)
    with pytest.raises(UnreachableError, match="out of reach"):
        kin.inverse(np.array([0.6, 0.0, 0.1]), math.pi / 2, seed)
    with pytest.raises(UnreachableError):
        kin.inverse(np.array([0.02, 0.0, -0.25]), math.pi / 2, seed)


def test_needs_an_arm(base_config):
    with pytest.raises(ValueError, match="needs an arm"):
        ArmKinematics(base_config)

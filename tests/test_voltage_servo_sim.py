"""A fitted voltage servo model as the simulated robot's actuator: the PyBullet arm driven by it moves as the
model's own integrator predicts, the config carries it, the tasks still work with it, and the P gain it assumes
is the one the driver writes to the servos."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest
import yaml

import sim  # noqa: F401  (registers the envs)
from mock.plants import make_plant
from policies.rollout import make_expert
from real.dynamixel.bus import DynamixelBus
from real.dynamixel.emulator import EmulatorThread, emulator_for_config
from real.dynamixel.motor_bus import MotorBus
from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config
from robot.description import ConfigError
from sim.pybullet_robot import PyBulletRobot
from sim.voltage_servo import FRICTION_LAW, VoltageServoParams, simulate

#: A plausible XM430-W350 at 12 V (e-manual: 4.1 N*m stall at 2.3 A -> kt 1.78 N*m/A, R 5.2 ohm), with friction.
XM430 = VoltageServoParams(kt=1.78, R=5.2, armature=0.01, coulomb=0.05, viscous=0.05, load_friction=0.1)
REST = np.array([0.0, -1.0, 0.7, 0.3, 0.019])


@pytest.fixture
def voltage_arm(tmp_path):
    """The shipped arm config with the model above as its sim.servo_model (a file next to it)."""
    model = {"kind": "voltage_servo", "friction_law": FRICTION_LAW, "model": "load", "params": vars(XM430)}
    (tmp_path / "xm430.yaml").write_text(yaml.safe_dump(model))
    text = (HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml").read_text()
    text = text.replace("  fixed_base: true", "  fixed_base: true\n  servo_model: xm430.yaml")
    text = text.replace("/dev/ttyUSB0", str(tmp_path / "ttyOMX"))
    path = tmp_path / "arm.yaml"
    path.write_text(text)
    return path


def test_the_simulated_arm_moves_as_the_model_predicts(voltage_arm):
    config = load_hardware_config(voltage_arm)
    client = p.connect(p.DIRECT)
    try:
        p.setGravity(0, 0, -9.81, physicsClientId=client)
        p.setPhysicsEngineParameter(fixedTimeStep=1 / 240, physicsClientId=client)
        robot = PyBulletRobot(client, config)
        assert robot.params.voltage == XM430 and list(robot.params.kp_register) == [800.0] * 5
        robot.reset_joints(REST)
        # joint1 turns about the vertical: no gravity load; its inertia is the arm's about that axis
        inertia = p.calculateMassMatrix(robot.body, [*REST, REST[4]], physicsClientId=client)[0][0]
        for goal in (0.5, 0.05):
            robot.reset_joints(REST)
            robot.command(REST + np.array([goal, 0, 0, 0, 0]))
            measured = []
            for _ in range(120):
                measured.append(robot.read().position[0])
                robot.step(1)
            predicted = simulate(
                XM430.vector()[:, None],
                np.full((120, 1), goal),
                np.ones((120, 1)),
                q0=np.zeros(1),
                kp=np.array([800.0]),
                vin=np.array([12.0]),
                load_inertia=np.array([inertia - XM430.armature]),
                load_gravity=np.zeros(1),
                dt=1 / 240,
            )[:, 0]
            assert np.max(np.abs(np.array(measured) - predicted)) < 0.01 * max(goal, 0.1) + 0.005
            # friction stops it short of the goal, where the model says
            assert measured[-1] == pytest.approx(predicted[-1], abs=0.001) and abs(measured[-1] - goal) > 0.001
    finally:
        p.disconnect(client)


def test_the_grasp_expert_still_grasps_with_the_voltage_arm(voltage_arm):
    env = gym.make("s2r/Grasp-v0", robot=str(voltage_arm), randomization="none")
    successes = 0
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        expert = make_expert("grasp", env)
        expert.reset()
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
            done = terminated or truncated
        successes += bool(info["is_success"])
    assert env.unwrapped.robot.params.voltage is not None
    env.close()
    assert successes >= 5


def test_config_errors_and_the_p_gain_reaches_the_servos(voltage_arm, tmp_path):
    (tmp_path / "xm430.yaml").write_text(yaml.safe_dump({"kind": "sim_servo", "targets": {}}))
    config = load_hardware_config(voltage_arm)
    with pytest.raises(ValueError, match="not a voltage servo model"):
        PyBulletRobot(p.connect(p.DIRECT), config)
    (tmp_path / "xm430.yaml").unlink()
    with pytest.raises(ConfigError, match="servo_model"):
        load_hardware_config(voltage_arm)
    # position_p_gain set in the config is written at configure (the sim assumes the same value)
    text = voltage_arm.read_text().replace("  servo_model: xm430.yaml\n", "")
    text = text.replace("joint: joint2, mode: position,", "joint: joint2, mode: position, position_p_gain: 600,")
    voltage_arm.write_text(text)
    config = load_hardware_config(voltage_arm)
    emulator = emulator_for_config(config, make_plant(config, "simple"))
    with EmulatorThread(emulator, config.bus.port), DynamixelBus(config.bus.port, config.bus.baudrate) as bus:
        MotorBus(config, bus).configure()
    assert [s.get("position_p_gain") for s in emulator.servos.values()][:2] == [800, 600]


def test_a_model_too_stiff_for_the_physics_rate_is_refused_with_the_rate_it_needs(voltage_arm, tmp_path):
    light = {**vars(XM430), "armature": 0.0001}
    record = {"kind": "voltage_servo", "friction_law": FRICTION_LAW, "params": light}
    (tmp_path / "xm430.yaml").write_text(yaml.safe_dump(record))
    config = load_hardware_config(voltage_arm)
    client = p.connect(p.DIRECT)
    try:
        with pytest.raises(ValueError, match=r"too stiff for .*joint4.*physics_hz to at least \d+"):
            PyBulletRobot(client, config)
    finally:
        p.disconnect(client)


def test_gravity_load_follows_the_links_present_masses():
    """The gravity torque the gearbox friction sees: equal to minus PyBullet's inverse dynamics at rest, and twice
    it once every link is twice as heavy (inverse dynamics keeps the masses of its first call)."""
    from sim.gravity_torques import GravityTorques

    config = load_hardware_config("openmanipulator_x")
    client = p.connect(p.DIRECT)
    try:
        p.setGravity(0, 0, -9.81, physicsClientId=client)
        robot = PyBulletRobot(client, config)
        body = robot.body
        movable = [
            i
            for i in range(p.getNumJoints(body, physicsClientId=client))
            if p.getJointInfo(body, i, physicsClientId=client)[2] != p.JOINT_FIXED
        ]
        q = [0.0, 0.8, -0.3, 0.5] + [0.0] * (len(movable) - 4)
        for i, angle in zip(movable, q, strict=True):
            p.resetJointState(body, i, angle, physicsClientId=client)
        arm = robot.indices[:4]
        hold = p.calculateInverseDynamics(body, q, [0.0] * len(q), [0.0] * len(q), physicsClientId=client)
        expected = -np.array([hold[movable.index(i)] for i in arm])
        assert np.abs(expected).max() > 0.1
        gravity = GravityTorques(body, arm, client)
        assert np.allclose(gravity(), expected, atol=1e-4)
        for i in range(p.getNumJoints(body, physicsClientId=client)):
            mass = p.getDynamicsInfo(body, i, physicsClientId=client)[0]
            p.changeDynamics(body, i, mass=2 * mass, physicsClientId=client)
        assert np.allclose(GravityTorques(body, arm, client)(), 2 * expected, atol=1e-4)
    finally:
        p.disconnect(client)

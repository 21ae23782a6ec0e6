"""Hand-eye samples recorded end to end, eye-to-hand: the arm, held by hand with torque off, carries a ChArUco board
in front of its fixed camera; joints are read through the real driver bytes (servo emulator on a pty) and frames
through librealsense (a simulated D435 software device rendering the scene as the held arm poses it)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pybullet as p
from board_scene import BOARD, add_board, place
from held_arm import HeldArm

from calibration.capture import capture_samples
from calibration.hand_eye import transform
from robot.description import HardwareConfig
from sim.camera_model import rotation_from_rpy
from sim.pybullet_robot import PyBulletRobot

#: The board on the gripper: facing away from the wrist, 3 cm ahead of the end-effector link.
EE_BOARD = transform(rotation_from_rpy([0, np.pi / 2, 0]) @ rotation_from_rpy([0, 0, np.pi / 2]), [0.03, 0, 0])


def true_mount(truth: HardwareConfig, camera: str) -> np.ndarray:
    """Where ``camera`` really is (4x4, camera_link in the arm's base frame)."""
    cam = truth.camera(camera)
    return transform(rotation_from_rpy(cam.mount.rpy), cam.mount.xyz)


def capture_held_arm(
    config: HardwareConfig, truth: HardwareConfig, camera: str, folder: Path, poses: int = 24, seed: int = 5
) -> Path:
    """Record ``poses`` samples into ``folder`` with ``capture_samples``, as ``s2r calibrate capture`` does.

    ``config``: what the driver reads the joints with (its offsets and directions, its bus port); ``truth``: the
    robot as it is (how its horns are mounted, where its camera is). Returns the samples' index file."""
    from mock.simulated_realsense import SimulatedRealSense, pybullet_renderer
    from real.cameras.realsense import RealSenseCamera, SoftwareSource
    from real.dynamixel.bus import DynamixelBus
    from real.dynamixel.emulator import EmulatorThread, emulator_for_config
    from real.dynamixel.motor_bus import MotorBus

    mount = true_mount(truth, camera)
    client = p.connect(p.DIRECT)
    plant = HeldArm(truth)
    rendered = {"n": 0}
    try:
        scene_robot = PyBulletRobot(client, truth)
        board = add_board(client, folder.parent)

        def camera_pose():  # the scene follows the held arm at each frame
            scene_robot.reset_joints(plant.joints.copy())
            pos, orn = scene_robot.link_pose(truth.arm.ee_link)
            place(client, board, transform(np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3), pos) @ EE_BOARD)
            rendered["n"] += 1
            return mount[:3, 3], mount[:3, :3]

        rng = np.random.default_rng(seed)

        def next_pose(k: int) -> bool:
            if k >= poses:
                return False
            plant.joints = np.array(
                [rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.3), rng.uniform(-0.4, 0.6), rng.uniform(-0.9, 0.9), 0.0]
            )
            start = rendered["n"]
            while rendered["n"] < start + 2:  # a frame rendered wholly after the move
                time.sleep(0.01)
            return True

        sim = SimulatedRealSense(truth.camera(camera), pybullet_renderer(client, camera_pose))
        with (
            EmulatorThread(emulator_for_config(config, plant), config.bus.port),
            DynamixelBus(config.bus.port, config.bus.baudrate) as bus,
            RealSenseCamera(config.camera(camera), SoftwareSource(sim), grab_timeout_s=2.0) as cam,
        ):
            return capture_samples(MotorBus(config, bus).read, cam, config.joint_names, folder, next_pose, BOARD)
    finally:
        p.disconnect(client)

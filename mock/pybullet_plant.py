"""The servo emulator's physics from the simulated robot: goal registers move PyBullet joints, present registers
come from the simulation.

The plant is the same :class:`sim.pybullet_robot.PyBulletRobot` the tasks use (servo profile, gains, torque
limits), built from the same hardware config; registers and joints are related by the config's direction, offset
and scale, as :class:`real.dynamixel.motor_bus.MotorBus` relates them on the host side.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pybullet as p

from real.dynamixel.emulator import EmulatedServo
from robot.description import HardwareConfig, torque_per_amp, torque_per_effort_unit
from sim.pybullet_robot import PyBulletRobot

#: Torque constants (N*m per A) for the present-current registers, from the e-manual performance graphs' stall
#: figures: XM430-W350 4.1 N*m at 2.3 A (12 V); XL330-M288 0.52 N*m at 1.47 A (5 V).


class PyBulletPlant:
    """A PyBullet world with the robot of ``config`` (on a floor if it drives); ``step`` advances it in real
    emulator time at the config's physics rate."""

    def __init__(self, config: HardwareConfig, robot: PyBulletRobot | None = None) -> None:
        """``robot``: drive this robot in its existing world (a task scene, :mod:`mock.reality`) instead of a
        world of its own."""
        self.config = config
        self._dir = np.array([m.direction for m in config.motors], dtype=float)
        self._off = np.array([m.offset for m in config.motors], dtype=float)
        self._scale = np.array([m.scale for m in config.motors], dtype=float)
        # a joint's effort (N*m, or N for a joint in m) becomes the motor's Present Current, or Present Load
        self._effort_unit = np.array([torque_per_effort_unit(m.model) for m in config.motors], dtype=float)
        self._reports_current = [torque_per_amp(m.model) is not None for m in config.motors]
        self._carry = 0.0
        self._last_cmd: tuple | None = None
        self.owns_world = robot is None
        if robot is not None:
            self.client, self.robot = robot.client, robot
            return
        self.client = p.connect(p.DIRECT)
        p.setGravity(0, 0, -9.81, physicsClientId=self.client)
        p.setPhysicsEngineParameter(fixedTimeStep=1.0 / config.sim.physics_hz, physicsClientId=self.client)
        base = (0.0, 0.0, 0.0)
        if config.kind == "diff_drive":
            floor = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=self.client)
            p.createMultiBody(0, floor, physicsClientId=self.client)
            base = (0.0, 0.0, 0.010)
        self.robot = PyBulletRobot(self.client, config, base_position=base)
        rest = (
            np.array([config.arm.rest[j] for j in config.joint_names]) if config.arm else np.zeros(len(config.motors))
        )
        self.robot.reset_joints(rest)
        self.robot.set_torque(np.zeros(len(config.motors)))  # servos power up with torque off

    def attach(self, robot: PyBulletRobot) -> None:
        """Drive ``robot`` from now on (a rebuilt world); its torque follows the servos' from the next step."""
        self.robot, self.client = robot, robot.client
        self._last_cmd = None

    def close(self) -> None:
        if self.owns_world and p.isConnected(self.client):
            p.disconnect(self.client)

    def step(self, dt: float, servos: dict[int, EmulatedServo], before_tick: Callable[[], None] | None = None) -> None:
        """Advance the world by ``dt`` s of emulator time (whole physics ticks; the rest carries over) with the
        servos' goals and torque, then write their readings; ``before_tick`` runs before every tick."""
        motors = self.config.motors
        ss = [servos[m.id] for m in motors]
        torque = np.array(
            [bool(s.get("torque_enable")) and not s.faults.hardware_error and not s.faults.vanished for s in ss],
            dtype=float,
        )
        targets = np.zeros(len(motors))
        for k, s in enumerate(ss):
            if s.in_velocity_mode():
                motor_target = s.model.register("goal_velocity").to_si(s.get("goal_velocity"))
                targets[k] = self._dir[k] * motor_target * self._scale[k]
            else:
                motor_target = s.goal_angle()
                targets[k] = self._dir[k] * (motor_target - self._off[k]) * self._scale[k]
        cmd = (tuple(torque), tuple(targets))
        if cmd != self._last_cmd:
            if self._last_cmd is None or cmd[0] != self._last_cmd[0]:
                self.robot.set_torque(torque)
            self.robot.command(targets)
            self._last_cmd = cmd
        ticks_f = (dt + self._carry) * self.config.sim.physics_hz
        ticks = int(ticks_f)
        self._carry = (ticks_f - ticks) / self.config.sim.physics_hz
        if ticks:
            self.robot.step(ticks, before_tick=before_tick)
        js = self.robot.read()
        for k, s in enumerate(ss):
            s.position = js.position[k] / (self._dir[k] * self._scale[k]) + self._off[k]
            s.velocity = js.velocity[k] / (self._dir[k] * self._scale[k])
            effort = self._dir[k] * js.effort[k] * self._scale[k] / self._effort_unit[k]
            if self._reports_current[k]:
                s.current = effort
            else:
                s.load = effort

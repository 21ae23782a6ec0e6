"""The servo emulator's physics in MuJoCo: each configured joint is driven by the torque its servo's firmware and
motor produce from the emulator's registers (:class:`mock.servo_firmware.ServoFirmware`), through a plain torque
actuator; present registers come from the MuJoCo state. Registers and joints are related by the config's direction,
offset and scale, as :class:`real.dynamixel.motor_bus.MotorBus` relates them on the host side.

Domain params set the same physical quantities as in the simulator: ``servo.latency`` (s) delays the goals the
firmware sees, ``servo.strength`` scales the motor's torque, ``servo.position_gain`` / ``gripper.position_gain`` /
``servo.velocity_gain`` scale the firmware's loop gains by their ratio to the simulator's nominal gains, and
``wheel.strength_asymmetry`` makes the left wheel stronger and the right weaker by that fraction.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import mujoco
import numpy as np

from mock.servo_firmware import ServoFirmware
from real.dynamixel.emulator import EmulatedServo
from robot.description import HardwareConfig
from sim.pybullet_robot import DEFAULT_POSITION_GAIN, DEFAULT_VELOCITY_GAIN


class MujocoPlant:
    """Drives the configured joints of ``model`` / ``data`` (a compiled task scene, :mod:`mock.mujoco_scene`) from
    the servos' registers; ``step`` advances it by real emulator time in MuJoCo steps."""

    def __init__(self, config: HardwareConfig, model: mujoco.MjModel, data: mujoco.MjData, params: dict) -> None:
        self.config, self.model, self.data = config, model, data
        motors = config.motors
        self._dir = np.array([m.direction for m in motors], dtype=float)
        self._off = np.array([m.offset for m in motors], dtype=float)
        self._scale = np.array([m.scale for m in motors], dtype=float)
        self._qpos = [model.jnt_qposadr[model.joint(m.joint).id] for m in motors]
        self._dof = [model.jnt_dofadr[model.joint(m.joint).id] for m in motors]
        self._act = [model.actuator(m.joint).id for m in motors]
        self.firmware = [ServoFirmware(m.model, config.sim.supply_v) for m in motors]
        self.latency = float(params.get("servo.latency", 0.0))
        strength = np.full(len(motors), float(params.get("servo.strength", 1.0)))
        gain = np.full(len(motors), float(params.get("servo.position_gain", DEFAULT_POSITION_GAIN)))
        gain /= DEFAULT_POSITION_GAIN
        if config.arm is not None and "gripper.position_gain" in params:
            gain[config.joint_names.index(config.arm.gripper_joint)] = (
                float(params["gripper.position_gain"]) / DEFAULT_POSITION_GAIN
            )
        if config.base is not None:
            asym = float(params.get("wheel.strength_asymmetry", 0.0))
            strength[config.joint_names.index(config.base.left_wheel)] *= 1.0 + asym
            strength[config.joint_names.index(config.base.right_wheel)] *= 1.0 - asym
        for fw, s, g in zip(self.firmware, strength, gain, strict=True):
            fw.strength, fw.gain_scale = float(s), float(g)
            fw.velocity_gain_scale = float(params.get("servo.velocity_gain", DEFAULT_VELOCITY_GAIN)) / (
                DEFAULT_VELOCITY_GAIN
            )
        self._goals: deque[tuple[float, list[float]]] = deque()  # (time due, goal per motor): the latency line
        self._goal_now: list[float] | None = None
        self._carry = 0.0
        self.torque = np.zeros(len(motors))  # N*m at each motor, last step

    def motor_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Motor angles (rad) and velocities (rad/s) from the joints (config order)."""
        q = np.array([self.data.qpos[a] for a in self._qpos])
        qd = np.array([self.data.qvel[a] for a in self._dof])
        return q / (self._dir * self._scale) + self._off, qd / (self._dir * self._scale)

    def _goals_due(self, registers: list) -> list[float]:
        """Each servo's goal (rad, or rad/s in velocity mode) as the motor sees it now: ``latency`` s late."""
        goal = [r.goal for r in registers]
        if self.latency <= 0:
            return goal
        now = float(self.data.time)
        self._goals.append((now + self.latency, goal))
        while self._goals and self._goals[0][0] <= now + 1e-9:
            self._goal_now = self._goals.popleft()[1]
        return self._goal_now if self._goal_now is not None else self.motor_state()[0].tolist()

    def step(self, dt: float, servos: dict[int, EmulatedServo], before_step: Callable[[], None] | None = None) -> None:
        """Advance by ``dt`` s of emulator time (whole MuJoCo steps; the rest carries over), then write the servos'
        readings; ``before_step`` runs before every step."""
        ss = [servos[m.id] for m in self.config.motors]
        h = self.model.opt.timestep
        steps_f = (dt + self._carry) / h
        steps = int(steps_f)
        self._carry = (steps_f - steps) * h
        registers = [fw.registers(s) for s, fw in zip(ss, self.firmware, strict=True)]
        powered = [not s.faults.hardware_error and not s.faults.vanished for s in ss]
        for _ in range(steps):
            goals = self._goals_due(registers)
            angle, velocity = self.motor_state()
            for k, fw in enumerate(self.firmware):
                self.torque[k] = fw.torque(registers[k], powered[k], goals[k], angle[k], velocity[k], h)
                # motor torque (N*m) -> joint effort (N*m, or N through the rack of a linear joint)
                self.data.ctrl[self._act[k]] = self._dir[k] * self.torque[k] / self._scale[k]
            if before_step is not None:
                before_step()
            mujoco.mj_step(self.model, self.data)
        angle, velocity = self.motor_state()
        for k, (s, fw) in enumerate(zip(ss, self.firmware, strict=True)):
            s.position, s.velocity = float(angle[k]), float(velocity[k])
            if fw.per_amp is not None:
                s.current = fw.effort_register(self.torque[k])
            else:
                s.load = fw.effort_register(self.torque[k])

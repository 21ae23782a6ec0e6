"""A robot from its hardware config, simulated in PyBullet with servo-like joints.

The joint order is the config's motor order. Joints the URDF declares as ``<mimic>`` (the second gripper
finger) follow their leader's command. Servo parameters (gains, limits, damping, latency) come from
:class:`sim.servo_model.ServoParams` and can be changed between episodes.

Position-mode joints work like a Dynamixel with a profile velocity: the goal moves the motor's setpoint toward
it at no more than the joint's velocity limit, and PyBullet's position motor (gains, torque limit) tracks that
setpoint, updated every physics tick while it moves (plain Python floats: this runs up to 24 times per step).
PyBullet's own ``maxVelocity`` was not used: it also caps the force a stalled motor exerts, which left the gripper
squeezing with 4 N instead of its 20 N limit.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pybullet as p

from robot.description import SERVO_MODELS, ControlMode, HardwareConfig, urdf_path
from robot.joint_state import JointState
from sim.gravity_torques import GravityTorques
from sim.servo_model import CommandDelay, ServoParams
from sim.voltage_servo import VoltageServoParams, duty_per_rad, friction_budget, params_from_record

#: Default PyBullet motor gains for the servo position loop. They give a step response with a time constant
#: of about 0.05 s on the arm (see tests/test_pybullet_robot.py); system identification refines them.
DEFAULT_POSITION_GAIN = 0.3
DEFAULT_VELOCITY_GAIN = 1.0


def urdf_mimic_joints(path: Path) -> dict[str, tuple[str, float, float]]:
    """``follower -> (leader, multiplier, offset)`` from the URDF's ``<mimic>`` tags (PyBullet ignores them)."""
    root = ET.parse(path).getroot()
    out = {}
    for j in root.iter("joint"):
        m = j.find("mimic")
        if m is not None:
            out[j.get("name")] = (m.get("joint"), float(m.get("multiplier", 1)), float(m.get("offset", 0)))
    return out


def load_voltage_model(path: str | Path) -> VoltageServoParams:
    """The fitted parameters of a ``kind: voltage_servo`` file written by ``s2r sysid``."""
    import yaml

    with open(path) as fh:
        record = yaml.safe_load(fh)
    if not isinstance(record, dict) or record.get("kind") != "voltage_servo" or "params" not in record:
        raise ValueError(f"{path}: not a voltage servo model (write one with s2r sysid on test-bench logs)")
    return params_from_record(record, str(path))


def default_servo_params(config: HardwareConfig) -> ServoParams:
    """Servo parameters from the config's limits and the default gains (and its fitted servo model, if any)."""
    n = len(config.motors)
    voltage = load_voltage_model(config.sim.servo_model) if config.sim.servo_model else None
    kp = [m.position_p_gain or SERVO_MODELS[m.model]["position_p_gain"] for m in config.motors]
    return ServoParams(
        position_gain=np.full(n, DEFAULT_POSITION_GAIN),
        velocity_gain=np.full(n, DEFAULT_VELOCITY_GAIN),
        max_torque=np.array([m.limits.effort for m in config.motors]),
        max_velocity=np.array([m.limits.velocity for m in config.motors]),
        damping=np.full(n, 0.01),
        latency=0.0,
        voltage=voltage,
        kp_register=np.array(kp, dtype=float) if voltage is not None else None,
        supply_v=config.sim.supply_v,
    )


def servo_params_from_targets(config: HardwareConfig, targets: dict[str, float]) -> ServoParams:
    """Servo parameters from env target values (any subset; the rest stay at :func:`default_servo_params`):
    ``servo.position_gain`` and ``servo.velocity_gain`` (every joint; an arm's gripper then takes
    ``gripper.position_gain`` if given), ``servo.strength`` (scale on the torque limits), ``joint.damping``
    (N*m*s/rad) and ``servo.latency`` (s). The tasks and system identification build their servos with it."""
    servo = default_servo_params(config)
    if "servo.position_gain" in targets:
        servo.position_gain[:] = targets["servo.position_gain"]
    if "servo.velocity_gain" in targets:
        servo.velocity_gain[:] = targets["servo.velocity_gain"]
    if "gripper.position_gain" in targets and config.arm is not None:
        servo.position_gain[config.joint_names.index(config.arm.gripper_joint)] = targets["gripper.position_gain"]
    if "servo.strength" in targets:
        servo.max_torque = servo.max_torque * targets["servo.strength"]
    if "joint.damping" in targets:
        servo.damping[:] = targets["joint.damping"]
    if "servo.latency" in targets:
        servo.latency = float(targets["servo.latency"])
    return servo


class PyBulletRobot:
    """The robot of ``config`` loaded into PyBullet client ``client``.

    ``command(targets)`` takes joint targets in config order (positions for position-mode joints, velocities
    for velocity-mode joints); they reach the motors after the servo latency, counted in simulated time by
    :meth:`step`.
    """

    def __init__(
        self,
        client: int,
        config: HardwareConfig,
        base_position: tuple[float, float, float] = (0.0, 0.0, 0.0),
        base_orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0),
        params: ServoParams | None = None,
        urdf: Path | None = None,
    ) -> None:
        self.client = client
        self.config = config
        path = urdf or urdf_path(config)
        self.body = p.loadURDF(
            str(path),
            basePosition=base_position,
            baseOrientation=base_orientation,
            useFixedBase=config.sim.fixed_base,
            # Implicit cylinders: without this flag PyBullet meshes URDF cylinders, and wheels roll on facets.
            flags=p.URDF_USE_INERTIA_FROM_FILE | p.URDF_USE_IMPLICIT_CYLINDER,
            physicsClientId=client,
        )
        self._base_inertial = p.getDynamicsInfo(self.body, -1, physicsClientId=client)[3:5]
        self.base_link = p.getBodyInfo(self.body, physicsClientId=client)[0].decode()
        self.joint_index: dict[str, int] = {}
        self.link_index: dict[str, int] = {self.base_link: -1}
        for i in range(p.getNumJoints(self.body, physicsClientId=client)):
            info = p.getJointInfo(self.body, i, physicsClientId=client)
            self.joint_index[info[1].decode()] = i
            self.link_index[info[12].decode()] = i
        missing = [j for j in config.joint_names if j not in self.joint_index]
        if missing:
            raise ValueError(f"{config.name}: joints {missing} are not in {path.name}; it has {list(self.joint_index)}")
        self.indices = [self.joint_index[j] for j in config.joint_names]
        self.modes = [m.mode for m in config.motors]
        mimic = urdf_mimic_joints(path)
        # Followers: (follower index, leader position in config order, multiplier, offset).
        self.followers = [
            (self.joint_index[f], config.joint_names.index(lead), mult, off)
            for f, (lead, mult, off) in mimic.items()
            if lead in config.joint_names
        ]
        self._follower_bullet = [f[0] for f in self.followers]  # read with the joints: their force is the leader's
        # Link inertia (URDF) and joint axis per voltage-driven joint, read when a voltage model first needs them:
        # its armature is added about the axis, and taken off again when the model goes.
        self._inertia: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._voltage_torque = np.zeros(len(self.indices))
        self._armature_links: list[int] = []
        self._goal_by_slot: list[float] = []
        self.params = params or default_servo_params(config)
        self._delay = CommandDelay(self.params.latency)
        self.last_command: np.ndarray | None = None
        self._torque_on = np.ones(len(self.indices))
        self._setpoint: list[float] = []
        self._goal: list[float] = []
        self._moving = False
        self._last_velocity_targets: np.ndarray | None = None
        self._time = 0.0
        self.dt = 1.0 / config.sim.physics_hz
        self.apply_params(self.params)

    # -- parameters -----------------------------------------------------------------------------------------
    def apply_params(self, params: ServoParams) -> None:
        """Set servo parameters (gains and limits take effect at the next physics tick).

        PyBullet's ``maxJointVelocity`` is one cap for the whole body: it is set to twice the largest joint limit
        as a safety net; per-joint limits come from the setpoint profile and from clipping velocity targets.
        """
        self.params = params
        p.changeDynamics(
            self.body, -1, maxJointVelocity=2.0 * float(np.max(params.max_velocity)), physicsClientId=self.client
        )
        for k, idx in enumerate(self.indices):
            p.changeDynamics(self.body, idx, jointDamping=float(params.damping[k]), physicsClientId=self.client)
        for idx, lead, _, _ in self.followers:
            p.changeDynamics(self.body, idx, jointDamping=float(params.damping[lead]), physicsClientId=self.client)
        # Position motors, leaders then followers: bullet index, config slot, multiplier, offset.
        motors = [(self.indices[k], k, 1.0, 0.0) for k, m in enumerate(self.modes) if m != ControlMode.velocity]
        motors += [(idx, lead, mult, off) for idx, lead, mult, off in self.followers]
        motors = [m for m in motors if self.modes[m[1]] != ControlMode.velocity]
        self._pos_bullet = [m[0] for m in motors]
        self._pos_slot = np.array([m[1] for m in motors], dtype=int)
        self._pos_mult = np.array([m[2] for m in motors])
        self._pos_off = np.array([m[3] for m in motors])
        slots = self._pos_slot
        self._pos_rate = (params.max_velocity[slots] * np.abs(self._pos_mult) * self.dt).tolist()
        self._pos_kp = params.position_gain[slots].tolist()
        self._pos_kd = params.velocity_gain[slots].tolist()
        self._pos_force = (params.max_torque[slots] * self._torque_on[slots]).tolist()
        self._vel_slot = [k for k, m in enumerate(self.modes) if m == ControlMode.velocity]
        self._vel_bullet = [self.indices[k] for k in self._vel_slot]
        self._setup_voltage(params)

    def _setup_voltage(self, params: ServoParams) -> None:
        """With a voltage model, revolute position joints are torque-driven DC motors (a prismatic joint, such as
        a rack-and-pinion gripper, keeps PyBullet's position servo: its rotor inertia, a mass along the rack,
        cannot be put on the finger link, and without it one explicit step at 240 Hz diverges).

        The randomized position gain scales the firmware gain relative to the nominal one; the strength scales
        the voltage available (the ratio of ``max_torque`` to the config's effort limit), and ``max_torque`` caps
        the motor torque (the servo's current limit); joint damping adds to the viscous friction. Coulomb
        friction is a velocity motor with target 0 and that force, so it holds a joint still instead of making it
        chatter. The armature is a thin disk (a about the axis, a/2 about the others) added to the link."""
        v = params.voltage
        self._voltage_slots = []
        self._gravity: GravityTorques | None = None  # rebuilt at the next tick: the chain and masses of now
        if self._armature_links:  # back to the URDF's inertias
            for idx in self._armature_links:
                p.changeDynamics(
                    self.body, idx, localInertiaDiagonal=self._inertia[idx][0].tolist(), physicsClientId=self.client
                )
            self._armature_links = []
        if v is None:
            self._delay.latency = params.latency
            return
        self._delay.latency = params.latency + v.latency
        revolute = {
            k
            for k, idx in enumerate(self.indices)
            if p.getJointInfo(self.body, idx, physicsClientId=self.client)[2] == p.JOINT_REVOLUTE
        }
        slots = [k for k, m in enumerate(self.modes) if m != ControlMode.velocity and k in revolute]
        self._voltage_slots = slots
        self._voltage_bullet = [self.indices[k] for k in slots]
        if not slots:
            return
        nominal_effort = np.array([self.config.motors[k].limits.effort for k in slots])
        strength = params.max_torque[slots] / nominal_effort
        gain_ratio = params.position_gain[slots] / DEFAULT_POSITION_GAIN  # randomized around 1
        self._v_gain = duty_per_rad(params.kp_register[slots], v.gain_scale * gain_ratio)
        self._v_supply = params.supply_v * strength
        self._v_limit = np.minimum(params.max_torque[slots], v.kt * v.max_current)
        self._v_viscous = v.viscous + params.damping[slots]
        self._v, self._v_vector = v, v.vector()
        for idx in self._voltage_bullet:  # the damping is in the model; PyBullet's would count it twice
            p.changeDynamics(self.body, idx, jointDamping=0.0, physicsClientId=self.client)
            if idx not in self._inertia:
                self._inertia[idx] = (
                    np.array(p.getDynamicsInfo(self.body, idx, physicsClientId=self.client)[2]),
                    np.abs(np.array(p.getJointInfo(self.body, idx, physicsClientId=self.client)[13])),
                )
            inertia, axis = self._inertia[idx]
            p.changeDynamics(
                self.body,
                idx,
                localInertiaDiagonal=(inertia + v.armature * (0.5 + 0.5 * axis)).tolist(),
                physicsClientId=self.client,
            )
            self._armature_links.append(idx)
        if len(self._goal_by_slot) != len(slots):  # hold where the joints are until the first command
            states = p.getJointStates(self.body, self._voltage_bullet, physicsClientId=self.client)
            self._goal_by_slot = [s[0] for s in states]
        self._check_voltage_step()

    def _check_voltage_step(self) -> None:
        """The torque is explicit in each physics tick (as in :func:`sim.voltage_servo.simulate`): stable only
        while the back-EMF damping and the P loop's stiffness are small against each joint's inertia at this
        tick. Raise a clear error instead of simulating a diverging arm."""
        movable = self._movable = [
            i
            for i in range(p.getNumJoints(self.body, physicsClientId=self.client))
            if p.getJointInfo(self.body, i, physicsClientId=self.client)[2] != p.JOINT_FIXED
        ]
        states = p.getJointStates(self.body, movable, physicsClientId=self.client)
        mass = np.array(p.calculateMassMatrix(self.body, [s[0] for s in states], physicsClientId=self.client))
        inertia = np.array([mass[movable.index(i), movable.index(i)] for i in self._voltage_bullet])
        v = self._v
        damping = v.kt**2 / v.R + self._v_viscous
        stiffness = v.kt / v.R * self._v_supply * self._v_gain
        bad = (damping * self.dt / inertia > 1.0) | (stiffness * self.dt**2 / inertia > 0.5)
        if np.any(bad):
            need = float(np.max(np.maximum(damping / inertia, np.sqrt(2 * stiffness / inertia))))
            joints = [self.config.motors[k].joint for k, b in zip(self._voltage_slots, bad, strict=True) if b]
            raise ValueError(
                f"{self.config.name}: the servo model is too stiff for {', '.join(joints)} at "
                f"{self.config.sim.physics_hz:g} Hz physics (their inertia with the armature is too small for one "
                f"explicit step); set sim.physics_hz to at least {need:.0f}"
            )

    def _voltage_tick(self) -> None:
        """One physics tick of the DC motors: P loop on duty, motor torque, friction (explicit, as the model's
        own integrator; :meth:`_check_voltage_step` guards its stability)."""
        v, slots = self._v, self._voltage_slots
        states = p.getJointStates(self.body, self._voltage_bullet, physicsClientId=self.client)
        q = np.array([s[0] for s in states])
        w = np.array([s[1] for s in states])
        goal = np.array(self._goal_by_slot)
        on = self._torque_on[slots]
        duty = np.clip(self._v_gain * (goal - q), -v.max_duty, v.max_duty) * on
        drive = v.kt / v.R * (self._v_supply * duty - v.kt * w * on)
        # The joint's torque limit (config effort x strength) caps it, and the model's current limit.
        drive = np.clip(drive, -self._v_limit, self._v_limit)
        motor = drive - self._v_viscous * w
        self._voltage_torque[slots] = motor
        external = self._external_torque() if v.load_dependent else np.zeros(len(slots))
        friction = friction_budget(self._v_vector, drive, external, w)
        p.setJointMotorControlArray(
            self.body,
            self._voltage_bullet,
            p.VELOCITY_CONTROL,
            targetVelocities=[0.0] * len(slots),
            forces=friction.tolist(),
            physicsClientId=self.client,
        )
        p.setJointMotorControlArray(
            self.body,
            self._voltage_bullet,
            p.TORQUE_CONTROL,
            forces=motor.tolist(),
            physicsClientId=self.client,
        )

    def _external_torque(self) -> np.ndarray:
        """Gravity torque on the voltage-model joints now (N*m), from the links' present masses."""
        if self._gravity is None:
            self._gravity = GravityTorques(self.body, self._voltage_bullet, self.client)
        return self._gravity()

    # -- state ----------------------------------------------------------------------------------------------
    def set_torque(self, enabled: np.ndarray) -> None:
        """Per-joint torque enable (config order): a disabled joint's motor exerts no force (the joint is limp,
        damped only by its joint damping), like a servo with torque off. A joint whose torque comes on holds
        where it is: its setpoint and goal restart from its present position, as a Dynamixel's do."""
        enabled = np.asarray(enabled, dtype=float).reshape(len(self.indices))
        switched_on = (enabled > 0) & (self._torque_on <= 0)
        self._torque_on = enabled
        self.apply_params(self.params)
        if np.any(switched_on) and self._goal:
            present = self.read().position
            for i, (slot, mult, off) in enumerate(zip(self._pos_slot, self._pos_mult, self._pos_off, strict=True)):
                if switched_on[slot]:
                    self._setpoint[i] = self._goal[i] = float(present[slot] * mult + off)
        if self._goal:
            self._track()
        if self._last_velocity_targets is not None:
            self._send_velocities(self._last_velocity_targets)

    def reset_joints(self, positions: np.ndarray) -> None:
        """Teleport joints to ``positions`` (config order) at rest and hold them there."""
        for k, idx in enumerate(self.indices):
            q = float(positions[k]) if self.modes[k] != ControlMode.velocity else 0.0
            p.resetJointState(self.body, idx, q, 0.0, physicsClientId=self.client)
        for idx, lead, mult, off in self.followers:
            p.resetJointState(self.body, idx, float(positions[lead]) * mult + off, 0.0, physicsClientId=self.client)
        self._delay.clear()
        hold = np.array([positions[k] if self.modes[k] != ControlMode.velocity else 0.0 for k in range(len(positions))])
        self._setpoint = (hold[self._pos_slot] * self._pos_mult + self._pos_off).tolist()
        self._apply(hold)
        self._track()

    def read(self) -> JointState:
        """Joint positions, velocities and applied motor efforts in config order; a leader's effort includes its mimic
        followers' (times their multiplier: the force the whole linkage takes from the one servo that drives it)."""
        states = p.getJointStates(self.body, self.indices, physicsClientId=self.client)
        effort = np.array([s[3] for s in states])
        if self._voltage_slots:  # PyBullet reports no applied torque for TORQUE_CONTROL
            effort[self._voltage_slots] = self._voltage_torque[self._voltage_slots]
        if self.followers:  # a mimic follower's motor works for its leader: its force counts through the linkage
            driven = p.getJointStates(self.body, self._follower_bullet, physicsClientId=self.client)
            for (_, lead, mult, _), state in zip(self.followers, driven, strict=True):
                effort[lead] += mult * state[3]
        return JointState(
            position=np.array([s[0] for s in states]),
            velocity=np.array([s[1] for s in states]),
            effort=effort,
            stamp_ns=int(round(self._time * 1e9)),
        )

    def link_pose(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        """World position (m) and orientation quaternion (x, y, z, w) of a link ('base' name for the base)."""
        idx = self.link_index[link]
        if idx == -1:
            # PyBullet reports the base's centre of mass; undo the URDF inertial offset to get the link frame.
            com_pos, com_orn = p.getBasePositionAndOrientation(self.body, physicsClientId=self.client)
            inv_pos, inv_orn = p.invertTransform(self._base_inertial[0], self._base_inertial[1])
            pos, orn = p.multiplyTransforms(com_pos, com_orn, inv_pos, inv_orn)
        else:
            pos, orn = p.getLinkState(self.body, idx, computeForwardKinematics=True, physicsClientId=self.client)[4:6]
        return np.array(pos), np.array(orn)

    @property
    def time(self) -> float:
        """Simulated time since the world was built, s."""
        return self._time

    # -- commands -------------------------------------------------------------------------------------------
    def command(self, targets: np.ndarray) -> None:
        """Send joint targets (config order, SI units); they act after the servo latency."""
        targets = np.asarray(targets, dtype=float)
        if targets.shape != (len(self.indices),) or not np.all(np.isfinite(targets)):
            raise ValueError(f"expected {len(self.indices)} finite targets, got {targets}")
        self.last_command = targets.copy()  # what was commanded (recorded rollouts' joint-space action)
        if self.params.latency <= 0.0:
            self._apply(targets)
        else:
            self._delay.push(self._time, targets)

    def step(self, n_substeps: int, before_tick: Callable[[], None] | None = None) -> None:
        """Advance the physics by ``n_substeps`` ticks, applying delayed commands when they fall due.

        ``before_tick`` runs before every tick (e.g. to apply an external force, which PyBullet clears per tick).
        """
        for _ in range(n_substeps):
            if self.params.latency > 0.0:
                due = self._delay.pop_due(self._time)
                if due is not None:
                    self._apply(due)
            if self._voltage_slots:
                self._voltage_tick()
            if self._moving:
                self._track()
            if before_tick is not None:
                before_tick()
            p.stepSimulation(physicsClientId=self.client)
            self._time += self.dt

    def _apply(self, targets: np.ndarray) -> None:
        """A command reaches the motors: new position goals (profiled) and wheel velocity targets."""
        self._goal = (targets[self._pos_slot] * self._pos_mult + self._pos_off).tolist()
        self._goal_by_slot = [float(targets[k]) for k in self._voltage_slots]
        if len(self._setpoint) != len(self._goal):
            self._setpoint = list(self._goal)
        self._moving = self._setpoint != self._goal
        if self._vel_slot:
            self._send_velocities(targets)

    def _send_velocities(self, targets: np.ndarray) -> None:
        self._last_velocity_targets = np.array(targets, dtype=float)
        vmax = self.params.max_velocity[self._vel_slot]
        p.setJointMotorControlArray(
            self.body,
            self._vel_bullet,
            p.VELOCITY_CONTROL,
            targetVelocities=np.clip(targets[self._vel_slot], -vmax, vmax).tolist(),
            forces=(self.params.max_torque[self._vel_slot] * self._torque_on[self._vel_slot]).tolist(),
            velocityGains=self.params.velocity_gain[self._vel_slot].tolist(),
            physicsClientId=self.client,
        )

    def _track(self) -> None:
        """Move the position setpoints one tick toward the goals (profile velocity) and send them (with a voltage
        model, not to its torque-driven joints)."""
        if not self._pos_bullet:
            self._moving = False
            return
        sp, goal, rate = self._setpoint, self._goal, self._pos_rate
        moving = False
        for i in range(len(sp)):
            d = goal[i] - sp[i]
            if d > rate[i]:
                sp[i] += rate[i]
                moving = True
            elif d < -rate[i]:
                sp[i] -= rate[i]
                moving = True
            else:
                sp[i] = goal[i]
        self._moving = moving
        if self._voltage_slots:  # those joints are torque-driven each tick; the others (and followers) track here
            keep = [i for i, b in enumerate(self._pos_bullet) if b not in self._voltage_bullet]
            if keep:
                p.setJointMotorControlArray(
                    self.body,
                    [self._pos_bullet[i] for i in keep],
                    p.POSITION_CONTROL,
                    targetPositions=[sp[i] for i in keep],
                    forces=[self._pos_force[i] for i in keep],
                    positionGains=[self._pos_kp[i] for i in keep],
                    velocityGains=[self._pos_kd[i] for i in keep],
                    physicsClientId=self.client,
                )
            return
        p.setJointMotorControlArray(
            self.body,
            self._pos_bullet,
            p.POSITION_CONTROL,
            targetPositions=sp,
            forces=self._pos_force,
            positionGains=self._pos_kp,
            velocityGains=self._pos_kd,
            physicsClientId=self.client,
        )

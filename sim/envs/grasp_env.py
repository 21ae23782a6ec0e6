"""``s2r/Grasp-v0``: the OpenManipulator-X picks one object from a table and lifts it at least 5 cm.

Objects: boxes and cylinders with sides / diameters of 2-4 cm and heights of 2-4 cm, and a few meshes from
``pybullet_data/random_urdfs`` scaled to 2.5-3.5 cm. The table top is the plane z = 0 of the arm base frame.

Observation (``obs_mode="state"``): ``proprio`` from :class:`robot.tasks.grasp.GraspTask` and ``privileged`` =
object position (3, m), object quaternion (4, x y z w), object minus tool position (3, m), object height above
its start (1, m), left / right finger contact (2, 0 or 1). ``obs_mode="rgbd"``: ``rgb``, ``depth`` (m) and
``proprio``. Reward: potential-based shaping (Ng et al. 1999) with potential -10 x tool-object distance, +1 while
both fingers touch the object, +5 x lift progress (0..1 over 5 cm): the change in potential, -0.01 per step, +10
on success. Success (terminates): object 5 cm above its start while a finger touches it. Failure (terminates):
the object 5 cm below its start, knocked off the table.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p
import pybullet_data

from robot.joint_state import JointState
from robot.tasks.grasp import GraspTask
from sim.envs.robot_env import RobotEnv
from sim.pybullet_robot import PyBulletRobot, servo_params_from_targets
from sim.randomization.config import RandomizationConfig
from sim.randomization.targets import Target, appearance_targets

DROPPED_BELOW = 0.05  # m below its start height: the object has left the table
LIFT_SUCCESS = 0.05  # m above the object's resting height
#: Compact meshes of pybullet_data/random_urdfs (each about 10 cm across before scaling); 008 was dropped:
#: its shape slips out of the two-finger grasp almost every time.
MESH_OBJECTS = ("010", "012", "013", "017", "029")
OBJECT_KINDS = ("box", "cylinder", "mesh")
OBJECT_KIND_PROBS = (0.4, 0.4, 0.2)
TABLE_COLOR = [0.62, 0.5, 0.36, 1.0]
TABLE_HALF_EXTENTS = (0.4, 0.4, 0.025)  # m: the table top is z = 0 of the arm base frame
TABLE_CENTER = (0.15, 0.0, -0.025)  # m, arm base frame
OBJECT_COLOR = [0.85, 0.15, 0.1, 1.0]


class GraspEnv(RobotEnv):
    """Pick-and-lift with the arm of ``robot`` (default: OpenManipulator-X)."""

    task_name = "grasp"
    texture_repeat = {"table": 2.0}  # 0.8 m: cells of 5-20 cm
    #: Domain terms that make up mu, a universal policy's dynamics input (:mod:`sim.randomization.dynamics`).
    universal_terms = (
        "object_mass",
        "object_friction",
        "finger_friction_scale",
        "servo_position_gain_scale",
        "servo_strength",
        "latency_s",
        "joint_damping_scale",
    )

    def __init__(
        self,
        obs_mode: str = "state",
        robot: str = "openmanipulator_x",
        image_size: tuple[int, int] = (64, 64),
        render_mode: str | None = None,
        params: dict[str, Any] | None = None,
        max_episode_steps: int = GraspTask.episode_steps,
        randomization: str | Path | RandomizationConfig = "default",
        domain: str | Path | dict[str, Any] | None = None,
        strength: float | None = None,
        supersample: int = 1,
        crop: tuple[int, int, int, int] | None = None,
    ) -> None:
        super().__init__(
            robot,
            obs_mode,
            image_size,
            render_mode,
            params,
            max_episode_steps,
            randomization,
            domain,
            strength,
            supersample,
            crop,
        )
        self.task = GraspTask(self.config)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (GraspTask.action_dim,), np.float32)
        self.observation_space = self._observation_space(self.task.proprio_dim, 13)
        self._mesh_extent: dict[str, float] = {}
        self.object_id = -1
        self.object_info: dict[str, Any] = {}

    def scripted_expert(self) -> GraspExpert:
        """The task's scripted expert (it reads the privileged state), configured for this env's arm."""
        return GraspExpert(max_step=self.task.max_step)

    def task_targets(self) -> list[Target]:
        return [
            Target("object.mass", 0.05, "kg", "object mass"),
            Target("object.lateral_friction", 1.0, "-", "object sliding friction coefficient"),
            Target("object.spinning_friction", 0.001, "m", "object torsional friction"),
            Target("object.rolling_friction", 0.0, "m", "object rolling friction"),
            Target("object.restitution", 0.0, "-", "object bounciness"),
            Target("object.com_offset", [0.0, 0.0, 0.0], "m", "centre of mass offset (boxes and cylinders)"),
            Target("object.inertia_scale", 1.0, "-", "scale on the object's inertia"),
            Target("table.lateral_friction", 0.8, "-", "table friction coefficient"),
            Target("table.restitution", 0.0, "-", "table bounciness"),
            Target("finger.lateral_friction", 1.5, "-", "finger pad friction coefficient"),
            Target("robot.mass_scale", 1.0, "-", "scale on every arm link's mass (and inertia)"),
            Target("robot.inertia_scale", 1.0, "-", "further scale on every arm link's inertia"),
            Target("servo.position_gain", 0.3, "-", "PyBullet position gain of the servo loop"),
            Target("servo.velocity_gain", 1.0, "-", "PyBullet velocity gain of the servo loop"),
            Target("gripper.position_gain", 0.3, "-", "PyBullet position gain of the gripper servo"),
            Target("servo.strength", 1.0, "-", "scale on the configured torque limits"),
            Target("servo.latency", 0.0, "s", "command latency"),
            Target("joint.damping", 0.01, "N*m*s/rad", "joint viscous damping"),
            *appearance_targets("table", TABLE_COLOR),
            *appearance_targets("object", OBJECT_COLOR),
            *appearance_targets("robot", [0.5, 0.5, 0.5, 1.0]),
        ]

    # -- scene ----------------------------------------------------------------------------------------------
    def _build_scene(self) -> None:
        c, rng, prm = self.client, self.task_rng, self.params
        self._new_world()
        table = p.createCollisionShape(p.GEOM_BOX, halfExtents=TABLE_HALF_EXTENTS, physicsClientId=c)
        table_vis = p.createVisualShape(
            p.GEOM_BOX, halfExtents=TABLE_HALF_EXTENTS, rgbaColor=TABLE_COLOR, physicsClientId=c
        )
        self.table_id = p.createMultiBody(0, table, table_vis, TABLE_CENTER, physicsClientId=c)
        self.surface_bodies = (self.table_id,)
        p.changeDynamics(
            self.table_id,
            -1,
            lateralFriction=prm["table.lateral_friction"],
            restitution=prm["table.restitution"],
            physicsClientId=c,
        )
        servo = servo_params_from_targets(self.config, prm)
        self.robot = PyBulletRobot(c, self.config, params=servo)
        body = self.robot.body
        robot_parts = []
        for link in range(-1, p.getNumJoints(body, physicsClientId=c)):
            mass, _, inertia = p.getDynamicsInfo(body, link, physicsClientId=c)[:3]
            if mass > 0:
                m_scale = float(prm["robot.mass_scale"])
                p.changeDynamics(
                    body,
                    link,
                    mass=mass * m_scale,
                    localInertiaDiagonal=[i * m_scale * float(prm["robot.inertia_scale"]) for i in inertia],
                    physicsClientId=c,
                )
        for shape in p.getVisualShapeData(body, physicsClientId=c):
            robot_parts.append((body, shape[1], list(shape[7])))
        self.fingers = tuple(self.robot.link_index[link] for link in self.config.arm.finger_links)
        for finger in self.fingers:
            p.changeDynamics(body, finger, lateralFriction=prm["finger.lateral_friction"], physicsClientId=c)
        self._spawn_object(rng)
        self._apply_appearance("table", [(self.table_id, -1, TABLE_COLOR)])
        self._apply_appearance("object", [(self.object_id, -1, OBJECT_COLOR)])
        self._apply_appearance("robot", robot_parts)
        self.robot.reset_joints(self.task.start_pose())  # the tool pointing down above the workspace, gripper open
        self.robot.step(self.substeps)  # let the object settle on the table
        self.object_start_z = float(self._object_pose()[0][2])

    def _spawn_object(self, rng: np.random.Generator) -> None:
        c, prm = self.client, self.params
        kind = OBJECT_KINDS[int(rng.choice(len(OBJECT_KINDS), p=OBJECT_KIND_PROBS))]
        r = rng.uniform(0.13, 0.20)
        bearing = rng.uniform(-0.5, 0.5)
        yaw = rng.uniform(-math.pi / 4, math.pi / 4)
        xy = [r * math.cos(bearing), r * math.sin(bearing)]
        orn = p.getQuaternionFromEuler([0, 0, yaw])
        color = OBJECT_COLOR
        com = [float(x) for x in prm["object.com_offset"]]
        info: dict[str, Any] = {"kind": kind, "xy": xy, "yaw": yaw}
        if kind == "box":
            size = rng.uniform(0.02, 0.04, size=3)
            he = (size / 2).tolist()
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=he, physicsClientId=c)
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=he, rgbaColor=color, physicsClientId=c)
            height = float(size[2])
            info["size"] = size.tolist()
        elif kind == "cylinder":
            radius, height = float(rng.uniform(0.01, 0.02)), float(rng.uniform(0.02, 0.04))
            col = p.createCollisionShape(p.GEOM_CYLINDER, radius=radius, height=height, physicsClientId=c)
            vis = p.createVisualShape(p.GEOM_CYLINDER, radius=radius, length=height, rgbaColor=color, physicsClientId=c)
            info["size"] = [radius, height]
        else:
            name = MESH_OBJECTS[int(rng.integers(len(MESH_OBJECTS)))]
            target = float(rng.uniform(0.025, 0.035))
            path = os.path.join(pybullet_data.getDataPath(), "random_urdfs", name, f"{name}.urdf")
            scale = target / self._mesh_size(name, path)
            self.object_id = p.loadURDF(path, [*xy, 0.05], orn, globalScaling=scale, physicsClientId=c)
            lo, hi = p.getAABB(self.object_id, physicsClientId=c)
            height = hi[2] - lo[2]
            p.resetBasePositionAndOrientation(self.object_id, [*xy, 0.05 - lo[2] + 0.001], orn, physicsClientId=c)
            p.changeVisualShape(self.object_id, -1, rgbaColor=color, physicsClientId=c)
            info.update(mesh=name, size=[target])
        if kind != "mesh":
            self.object_id = p.createMultiBody(
                prm["object.mass"],
                col,
                vis,
                [*xy, height / 2 + 0.001],
                orn,
                baseInertialFramePosition=com,
                physicsClientId=c,
            )
        mass0, _, inertia = p.getDynamicsInfo(self.object_id, -1, physicsClientId=c)[:3]
        # Inertia follows the mass (a mesh's URDF has its own mass), then the inertia scale.
        k = float(prm["object.mass"]) / mass0 * float(prm["object.inertia_scale"])
        p.changeDynamics(
            self.object_id,
            -1,
            mass=prm["object.mass"],
            localInertiaDiagonal=[i * k for i in inertia],
            lateralFriction=prm["object.lateral_friction"],
            spinningFriction=prm["object.spinning_friction"],
            rollingFriction=prm["object.rolling_friction"],
            restitution=prm["object.restitution"],
            physicsClientId=c,
        )
        info["height"] = float(height)
        self.object_info = info

    def _mesh_size(self, name: str, path: str) -> float:
        """Largest extent (m) of a random_urdfs mesh at scale 1 (measured once per env)."""
        if name not in self._mesh_extent:
            body = p.loadURDF(path, physicsClientId=self.client)
            lo, hi = p.getAABB(body, physicsClientId=self.client)
            p.removeBody(body, physicsClientId=self.client)
            self._mesh_extent[name] = float(max(np.subtract(hi, lo)))
        return self._mesh_extent[name]

    # -- state ----------------------------------------------------------------------------------------------
    def _object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        pos, orn = p.getBasePositionAndOrientation(self.object_id, physicsClientId=self.client)
        return np.array(pos), np.array(orn)

    def _finger_contacts(self) -> tuple[bool, bool]:
        c = self.client
        return tuple(
            len(p.getContactPoints(self.robot.body, self.object_id, linkIndexA=f, physicsClientId=c)) > 0
            for f in self.fingers
        )

    def _privileged(self, tool: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        pos, orn = self._object_pose()
        left, right = self._finger_contacts()
        lift = pos[2] - self.object_start_z
        vec = np.concatenate([pos, orn, pos - tool, [lift], [float(left), float(right)]])
        state = {
            "object_position": pos,
            "object_orientation": orn,
            "object_lift": float(lift),
            "finger_contacts": (left, right),
            "tool_position": tool,
            "object": {k: (list(v) if isinstance(v, list) else v) for k, v in self.object_info.items()},
            "vector": vec.astype(np.float32),  # the state-mode "privileged" observation, in every obs mode
        }
        return vec, state

    def privileged_state(self) -> np.ndarray:
        """The privileged vector now (float32), as a state policy's ``privileged`` observation holds it."""
        proprio = self.task.proprio(self.robot.read())
        n = self.task.n_joints
        return self._privileged(proprio[2 * n : 2 * n + 3].astype(float))[0].astype(np.float32)

    def _observe(self, joints: JointState) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        proprio = self.task.proprio(joints)
        tool = proprio[2 * self.task.n_joints : 2 * self.task.n_joints + 3].astype(float)
        priv_vec, priv = self._privileged(tool)
        return self._assemble(joints, proprio, priv_vec), priv

    # -- gym API --------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._reset_rng(seed, options)
        self._build_scene()
        joints = self._read_joints()
        self.task.reset(joints)
        obs, priv = self._observe(joints)
        self._potential = self._shaping_potential(priv)
        return obs, self._info(priv, success=False)

    @staticmethod
    def _shaping_potential(priv: dict[str, Any]) -> float:
        """Progress toward a grasp: closer tool (10 per m), both fingers touching (1), lift (5 at success).

        Rewards are differences of this potential (Ng et al. 1999, potential-based shaping), so their sum over an
        episode is bounded and only the success bonus and the time penalty decide what is best. The earlier
        per-step shaped reward paid up to 2 per step for holding the object just below the success height, more
        than succeeding (+10, ending the episode): PPO fine-tuning learned to stop short of success.
        """
        left, right = priv["finger_contacts"]
        dist = float(np.linalg.norm(priv["object_position"] - priv["tool_position"]))
        lift = float(np.clip(priv["object_lift"] / LIFT_SUCCESS, 0.0, 1.0))
        return -10.0 * dist + 1.0 * float(left and right) + 5.0 * lift

    def step(self, action: np.ndarray):
        if self.robot is None:
            raise RuntimeError("call reset() before step()")
        if self.steps > 0:
            self._resample_per_step_terms()
        targets = self.task.action_to_targets(action)
        self.robot.command(targets)
        self._advance()
        self.steps += 1
        joints = self._read_joints()
        self.task.update(joints)  # the Task protocol, as on the robot (the grasp task integrates nothing)
        obs, priv = self._observe(joints)
        success, failed = self.outcome(priv)
        potential = self._shaping_potential(priv)
        reward = potential - self._potential - 0.01 + 10.0 * float(success)
        self._potential = potential
        truncated = self.steps >= self.max_episode_steps
        return obs, float(reward), success or failed, truncated, self._info(priv, success)

    def outcome(self, priv: dict[str, Any] | None = None) -> tuple[bool, bool]:
        """(success, failure) of the world as it is now (``priv``: this step's privileged state, else read):
        success is the object 5 cm up with a finger on it; failure, knocked off the table, which no later step can
        undo. Also used to judge a deployment on a simulated reality."""
        if priv is None:
            priv = self._privileged(self.task.proprio(self.robot.read())[2 * self.task.n_joints : -1])[1]
        left, right = priv["finger_contacts"]
        lift = priv["object_lift"]
        return bool(lift >= LIFT_SUCCESS and (left or right)), bool(lift < -DROPPED_BELOW)


class GraspExpert:
    """Approach above the object, descend, close, lift. Reads ``info["privileged"]`` of ``s2r/Grasp-v0``.

    Stateful (a phase machine): call :meth:`reset` at the start of each episode.
    """

    hover = 0.05  # m above the grasp point while approaching
    lift_to = 0.09  # m above the grasp point at the end
    close_steps = 6  # control cycles to wait for the fingers to close
    lift_speed = 0.5  # fraction of the maximum tool speed while lifting

    def __init__(self, max_step: float = 0.02) -> None:
        self.max_step = max_step
        self.reset()

    def reset(self) -> None:
        self.phase = "approach"
        self.closing_steps = 0

    def act(self, obs: dict, info: dict) -> np.ndarray:
        priv = info["privileged"]
        obj = np.asarray(priv["object_position"], dtype=float)
        tool = np.asarray(priv["tool_position"], dtype=float)
        height = float(priv["object"]["height"])
        # Tool (fingertips) a few mm above the table, or mid-height on tall objects.
        grasp = obj.copy()
        grasp[2] = max(0.006, obj[2] - height / 2 + 0.006)
        gripper = -1.0
        if self.phase == "approach":
            goal = grasp + [0, 0, self.hover]
            if np.linalg.norm((goal - tool)[:2]) < 0.006 and abs(goal[2] - tool[2]) < 0.01:
                self.phase = "descend"
        if self.phase == "descend":
            goal = grasp
            if np.linalg.norm(goal - tool) < 0.006:
                self.phase = "close"
        if self.phase == "close":
            goal, gripper = grasp, 1.0
            self.closing_steps += 1
            if self.closing_steps >= self.close_steps:
                self.phase = "lift"
        if self.phase == "lift":
            goal, gripper = grasp + [0, 0, self.lift_to], 1.0
        limit = self.lift_speed if self.phase == "lift" else 1.0
        delta = np.clip((goal - tool) / self.max_step, -limit, limit)
        return np.concatenate([delta, [gripper]]).astype(np.float32)

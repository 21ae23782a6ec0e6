"""A reality on a second physics engine: the task's scene in MuJoCo, met by the real driver code through the servo
emulator (:class:`~mock.mujoco_plant.MujocoPlant`: servos as firmware and DC motors) and by the real librealsense
code through the software device (frames rendered by MuJoCo's OpenGL renderer).

The episode's scene is the one the task samples (object kind, size and pose; room layout, start and goal): the task
env is used as the scene sampler and for its resolved domain params, nothing else; contacts, friction, integration,
servos and rendering are MuJoCo's. Success, failure and the privileged state are judged from the MuJoCo state by the
task's own rules and thresholds (:mod:`sim.envs.grasp_env`, :mod:`sim.envs.navigate_env`).

Every domain term applies here as in the simulator: the world's in the MuJoCo model and servo firmware, the
sensors' and the pushes on the mock path shared with PyBullet (:mod:`mock.sensor_model`, :mod:`mock.base_push`).
"""

from __future__ import annotations

import math
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pybullet_data

from mock.base_push import PushSchedule
from mock.mujoco_scene import (
    STIFF_TIMECONST_S,
    Box,
    add_camera,
    add_geom,
    add_light,
    add_mesh,
    mujoco,
    obj_bounds,
    restitution_solref,
    robot_spec,
)
from mock.reality import reset_options, task_world
from mock.sensor_model import ServoReadingNoise
from real.dynamixel.emulator import EmulatedServo
from robot.joint_state import JointState
from robot.kinematics import ArmKinematics
from robot.lidar import measurement_noise, reduce_scan, sensor_scan
from sim.randomization.config import load_domain
from sim.randomization.textures import element_appearance


class MujocoReality:
    """The world of ``task`` in MuJoCo with ``domain`` pinned (``randomization``: what is not pinned, default
    "none"); the same interface as :class:`mock.reality.Reality`."""

    engine = "mujoco"

    def __init__(
        self,
        task: str,
        domain: str | Path | dict[str, Any] | None = None,
        randomization: str = "none",
        seed: int = 0,
        goals: list[list[float]] | None = None,
    ) -> None:
        self.task = task
        self.domain = load_domain(domain) if domain is not None else {}
        self.goals = goals
        self.env = task_world(task, randomization)
        self.core = self.env.unwrapped  # the task's scene sampler and rules
        self.config = self.core.config
        motors = self.config.motors
        # joint = direction * (motor - offset) * scale, the host's conversion (real.dynamixel.motor_bus)
        self._dir = np.array([m.direction for m in motors], dtype=float)
        self._scale = np.array([m.scale for m in motors], dtype=float)
        self._off = np.array([m.offset for m in motors], dtype=float)
        self._kinematics = None
        if self.config.arm is not None:
            self._kinematics = ArmKinematics(self.config)  # the tool position of the privileged state
        self.lock = threading.RLock()
        self._workdir = tempfile.TemporaryDirectory(prefix="s2r-mujoco-")
        self.info: dict[str, Any] = {}
        self._renderers: list[Any] = []  # camera renderers handed out, closed with the reality
        self.new_episode(seed)

    # -- building ----------------------------------------------------------------------------------------------
    def new_episode(self, seed: int) -> dict[str, Any]:
        """Build the episode's scene for ``seed`` (the domain stays); the robot at its rest pose (an arm) or at the
        sampled start pose (a base), torque off. Returns the task env's reset info."""
        from mock.mujoco_plant import MujocoPlant

        with self.lock:
            _, self.info = self.env.reset(seed=seed, options=reset_options(self.domain, self.goals))
            self.episode_seed = seed
            self._noise_rng = np.random.default_rng(seed)  # the scan's measurement noise
            self.params = dict(self.core.params)
            spec = robot_spec(self.config, self.params, self._urdf())
            self._appearance: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
            for body in spec.bodies:  # the robot's parts only, so far
                for geom in body.geoms:
                    geom.rgba = list(self._color("robot", list(geom.rgba)))
                    self._pattern(spec, "robot", geom)
            self._scene_geoms: list[str] = []
            if self.task == "grasp":
                self._add_grasp_scene(spec)
            else:
                self._add_room(spec)
            add_light(spec, self.params)
            self._add_cameras(spec)
            self.model = spec.compile()
            self.data = mujoco.MjData(self.model)
            self._place_robot()
            mujoco.mj_forward(self.model, self.data)
            self.plant = MujocoPlant(self.config, self.model, self.data, self.params)
            m = self.model
            self._robot_bodies = np.flatnonzero(
                m.body_rootid == m.body_rootid[m.joint(self.config.motors[0].joint).bodyid]
            )
            self._scene_bodies = np.array([m.body(n).id for n in self._scene_geoms])
            self._settle()
            self.collided = False
            self.encoder = ServoReadingNoise(self.params, self.config.motors, seed)
            self.pushes = PushSchedule.of_reality(self.task, self.params, self.config.control_period)
            self._push_start = float(self.data.time)
            return self.info

    def _urdf(self) -> Path | None:
        """The base's URDF with the params' wheel radius and track scales (as the simulator edits it), else None."""
        if self.config.base is None:
            return None
        from robot.description import urdf_path
        from sim.urdf_edit import scale_wheels

        radius, track = float(self.params["wheel.radius_scale"]), float(self.params["base.track_scale"])
        if radius == 1.0 and track == 1.0:
            return None
        out = Path(self._workdir.name) / "robot.urdf"
        base = self.config.base
        return scale_wheels(urdf_path(self.config), out, [base.left_wheel, base.right_wheel], radius, track)

    def _color(self, element: str, nominal: list[float]) -> tuple[float, float, float, float]:
        """A part's colour, as the simulator shifts it (:func:`sim.randomization.textures.element_appearance`):
        its ``nominal`` RGBA moved by the element's colour shift; the first part asked for draws the element's
        pattern, if it has one."""
        if element not in self._appearance:
            self._appearance[element] = element_appearance(
                self.params,
                self.core.targets[f"texture.{element}.color"].nominal,
                element,
                nominal,
                self.core.texture_repeat.get(element, 1.0),
            )
        shift, _ = self._appearance[element]
        rgb = np.clip(np.asarray(nominal[:3], dtype=float) + shift, 0, 1)
        return (*rgb.tolist(), nominal[3] if len(nominal) > 3 else 1.0)

    def _pattern(self, spec: mujoco.MjSpec, element: str, geom: Any) -> None:
        """Dress ``geom`` in its element's pattern, when the element has one: a 2D texture spanning each face
        (MuJoCo's ``texuniform`` off, one repeat), white under it, as PyBullet draws a textured part."""
        _, image = self._appearance[element]
        if image is None:
            return
        name = f"{element}_pattern"
        if spec.material(name) is None:
            texture = spec.add_texture(
                name=name, type=mujoco.mjtTexture.mjTEXTURE_2D, width=image.shape[1], height=image.shape[0], nchannel=3
            )
            texture.data = image.tobytes()
            material = spec.add_material(name=name, texuniform=False, texrepeat=[1.0, 1.0])
            material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = name
        geom.material = name
        geom.rgba = [1.0, 1.0, 1.0, geom.rgba[3]]

    def _add_grasp_scene(self, spec: mujoco.MjSpec) -> None:
        from sim.envs.grasp_env import OBJECT_COLOR, TABLE_CENTER, TABLE_COLOR, TABLE_HALF_EXTENTS

        prm, info = self.params, self.core.object_info
        table = Box("table", "box", TABLE_HALF_EXTENTS, TABLE_CENTER, rgba=self._color("table", TABLE_COLOR))
        geom = add_geom(
            spec.worldbody.add_body(name="table", pos=list(table.pos)),
            table,
            (prm["table.lateral_friction"], 0.005, 0.0001),
            solref=restitution_solref(prm["table.restitution"]),
        )
        self._pattern(spec, "table", geom)
        self._scene_geoms.append("table")
        kind, size, rgba = info["kind"], info["size"], self._color("object", OBJECT_COLOR)
        if kind == "box":
            obj = Box("object", "box", tuple(s / 2 for s in size), (0, 0, 0), rgba=rgba)
            height, half = size[2], np.array(size) / 2
            inertia = [
                (half[1] ** 2 + half[2] ** 2) / 3,
                (half[0] ** 2 + half[2] ** 2) / 3,
                (half[0] ** 2 + half[1] ** 2) / 3,
            ]
        elif kind == "cylinder":
            radius, height = size
            obj = Box("object", "cylinder", (radius, height / 2), (0, 0, 0), rgba=rgba)
            inertia = [(3 * radius**2 + height**2) / 12] * 2 + [radius**2 / 2]
        else:
            name = info["mesh"]
            path = str(Path(pybullet_data.getDataPath()) / "random_urdfs" / name / f"{name}.obj")
            lo, hi = obj_bounds(path)
            scale = size[0] / float(np.max(hi - lo))  # the largest extent scaled to the sampled size, as in the sim
            obj = Box("object", "mesh", (), (0, 0, 0), rgba=rgba, mesh=path, mesh_scale=scale)
            add_mesh(spec, obj)
            bottom = -lo[2] * scale  # the mesh's origin above its lowest point
            inertia = [size[0] ** 2 / 6] * 3  # a cube of the mesh's largest extent
        mass = float(prm["object.mass"])
        if kind != "mesh":
            bottom = height / 2
        body = spec.worldbody.add_body(
            name="object",
            pos=[*info["xy"], bottom + 0.001],
            quat=[math.cos(info["yaw"] / 2), 0, 0, math.sin(info["yaw"] / 2)],
        )
        body.add_freejoint(name="object_free")
        body.explicitinertial = True
        body.mass = mass
        body.ipos = [float(x) for x in prm["object.com_offset"]]
        body.inertia = [mass * i * float(prm["object.inertia_scale"]) for i in inertia]
        # Sliding friction of a contact as PyBullet combines it (the product of the two bodies' coefficients), set
        # through contact priority: the fingers' (2) win against the object, the object's (1) against the table.
        obj_mu = float(prm["object.lateral_friction"])
        friction = (
            obj_mu * float(prm["table.lateral_friction"]),
            float(prm["object.spinning_friction"]),
            float(prm.get("object.rolling_friction", 0.0)),
        )
        geom = add_geom(body, obj, friction, condim=4, priority=1)
        geom.mass = 0.0
        self._pattern(spec, "object", geom)
        # Restitution likewise: PyBullet bounces a contact with the product of the two bodies' coefficients, and the
        # object's priority makes its solref the object-table contact's (the fingers' default, 0, wins against it).
        geom.solref = restitution_solref(float(prm["object.restitution"]) * float(prm["table.restitution"]))
        finger = float(prm["finger.lateral_friction"]) * obj_mu
        for link in self.config.arm.finger_links:
            for g in spec.body(link).geoms:
                g.friction, g.condim, g.priority = [finger, 0.005, 0.0001], 4, 2
                # Stiff pads: a servo squeezing at stall torque pushes MuJoCo's default soft contact (20 ms) about a
                # centimetre into the object; PyBullet's rigid contacts stop the fingers at its surface.
                g.solref, g.solimp = [STIFF_TIMECONST_S, 1.0], [0.99, 0.999, 0.001, 0.5, 2.0]

    def _add_room(self, spec: mujoco.MjSpec) -> None:
        from sim.envs.navigate_env import BOX_COLOR, CYLINDER_COLOR, FLOOR_COLOR, ROOM_HALF, WALL_COLOR

        prm, core = self.params, self.core
        floor = spec.worldbody.add_geom(
            name="floor",
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[ROOM_HALF + 0.5, ROOM_HALF + 0.5, 0.1],
            rgba=list(self._color("floor", FLOOR_COLOR)),
            friction=[float(prm["floor.lateral_friction"]), 0.005, 0.0001],
            solref=restitution_solref(prm["floor.restitution"]),
            contype=1,
            conaffinity=3,
        )
        self._pattern(spec, "floor", floor)
        wall_rgba = self._color("walls", WALL_COLOR)
        for axis in (0, 1):
            for sign in (-1, 1):
                he = [0.025, ROOM_HALF + 0.05, 0.15] if axis == 0 else [ROOM_HALF + 0.05, 0.025, 0.15]
                pos = [0.0, 0.0, 0.15]
                pos[axis] = sign * (ROOM_HALF + 0.025)
                name = f"wall{len(self._scene_geoms)}"
                wall = add_geom(
                    spec.worldbody.add_body(name=name, pos=pos),
                    Box(name, "box", tuple(he), tuple(pos), rgba=wall_rgba),
                    (0.8, 0.005, 0.0001),
                )
                self._pattern(spec, "walls", wall)
                self._scene_geoms.append(name)
        for i, (x, y, r, kind, yaw) in enumerate(core.obstacles):
            name = f"obstacle{i}"
            if kind == "cylinder":
                box = Box(name, "cylinder", (r, 0.15), (x, y, 0.15), rgba=self._color("obstacles", CYLINDER_COLOR))
            else:
                box = Box(
                    name,
                    "box",
                    (r / math.sqrt(2), r / math.sqrt(2), 0.15),
                    (x, y, 0.15),
                    yaw,
                    self._color("obstacles", BOX_COLOR),
                )
            body = spec.worldbody.add_body(
                name=name, pos=[x, y, 0.15], quat=[math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]
            )
            self._pattern(spec, "obstacles", add_geom(body, box, (0.8, 0.005, 0.0001)))
            self._scene_geoms.append(name)
        # The tyre-floor coefficient as PyBullet combines it (the product of the two bodies' coefficients); with
        # contact priority MuJoCo uses the wheels' (it takes the larger of two geoms' frictions otherwise).
        # Spinning friction as Bullet combines it (btManifoldResult::calculateCombinedSpinningFriction: each body's
        # spinning coefficient times the other's sliding one; the floor has none), as MuJoCo's torsional friction,
        # which acts with condim 4.
        floor_mu = float(prm["floor.lateral_friction"])
        wheel = float(prm["wheel.lateral_friction"]) * floor_mu
        spin = float(prm["wheel.spinning_friction"]) * floor_mu
        for name in (self.config.base.left_wheel, self.config.base.right_wheel):
            for g in spec.joint(name).parent.geoms:
                g.friction, g.priority, g.condim = [wheel, spin, 0.0001], 1, 4

    def _add_cameras(self, spec: mujoco.MjSpec) -> None:
        from sim.envs.camera_view import camera_mount

        self.camera_mounts: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name: position, rotation in parent
        for cam in self.config.cameras:
            pos, rotation = camera_mount(cam, self.params)
            self.camera_mounts[cam.name] = (pos, rotation)
            parent = spec.worldbody if cam.parent == "world" else spec.body(cam.parent)
            add_camera(spec, parent, cam.name, pos, rotation)

    def place_arm(self, joints: Any) -> None:
        """Put the arm's configured joints at ``joints`` (config order, rad or m), its mimic followers with them."""
        d, m = self.data, self.model
        for motor, q in zip(self.config.motors, joints, strict=True):
            d.qpos[m.jnt_qposadr[m.joint(motor.joint).id]] = q
        for eq in range(m.neq):  # mimic followers where their leaders are
            a, b = m.eq_obj1id[eq], m.eq_obj2id[eq]
            d.qpos[m.jnt_qposadr[a]] = m.eq_data[eq][0] + m.eq_data[eq][1] * d.qpos[m.jnt_qposadr[b]]

    def _place_robot(self) -> None:
        config, d, m = self.config, self.data, self.model
        if config.arm is not None:
            self.place_arm([config.arm.rest[j] for j in config.joint_names])
        else:
            x, y, yaw = self.core.start_pose
            adr = m.jnt_qposadr[m.joint("base_free").id]
            lift = self.config.base.wheel_radius * (float(self.params["wheel.radius_scale"]) - 1.0)
            d.qpos[adr : adr + 7] = [x, y, 0.010 + max(lift, 0.0), math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]

    def _settle(self, seconds: float = 0.3) -> None:
        """Let the scene come to rest (the object onto the table, the base onto its wheels) with an arm held where it
        was placed; its servos are unpowered, so it sags from there once the emulator runs, as a parked arm does."""
        m, d = self.model, self.data
        held = [m.jnt_qposadr[m.joint(j).id] for j in self.config.joint_names] if self.config.arm else []
        q = d.qpos[held].copy()
        for _ in range(int(seconds / m.opt.timestep)):
            mujoco.mj_step(m, d)
            if held:
                d.qpos[held] = q
                d.qvel[[m.jnt_dofadr[m.joint(j).id] for j in self.config.joint_names]] = 0.0
        if self.task == "grasp":
            self.object_start_z = float(self.data.body("object").xpos[2])
            self._object_qpos = d.qpos[m.jnt_qposadr[m.joint("object_free").id] :][:7].copy()  # restore_scene

    def restore_scene(self) -> None:
        """Put a grasp object back where the scene settled it, at rest (see the PyBullet reality's)."""
        if self.task != "grasp":
            return
        with self.lock:
            m, d = self.model, self.data
            joint = m.joint("object_free").id
            d.qpos[m.jnt_qposadr[joint] :][:7] = self._object_qpos
            d.qvel[m.jnt_dofadr[joint] :][:6] = 0.0
            mujoco.mj_forward(m, d)

    # -- the servo emulator's plant ------------------------------------------------------------------------------
    def step(self, dt: float, servos: dict[int, EmulatedServo]) -> None:
        with self.lock:
            self.plant.step(dt, servos, before_step=self._push if self.pushes.active else None)
            self.encoder.perturb([servos[m.id] for m in self.config.motors])
            if self.task == "navigate":
                self.collided = self.collided or self._collision()

    def _push(self) -> None:
        """Before each MuJoCo step: the base's push (N, world frame, at its centre of mass) while one is due."""
        body = self.model.jnt_bodyid[self.model.joint("base_free").id]
        force = self.pushes.force_at(float(self.data.time) - self._push_start)
        self.data.xfrc_applied[body, :3] = 0.0 if force is None else [force[0], force[1], 0.0]

    # -- what only a simulation knows ------------------------------------------------------------------------------
    def joints(self) -> JointState:
        """The configured joints now (positions, velocities; effort from the servos' torque)."""
        angle, velocity = self.plant.motor_state()
        d, s, o = self._dir, self._scale, self._off
        return JointState(d * (angle - o) * s, d * velocity * s, d * self.plant.torque / s, int(self.data.time * 1e9))

    def _contacts(self, bodies_a: np.ndarray, bodies_b: np.ndarray) -> bool:
        """Whether any contact now is between a body of ``bodies_a`` and one of ``bodies_b`` (body ids)."""
        m, d = self.model, self.data
        if d.ncon == 0:
            return False
        b1, b2 = m.geom_bodyid[d.contact.geom1[: d.ncon]], m.geom_bodyid[d.contact.geom2[: d.ncon]]
        a1, a2 = np.isin(b1, bodies_a), np.isin(b2, bodies_a)
        return bool(np.any((a1 & np.isin(b2, bodies_b)) | (a2 & np.isin(b1, bodies_b))))

    def _grasp_state(self) -> dict[str, Any]:
        m, d = self.model, self.data
        pos = d.body("object").xpos.copy()
        w, x, y, z = d.body("object").xquat
        tool, _ = self._kinematics.forward(np.array(self.joints().position))
        obj = np.array([m.body("object").id])
        left, right = (self._contacts(np.array([m.body(link).id]), obj) for link in self.config.arm.finger_links)
        lift = float(pos[2] - self.object_start_z)
        vec = np.concatenate([pos, [x, y, z, w], pos - tool, [lift], [float(left), float(right)]])
        return {"vector": vec.astype(np.float32), "object_lift": lift, "finger_contacts": (left, right)}

    def robot_pose(self) -> np.ndarray:
        """True (x, y, yaw) of the base in the world."""
        d = self.data.body("base_link")
        w, _, _, z = d.xquat  # the base stays upright: yaw from the z rotation
        return np.array([d.xpos[0], d.xpos[1], 2 * math.atan2(z, w)])

    def lidar_scan(self, pose: np.ndarray) -> np.ndarray:
        """The scan (:data:`robot.lidar.READINGS` ranges, m, 0 = no return) the base's sensor sees at ``pose``
        before its measurement noise, cast in MuJoCo as the simulation casts it in PyBullet
        (:meth:`sim.envs.navigate_env.NavigateEnv.lidar_scan`): rays from the base's origin at the sensor's height,
        the robot's own body excluded, binned by degree as the sensor at its mount sees them."""
        from sim.envs.navigate_env import RAY_LENGTH, ROBOT_RADIUS, SCAN_HEIGHT

        bearings = self.core.ray_bearings
        start = ROBOT_RADIUS + 0.01  # outside the robot's footprint: no ray meets the robot itself
        dist = np.full(len(bearings), np.inf)
        geomid = np.zeros(1, dtype=np.int32)
        base = self.model.body("base_link").id
        for i, b in enumerate(bearings):
            u = np.array([math.cos(pose[2] + b), math.sin(pose[2] + b), 0.0])
            origin = np.array([pose[0], pose[1], SCAN_HEIGHT]) + start * u
            d = mujoco.mj_ray(self.model, self.data, origin, u, None, 1, base, geomid)
            if 0 <= d <= RAY_LENGTH - start:
                dist[i] = start + d
        return sensor_scan(bearings, dist, *self.core.lidar_mount)

    def _scan(self, pose: np.ndarray) -> np.ndarray:
        """The policy's beams as the sensor would give them now (with its noise and dropouts)."""
        return reduce_scan(measurement_noise(self.lidar_scan(pose), self._noise_rng), *self.core.lidar_mount)

    def _navigate_state(self) -> dict[str, Any]:
        from sim.envs.navigate_env import goal_in_frame

        pose = self.robot_pose()
        c, s = math.cos(pose[2]), math.sin(pose[2])
        goal_rel = goal_in_frame(self.core.goal_world, pose)
        vel = np.zeros(6)
        mujoco.mj_objectVelocity(
            self.model, self.data, mujoco.mjtObj.mjOBJ_BODY, self.model.body("base_link").id, vel, 0
        )
        v = c * vel[3] + s * vel[4]
        vec = np.concatenate([goal_rel, [v, vel[2]], self._scan(pose)])
        return {"vector": vec.astype(np.float32), "goal_distance": float(np.hypot(*goal_rel))}

    def _collision(self) -> bool:
        """Whether the base touches anything but the floor now (a wall or an obstacle)."""
        return self._contacts(self._robot_bodies, self._scene_bodies)

    def privileged(self) -> np.ndarray:
        """The task's privileged state vector now (what a state policy takes beside proprioception)."""
        with self.lock:
            return (self._grasp_state() if self.task == "grasp" else self._navigate_state())["vector"]

    def set_goal(self, index: int) -> None:
        """Judge arrival at goal ``index`` of the given route from now on."""
        with self.lock:
            self.core.goal_world = self.core.goals_world[index]

    def sensor_scan(self) -> np.ndarray:
        """The base's laser scan from its true pose now, before the sensor's noise (:mod:`robot.lidar`)."""
        with self.lock:
            return self.lidar_scan(self.robot_pose())

    def goal(self) -> np.ndarray | None:
        """The goal relative to the robot's true pose now (navigate), None for the grasp task."""
        with self.lock:
            if self.task == "grasp":
                return None
            from sim.envs.navigate_env import goal_in_frame

            return goal_in_frame(self.core.goal_world, self.robot_pose())

    def outcome(self) -> tuple[bool, bool]:
        """(success, failure) now, by the task's rules and thresholds."""
        with self.lock:
            if self.task == "grasp":
                from sim.envs.grasp_env import DROPPED_BELOW, LIFT_SUCCESS

                state = self._grasp_state()
                lift, (left, right) = state["object_lift"], state["finger_contacts"]
                return bool(lift >= LIFT_SUCCESS and (left or right)), bool(lift < -DROPPED_BELOW)
            from robot.tasks.navigate import GOAL_TOLERANCE

            self.collided = self.collided or self._collision()
            distance = float(np.hypot(*self.goal()))  # each control cycle: no scan cast
            return bool(distance < GOAL_TOLERANCE and not self.collided), bool(self.collided)

    def renderer(self, camera: str, depth_range: tuple[float, float]) -> Any:
        """A :data:`~mock.simulated_realsense.Renderer` drawing camera ``camera`` of this reality at each call."""
        from mock.mujoco_camera import MujocoCameraRenderer

        renderer = MujocoCameraRenderer(self, camera, depth_range)
        self._renderers.append(renderer)
        return renderer

    def close(self) -> None:
        for renderer in self._renderers:
            renderer.close()
        with self.lock:
            self.env.close()
            self._workdir.cleanup()

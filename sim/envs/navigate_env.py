"""``s2r/Navigate-v0``: the TurtleBot3 Burger drives to a goal in a walled room with obstacles, without touching any.

Room: 4 x 4 m, walls 0.3 m high. Obstacles: 3-6 cylinders and boxes (0.05-0.15 m radius / half side), placed so
that a free path of the robot's width always links start and goal (checked on an occupancy grid). The goal is
1.0-2.5 m from the start.

Observation: ``proprio`` from :class:`robot.tasks.navigate.NavigateTask` (wheel speeds, odometry velocity, goal
distance and bearing from odometry) in both modes; ``scan`` (state mode) = the base's laser scan reduced to 16
beams (m, at most 3 m; :func:`robot.lidar.reduce_scan`): the robot's own sensor, simulated as it measures (rays at
each degree from its mount, its noise and dropouts), so a state policy takes nothing a real base lacks. The
privileged state (``info["privileged"]["vector"]``, for teachers and evaluations) = true goal in the robot frame
(2, m), true body velocity (2: m/s, rad/s) and the same 16-beam scan. Reward: 10 x progress toward the goal
(m) - 0.01 per step, -5 on a collision, +10 on success. Success (terminates): within 0.15 m of the goal. A
collision terminates as a failure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p

from robot.description import urdf_path
from robot.joint_state import JointState
from robot.lidar import READINGS, SCAN_BEAMS, measurement_noise, reduce_scan, sensor_scan
from robot.tasks.navigate import GOAL_TOLERANCE, NavigateTask
from sim.envs.robot_env import RobotEnv
from sim.nav_map import OccupancyGrid
from sim.pybullet_robot import PyBulletRobot, servo_params_from_targets
from sim.randomization.config import RandomizationConfig
from sim.randomization.targets import Target, appearance_targets
from sim.urdf_edit import scale_wheels

ROOM_HALF = 2.0  # m, half the side of the square room
ROBOT_RADIUS = 0.125  # m, bounding circle of the Burger's footprint about base_link
SCAN_HEIGHT = 0.18  # m above the floor (the LDS-01 lidar sits at 0.182 m)
#: Rays cast per scan from the base's origin (two per degree, so that every degree of the sensor gets a point).
SCAN_RAYS = 2 * READINGS
RAY_LENGTH = 4.0  # m from the base's origin: past the sensor's 3.5 m from its mount
FLOOR_COLOR = [0.55, 0.55, 0.5, 1.0]
WALL_COLOR = [0.9, 0.9, 0.85, 1.0]
CYLINDER_COLOR = [0.2, 0.35, 0.7, 1.0]
BOX_COLOR = [0.7, 0.4, 0.2, 1.0]


def goal_in_frame(goal_world: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """A world goal (x, y; m) in the frame of a base at ``pose`` (x, y, yaw): x forward, y left."""
    d = np.asarray(goal_world, dtype=float) - pose[:2]
    c, s = math.cos(pose[2]), math.sin(pose[2])
    return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])


class NavigateEnv(RobotEnv):
    """Goal reaching with the differential-drive base of ``robot`` (default: TurtleBot3 Burger)."""

    task_name = "navigate"
    texture_repeat = {"floor": 4.0, "walls": 4.0}  # 4 m: cells of 12-50 cm
    #: Domain terms that make up mu, a universal policy's dynamics input (:mod:`sim.randomization.dynamics`).
    universal_terms = (
        "base_mass_scale",
        "wheel_radius_scale",
        "track_scale",
        "wheel_strength_asymmetry",
        "servo_strength",
        "latency_s",
        "floor_friction",
    )

    def __init__(
        self,
        obs_mode: str = "state",
        robot: str = "turtlebot3_burger",
        image_size: tuple[int, int] = (64, 64),
        render_mode: str | None = None,
        params: dict[str, Any] | None = None,
        max_episode_steps: int = NavigateTask.episode_steps,
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
        self.task = NavigateTask(self.config)
        self.given_goals: list[np.ndarray] | None = None
        self.action_space = gym.spaces.Box(-1.0, 1.0, (NavigateTask.action_dim,), np.float32)
        self.observation_space = self._observation_space(NavigateTask.proprio_dim, 4 + SCAN_BEAMS, scan_dim=SCAN_BEAMS)
        if not self.config.lidars:
            raise ValueError(f"{self.config.name}: the navigation task needs a lidar in the hardware config")
        self.lidar_mount = self.config.lidars[0].mount_xy_yaw
        self.ray_bearings = 2 * math.pi * np.arange(SCAN_RAYS) / SCAN_RAYS
        self._beam_dirs = np.stack([np.cos(self.ray_bearings), np.sin(self.ray_bearings)], axis=1)
        self._ray_starts = np.full((SCAN_RAYS, 3), SCAN_HEIGHT)
        self._ray_ends = np.full((SCAN_RAYS, 3), SCAN_HEIGHT)

    def scripted_expert(self) -> NavigateExpert:
        """The task's scripted expert (it reads the privileged state), within this env's base's command limits."""
        base = self.config.base
        return NavigateExpert(max_linear=base.max_linear, max_angular=base.max_angular)

    def task_targets(self) -> list[Target]:
        return [
            Target("servo.velocity_gain", 1.0, "-", "PyBullet velocity gain of the wheel servos"),
            Target("servo.strength", 1.0, "-", "scale on the configured wheel torque limits"),
            Target("servo.latency", 0.0, "s", "command latency"),
            Target("wheel.strength_asymmetry", 0.0, "-", "left torque x (1 + a), right x (1 - a)"),
            Target("wheel.radius_scale", 1.0, "-", "scale on the simulated wheel radius"),
            Target("base.track_scale", 1.0, "-", "scale on the simulated wheel separation"),
            Target("wheel.lateral_friction", 1.0, "-", "tyre friction coefficient"),
            Target("wheel.spinning_friction", 0.001, "m", "tyre torsional friction"),
            Target("wheel.rolling_friction", 0.0, "m", "tyre rolling friction"),
            Target("floor.lateral_friction", 1.0, "-", "floor friction coefficient"),
            Target("floor.restitution", 0.0, "-", "floor bounciness"),
            Target("base.mass_scale", 1.0, "-", "scale on the base mass (and inertia)"),
            Target("base.inertia_scale", 1.0, "-", "further scale on the base inertia"),
            Target("base.push", [0.0, 0.0], "N", "horizontal push on the base during one control step", per_step=True),
            *appearance_targets("floor", FLOOR_COLOR),
            *appearance_targets("walls", WALL_COLOR),
            *appearance_targets("obstacles", CYLINDER_COLOR),
            *appearance_targets("robot", [0.15, 0.15, 0.15, 1.0]),
        ]

    # -- scene ----------------------------------------------------------------------------------------------
    def _build_scene(self) -> None:
        c, rng, prm = self.client, self.task_rng, self.params
        self._new_world()
        floor = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=c)
        floor_vis = p.createVisualShape(
            p.GEOM_BOX,
            halfExtents=[ROOM_HALF, ROOM_HALF, 0.001],
            rgbaColor=[0.55, 0.55, 0.5, 1],
            physicsClientId=c,
        )
        self.floor_id = p.createMultiBody(0, floor, floor_vis, [0, 0, 0], physicsClientId=c)
        p.changeDynamics(self.floor_id, -1, lateralFriction=prm["floor.lateral_friction"], physicsClientId=c)
        self.wall_ids = []
        for axis in (0, 1):
            for sign in (-1, 1):
                he = [0.025, ROOM_HALF + 0.05, 0.15] if axis == 0 else [ROOM_HALF + 0.05, 0.025, 0.15]
                pos = [0.0, 0.0, 0.15]
                pos[axis] = sign * (ROOM_HALF + 0.025)
                col = p.createCollisionShape(p.GEOM_BOX, halfExtents=he, physicsClientId=c)
                vis = p.createVisualShape(p.GEOM_BOX, halfExtents=he, rgbaColor=WALL_COLOR, physicsClientId=c)
                self.wall_ids.append(p.createMultiBody(0, col, vis, pos, physicsClientId=c))
        start, yaw, goals, obstacles = self._sample_layout(rng)
        self.start_pose = np.array([*start, yaw])
        self.goals_world = goals
        self.goal_world = goals[0]
        self.obstacles = obstacles
        self.obstacle_ids = []
        for x, y, r, kind, oyaw in obstacles:
            if kind == "cylinder":
                col = p.createCollisionShape(p.GEOM_CYLINDER, radius=r, height=0.3, physicsClientId=c)
                vis = p.createVisualShape(
                    p.GEOM_CYLINDER, radius=r, length=0.3, rgbaColor=CYLINDER_COLOR, physicsClientId=c
                )
            else:
                he = [r / math.sqrt(2), r / math.sqrt(2), 0.15]  # square whose bounding circle has radius r
                col = p.createCollisionShape(p.GEOM_BOX, halfExtents=he, physicsClientId=c)
                vis = p.createVisualShape(p.GEOM_BOX, halfExtents=he, rgbaColor=BOX_COLOR, physicsClientId=c)
            orn = p.getQuaternionFromEuler([0, 0, oyaw])
            self.obstacle_ids.append(p.createMultiBody(0, col, vis, [x, y, 0.15], orn, physicsClientId=c))
        servo = servo_params_from_targets(self.config, prm)
        asym = float(prm["wheel.strength_asymmetry"])
        servo.max_torque[self.task.left] *= 1.0 + asym
        servo.max_torque[self.task.right] *= 1.0 - asym
        radius_scale, track_scale = float(prm["wheel.radius_scale"]), float(prm["base.track_scale"])
        urdf = None
        if radius_scale != 1.0 or track_scale != 1.0:
            urdf = scale_wheels(
                urdf_path(self.config),
                self.workdir / "robot.urdf",
                [self.config.base.left_wheel, self.config.base.right_wheel],
                radius_scale,
                track_scale,
            )
        lift = self.config.base.wheel_radius * (radius_scale - 1.0)
        self.robot = PyBulletRobot(
            c,
            self.config,
            (start[0], start[1], 0.010 + max(lift, 0.0)),
            p.getQuaternionFromEuler([0, 0, yaw]),
            params=servo,
            urdf=urdf,
        )
        body = self.robot.body
        mass, _, inertia = p.getDynamicsInfo(body, -1, physicsClientId=c)[:3]
        m_scale = float(prm["base.mass_scale"])
        p.changeDynamics(
            body,
            -1,
            mass=mass * m_scale,
            localInertiaDiagonal=[i * m_scale * float(prm["base.inertia_scale"]) for i in inertia],
            physicsClientId=c,
        )
        for j in self.robot.indices:
            p.changeDynamics(
                body,
                j,
                lateralFriction=prm["wheel.lateral_friction"],
                spinningFriction=prm["wheel.spinning_friction"],
                rollingFriction=prm["wheel.rolling_friction"],
                physicsClientId=c,
            )
        self._apply_appearance("floor", [(self.floor_id, -1, FLOOR_COLOR)])
        self._apply_appearance("walls", [(w, -1, WALL_COLOR) for w in self.wall_ids])
        self._apply_appearance(
            "obstacles",
            [
                (b, -1, CYLINDER_COLOR if o[3] == "cylinder" else BOX_COLOR)
                for b, o in zip(self.obstacle_ids, obstacles, strict=True)
            ],
        )
        self._apply_appearance(
            "robot", [(body, s[1], list(s[7])) for s in p.getVisualShapeData(body, physicsClientId=c)]
        )
        self.robot.reset_joints(np.zeros(len(self.config.joint_names)))
        self.robot.step(self.substeps)  # settle on the floor
        self.collided = False
        self._push = None

    def _sample_layout(self, rng: np.random.Generator):
        """Start (x, y), yaw, goals [(x, y)] and obstacles [(x, y, radius, kind, yaw)] with a free path from the
        start through the goals in order: one goal 1.0-2.5 m away, or the given ones (``self.given_goals``, m in
        the start frame) with a start pose that keeps them all in the room."""
        margin = 0.4
        for _ in range(200):
            start = rng.uniform(-ROOM_HALF + margin, ROOM_HALF - margin, size=2)
            yaw = float(rng.uniform(-math.pi, math.pi))
            if self.given_goals is None:
                dist, ang = rng.uniform(1.0, 2.5), rng.uniform(-math.pi, math.pi)
                goals = [start + dist * np.array([math.cos(ang), math.sin(ang)])]
            else:
                c, s = math.cos(yaw), math.sin(yaw)
                goals = [start + np.array([c * g[0] - s * g[1], s * g[0] + c * g[1]]) for g in self.given_goals]
            if any(np.any(np.abs(g) > ROOM_HALF - margin) for g in goals):
                continue
            ends = [start, *goals]
            obstacles = []
            for _ in range(int(rng.integers(3, 7))):
                for _ in range(50):
                    r = float(rng.uniform(0.05, 0.15))
                    xy = rng.uniform(-ROOM_HALF + r, ROOM_HALF - r, size=2)
                    clear_of_ends = min(np.linalg.norm(xy - e) for e in ends) > r + 0.35
                    clear_of_others = all(np.hypot(xy[0] - o[0], xy[1] - o[1]) > r + o[2] + 0.1 for o in obstacles)
                    if clear_of_ends and clear_of_others:
                        kind = "cylinder" if rng.uniform() < 0.5 else "box"
                        obstacles.append((float(xy[0]), float(xy[1]), r, kind, float(rng.uniform(0, math.pi))))
                        break
            grid = OccupancyGrid(ROOM_HALF, [o[:3] for o in obstacles], ROBOT_RADIUS + 0.03)
            if all(grid.connected(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True)):
                return start, yaw, goals, obstacles
        if self.given_goals is not None:
            raise ValueError(
                f"goals {[list(map(float, g)) for g in self.given_goals]} (m, start frame) do not fit in the "
                f"{2 * ROOM_HALF:g} x {2 * ROOM_HALF:g} m room with a start pose: every goal must lie within "
                f"{2 * (ROOM_HALF - margin):.1f} m of the others and of the start along both axes of some heading"
            )
        raise RuntimeError("could not sample a navigable layout in 200 tries")

    def set_goal(self, index: int) -> None:
        """Make goal ``index`` of the episode's route the one to reach (and judged)."""
        self.goal_world = self.goals_world[index]
        self._last_distance = float(np.hypot(*(self.goal_world - self.robot_pose()[:2])))

    # -- state ----------------------------------------------------------------------------------------------
    def robot_pose(self) -> np.ndarray:
        """True (x, y, yaw) of base_link in the world."""
        pos, orn = self.robot.link_pose(self.robot.base_link)
        return np.array([pos[0], pos[1], p.getEulerFromQuaternion(orn)[2]])

    def lidar_scan(self, pose: np.ndarray) -> np.ndarray:
        """The scan (:data:`robot.lidar.READINGS` ranges, m, 0 = no return) the base's sensor sees at ``pose``
        before its measurement noise: rays from the base's origin at the sensor's height (starting just outside
        the robot's footprint), binned by degree as the sensor at its mount sees them."""
        c, s = math.cos(pose[2]), math.sin(pose[2])
        dirs = self._beam_dirs @ np.array([[c, s], [-s, c]])
        start = ROBOT_RADIUS + 0.01
        starts, ends = self._ray_starts, self._ray_ends
        starts[:, :2] = pose[:2] + dirs * start
        ends[:, :2] = pose[:2] + dirs * RAY_LENGTH
        hits = p.rayTestBatch(starts.tolist(), ends.tolist(), physicsClientId=self.client)
        frac = np.array([h[2] for h in hits])
        dist = np.where(frac < 1.0, start + frac * (RAY_LENGTH - start), np.inf)
        return sensor_scan(self.ray_bearings, dist, *self.lidar_mount)

    def _scan(self, pose: np.ndarray) -> np.ndarray:
        """The policy's beams as the sensor would give them now (with its noise and dropouts)."""
        measured = measurement_noise(self.lidar_scan(pose), self.np_random)
        return reduce_scan(measured, *self.lidar_mount)

    def _privileged(self) -> tuple[np.ndarray, dict[str, Any]]:
        pose = self.robot_pose()
        d = self.goal_world - pose[:2]
        c, s = math.cos(pose[2]), math.sin(pose[2])
        goal_rel = goal_in_frame(self.goal_world, pose)
        lin, ang = p.getBaseVelocity(self.robot.body, physicsClientId=self.client)
        v = c * lin[0] + s * lin[1]
        scan = self._scan(pose)
        vec = np.concatenate([goal_rel, [v, ang[2]], scan])
        state = {
            "robot_pose": pose,
            "goal": self.goal_world.copy(),
            "goal_distance": float(np.hypot(*d)),
            "obstacles": [tuple(o) for o in self.obstacles],
            "room_half": ROOM_HALF,
            "robot_radius": ROBOT_RADIUS,
            "scan": scan,
            "odometry_pose": self.task.pose.copy(),
            "collided": self.collided,
            "vector": vec.astype(np.float32),  # the state-mode "privileged" observation, in every obs mode
        }
        return vec, state

    def apply_push(self, force: np.ndarray) -> None:
        """Horizontal force (N, world frame) on the base for one physics tick (forces clear after each tick)."""
        pos, _ = p.getBasePositionAndOrientation(self.robot.body, physicsClientId=self.client)
        p.applyExternalForce(
            self.robot.body,
            -1,
            [float(force[0]), float(force[1]), 0.0],
            pos,
            p.WORLD_FRAME,
            physicsClientId=self.client,
        )

    def _collision(self) -> bool:
        contacts = p.getContactPoints(bodyA=self.robot.body, physicsClientId=self.client)
        return any(cp[2] != self.floor_id for cp in contacts)

    def privileged_state(self) -> np.ndarray:
        """The privileged vector now (float32), as a state policy's ``privileged`` observation holds it."""
        return self._privileged()[0].astype(np.float32)

    def goal_now(self) -> np.ndarray:
        """The goal (x forward, y left; m) relative to the robot's true pose now."""
        return goal_in_frame(self.goal_world, self.robot_pose())

    def _observe(self, joints: JointState) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        priv_vec, priv = self._privileged()
        return self._assemble(joints, self.task.proprio(joints), priv_vec, scan=priv["scan"]), priv

    def outcome(self, priv: dict[str, Any] | None = None) -> tuple[bool, bool]:
        """(success, failure) of the world as it is now (``priv``: this step's privileged state, else read):
        success is the base within 0.15 m of the goal without touching anything; failure, a collision. Also used
        to judge a deployment on a simulated reality."""
        if priv is None:  # a reality's judgement each control cycle: the distance only, no scan cast
            self.collided = self.collided or self._collision()
            priv = {"goal_distance": float(np.hypot(*self.goal_now()))}
        return bool(priv["goal_distance"] < GOAL_TOLERANCE and not self.collided), bool(self.collided)

    # -- gym API --------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Options beside the common ones: ``goals``, a route of goals (m, the start frame) to lay the room out
        for (the episode then starts with the first; :meth:`set_goal` moves on)."""
        options = dict(options or {})
        goals = options.pop("goals", None)
        self.given_goals = None if goals is None else [np.asarray(g, dtype=float).reshape(2) for g in goals]
        self._reset_rng(seed, options)
        self._build_scene()
        joints = self._read_joints()
        x, y, yaw = self.start_pose
        d = self.goal_world - [x, y]
        c, s = math.cos(yaw), math.sin(yaw)
        self.task.reset(joints, np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]]))
        obs, priv = self._observe(joints)
        self._last_distance = priv["goal_distance"]
        return obs, self._info(priv, success=False)

    def step(self, action: np.ndarray):
        if self.robot is None:
            raise RuntimeError("call reset() before step()")
        changed = self._resample_per_step_terms() if self.steps > 0 else set()
        push = np.asarray(self.params["base.push"], dtype=float) if "base.push" in changed else None
        self.robot.command(self.task.action_to_targets(action))
        self._advance(before_tick=None if push is None else lambda: self.apply_push(push))
        self.steps += 1
        joints = self._read_joints()
        self.task.update(joints)
        self.collided = self._collision()
        obs, priv = self._observe(joints)
        dist = priv["goal_distance"]
        success, _ = self.outcome(priv)
        reward = 10.0 * (self._last_distance - dist) - 0.01 - 5.0 * self.collided + 10.0 * success
        self._last_distance = dist
        terminated = bool(success or self.collided)
        truncated = self.steps >= self.max_episode_steps and not terminated
        return obs, float(reward), terminated, truncated, self._info(priv, success)


class NavigateExpert:
    """Plan a shortest path on the occupancy grid of the known room, then follow it with pure pursuit.

    Reads ``info["privileged"]`` of ``s2r/Navigate-v0`` (true pose, goal, obstacles). Stateful: the path is
    planned on the first call after :meth:`reset`.
    """

    lookahead = 0.25  # m
    clearance = 0.05  # m added to the robot radius when planning

    def __init__(self, max_linear: float = 0.20, max_angular: float = 2.5) -> None:
        self.max_linear, self.max_angular = max_linear, max_angular
        self.reset()

    def reset(self) -> None:
        self.path: np.ndarray | None = None
        self.progress = 0

    def act(self, obs: dict, info: dict) -> np.ndarray:
        priv = info["privileged"]
        pose = np.asarray(priv["robot_pose"], dtype=float)
        goal = np.asarray(priv["goal"], dtype=float)
        if self.path is None:
            obstacles = [o[:3] for o in priv["obstacles"]]
            grid = OccupancyGrid(priv["room_half"], obstacles, priv["robot_radius"] + self.clearance)
            self.path = grid.shortest_path(pose[:2], goal)
            if self.path is None:  # start inside the inflated margin: plan with the bare radius
                grid = OccupancyGrid(priv["room_half"], obstacles, priv["robot_radius"])
                self.path = grid.shortest_path(pose[:2], goal)
            if self.path is None:
                self.path = np.array([pose[:2], goal])
        # Advance along the path: the first point at least `lookahead` away, after the closest one.
        d = np.linalg.norm(self.path - pose[:2], axis=1)
        self.progress = max(self.progress, int(np.argmin(d[self.progress :])) + self.progress)
        ahead = np.nonzero(d[self.progress :] >= self.lookahead)[0]
        target = self.path[self.progress + ahead[0]] if len(ahead) else goal
        dx, dy = target - pose[:2]
        heading_error = (np.arctan2(dy, dx) - pose[2] + np.pi) % (2 * np.pi) - np.pi
        w = np.clip(3.0 * heading_error, -self.max_angular, self.max_angular)
        v = self.max_linear * max(0.0, np.cos(heading_error)) ** 4
        v = min(v, 1.5 * np.linalg.norm(goal - pose[:2]) + 0.02)
        return np.array([v / self.max_linear, w / self.max_angular], dtype=np.float32)

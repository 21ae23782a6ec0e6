"""A simulated reality for mock robots: one PyBullet task world, in a domain of your choosing, that the real driver
code meets through the servo emulator (motors) and librealsense's software device (camera).

The world is the task env's own (robot, table and object, or room and obstacles), built with its domain pinned
from a domain file or dict (any parameter name the sim accepts: the env's randomization at strength 0 plus these
pins), so a deployment on a mock robot is a sim-to-"real" transfer experiment through the whole hardware layer. The
servo emulator steps its physics in real time as packets arrive (:class:`~mock.pybullet_plant.
PyBulletPlant` on the env's robot); the simulated camera renders it. A lock serializes the two threads.

The reality also knows what a real robot cannot: the privileged state (object pose, goal, scan), which a state
policy needs and an evaluation uses, and the episode's outcome, judged by the task env's own rules.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from mock.base_push import PushSchedule
from mock.pybullet_plant import PyBulletPlant
from mock.sensor_model import ServoReadingNoise
from real.dynamixel.emulator import EmulatedServo
from sim.randomization.config import load_domain, load_randomization

#: Terms that describe the host: on a mock robot the real control loop's and camera pipeline's own timing stands in.
HOST_TARGETS = ("control.period_jitter", "camera.frame_age")


class RealityError(ValueError):
    """A reality the mock robot cannot stand for; the message names the terms."""


def check_reality_domain(task: str, domain: str | Path | dict[str, Any] | None) -> list[str]:
    """Refuse (:class:`RealityError`, naming them) names that are not terms of ``task``'s randomization; returns the
    host terms accepted without being applied (the real loop's timing stands in), for the summary's note. Every
    other term is applied on the mock path: the world's by the task env that builds the reality, the sensors' by
    :mod:`mock.sensor_model` (camera frames and servo readings) and pushes by :mod:`mock.base_push`."""
    pins = load_domain(domain) if domain is not None else {}
    targets = {t.name: t.target for t in load_randomization("default", task).terms}
    unknown = sorted(set(pins) - set(targets))
    if unknown:
        raise RealityError(f"reality {domain}: {', '.join(unknown)}: not terms of the {task} randomization")
    return [name for name in pins if targets[name].startswith(HOST_TARGETS)]


def reset_options(domain: dict[str, Any], goals: list[list[float]] | None) -> dict[str, Any] | None:
    """The task env's reset options of a reality: its pinned domain, and a navigation route's goals (m, start
    frame) the room is laid out for."""
    options: dict[str, Any] = {}
    if domain:
        options["domain"] = domain
    if goals is not None:
        options["goals"] = goals
    return options or None


def task_world(task: str, randomization: str, robot: str | None = None) -> Any:
    """The task env (state observations) whose world a reality is: its scene sampler, params and rules, with the
    simulated ``robot`` (a hardware config name; None: the task env's own default robot)."""
    import gymnasium as gym

    from sim import TASK_IDS  # registers the envs; loaded only for a mock robot

    if task not in TASK_IDS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_IDS)}")
    robot_kw = {} if robot is None else {"robot": robot}
    return gym.make(TASK_IDS[task], obs_mode="state", randomization=randomization, **robot_kw)


class Reality:
    """The world of ``task`` with ``domain`` pinned (``randomization``: what is not pinned, default "none")."""

    def __init__(
        self,
        task: str,
        domain: str | Path | dict[str, Any] | None = None,
        randomization: str = "none",
        seed: int = 0,
        goals: list[list[float]] | None = None,
        robot: str | None = None,
    ) -> None:
        """``robot``: the simulated robot (a hardware config name; None: the task's default)."""
        self.task, self.robot = task, robot
        self.domain = load_domain(domain) if domain is not None else {}
        self.goals = goals
        self.env = task_world(task, randomization, robot)
        self.core = self.env.unwrapped
        self.lock = threading.RLock()
        self.closed = False
        self.episode_seed = seed
        self.info: dict[str, Any] = {}
        self._reset_world(seed)
        self.plant = PyBulletPlant(self.core.config, self.core.robot)
        self.core.robot.set_torque(np.zeros(len(self.core.config.motors)))  # servos power up with torque off

    def _reset_world(self, seed: int) -> None:
        """The episode's scene, as the simulation builds it for ``seed``; an arm then sits at its rest pose (as a
        real arm is parked between episodes, and powered off), away from the scene: the robot drives it to the
        task's start pose after torque on. Teleported at the start pose with torque off, it fell onto the scene."""
        _, self.info = self.env.reset(seed=seed, options=reset_options(self.domain, self.goals))
        arm = self.core.config.arm
        if arm is not None:
            self.core.robot.reset_joints(np.array([arm.rest[j] for j in self.core.config.joint_names]))
        self.episode_seed = seed
        if self.task == "grasp":  # where the scene put the object (restore_scene)
            import pybullet as p

            self._object_pose = p.getBasePositionAndOrientation(self.core.object_id, physicsClientId=self.core.client)
        config = self.core.config
        self.encoder = ServoReadingNoise(self.core.params, config.motors, seed)
        self.pushes = PushSchedule.of_reality(self.task, self.core.params, config.control_period)
        self.episode_time_s = 0.0  # physics time since the episode's scene was built

    def new_episode(self, seed: int) -> dict[str, Any]:
        """Rebuild the scene for another episode (new object pose or goal; the domain stays); the robot is placed
        at its rest pose with torque off, as after a power cycle. Returns the env's reset info."""
        with self.lock:
            self._reset_world(seed)
            self.plant.attach(self.core.robot)
            self.core.robot.set_torque(np.zeros(len(self.core.config.motors)))
            return self.info

    def restore_scene(self) -> None:
        """Put a grasp object back where the episode's scene placed it, at rest: the arm's drive from its rest pose
        to the task's start pose may have pushed it, and the simulation starts with the arm there and the object
        untouched (as an operator sets the object down once the arm is in place). A base's scene has nothing to
        put back."""
        if self.task != "grasp":
            return
        import pybullet as p

        with self.lock:
            c, body = self.core.client, self.core.object_id
            p.resetBasePositionAndOrientation(body, *self._object_pose, physicsClientId=c)
            p.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=c)

    # -- the servo emulator's plant ------------------------------------------------------------------------------
    def step(self, dt: float, servos: dict[int, EmulatedServo]) -> None:
        with self.lock:
            if self.closed:  # an emulator thread still serving while its mock robot closes
                return
            self.plant.step(dt, servos, before_tick=self._tick if self.pushes.active else None)
            self.encoder.perturb([servos[m.id] for m in self.core.config.motors])

    def _tick(self) -> None:
        """Before each physics tick: the base's push, when one is due."""
        force = self.pushes.force_at(self.episode_time_s)
        self.episode_time_s += 1.0 / self.core.config.sim.physics_hz
        if force is not None:
            self.core.apply_push(force)

    # -- what only a simulation knows ------------------------------------------------------------------------------
    def privileged(self) -> np.ndarray:
        """The task's privileged state vector now (what a state policy takes beside proprioception)."""
        with self.lock:
            return self.core.privileged_state()

    def set_goal(self, index: int) -> None:
        """Judge arrival at goal ``index`` of the given route from now on."""
        with self.lock:
            self.core.set_goal(index)

    def sensor_scan(self) -> np.ndarray:
        """The base's laser scan from its true pose now, before the sensor's noise (:mod:`robot.lidar`)."""
        with self.lock:
            return self.core.lidar_scan(self.core.robot_pose())

    def goal(self) -> np.ndarray | None:
        """A goal-conditioned task's goal relative to the robot's true pose now (None for a task without one): what
        a real robot's operator would give as the episode's goal in its start frame."""
        with self.lock:
            return self.core.goal_now()

    def outcome(self) -> tuple[bool, bool]:
        """(success, failure) of the world now, by the task env's rules."""
        with self.lock:
            return self.core.outcome()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.env.close()


# -- rendering in a process of its own --------------------------------------------------------------------------------


def snapshot(reality: Reality) -> dict[str, Any]:
    """Where everything in the reality is now: every body's base pose and joint positions, and the camera pose."""
    import pybullet as p

    with reality.lock:
        c = reality.core.client
        bodies = []
        for i in range(p.getNumBodies(physicsClientId=c)):
            uid = p.getBodyUniqueId(i, physicsClientId=c)
            pos, orn = p.getBasePositionAndOrientation(uid, physicsClientId=c)
            n = p.getNumJoints(uid, physicsClientId=c)
            q = [s[0] for s in p.getJointStates(uid, range(n), physicsClientId=c)] if n else []
            bodies.append((uid, pos, orn, q))
        position, rotation = reality.core.camera_pose()
        return {"bodies": bodies, "camera": (np.asarray(position), np.asarray(rotation))}


def _render_server(  # in the child
    task: str, domain: dict[str, Any], seed: int, goals: Any, robot: str | None, conn: Any
) -> None:
    import pybullet as p

    from sim.camera_model import render

    replica = Reality(task, domain or None, seed=seed, goals=goals, robot=robot)
    core, c = replica.core, replica.core.client
    while True:
        message = conn.recv()
        if message[0] == "stop":
            break
        if message[0] == "episode":
            replica.new_episode(message[1])
            conn.send(("ok",))
            continue
        _, snap, intrinsics, offset, depth_range = message
        if len(snap["bodies"]) != p.getNumBodies(physicsClientId=c):
            conn.send(None)  # a snapshot of another scene than this replica's: no frame rather than a wrong one
            continue
        for uid, pos, orn, q in snap["bodies"]:
            p.resetBasePositionAndOrientation(uid, pos, orn, physicsClientId=c)
            for j, value in enumerate(q[: p.getNumJoints(uid, physicsClientId=c)]):
                p.resetJointState(uid, j, value, physicsClientId=c)
        position, rotation = snap["camera"]
        frame = render(
            c, intrinsics, position + rotation @ offset, rotation, depth_range, shadow=core._shadow, light=core._light
        )
        conn.send((frame.color, frame.depth))
    replica.close()


class RenderProcess:
    """A replica of a reality (same task, domain and episode seeds, hence the same bodies and looks) in its own
    process, rendering camera frames from snapshots of the reality: the process that serves the servo emulator only
    takes snapshots (well under a millisecond), never holds its interpreter for a 640x480 frame."""

    def __init__(self, reality: Reality) -> None:
        import multiprocessing as mp

        self.reality = reality
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._lock = threading.Lock()
        self.process = ctx.Process(
            target=_render_server,
            args=(reality.task, reality.domain, reality.episode_seed, reality.goals, reality.robot, child),
            daemon=True,
        )
        self.process.start()

    def new_episode(self, seed: int) -> None:
        """Rebuild the reality's scene and the replica's together: no snapshot of one scene reaches the other."""
        with self._lock:
            self.reality.new_episode(seed)
            self._conn.send(("episode", seed))
            self._conn.recv()

    def renderer(self, depth_range: tuple[float, float]):
        """A :data:`~mock.simulated_realsense.Renderer` drawing the reality as it is at each call."""
        from sim.camera_model import RenderedFrame

        def _render(intrinsics: Any, offset: np.ndarray) -> RenderedFrame:
            snap = snapshot(self.reality)
            with self._lock:
                self._conn.send(("render", snap, intrinsics, np.asarray(offset), depth_range))
                reply = self._conn.recv()
            if reply is None:  # the scene changed between the snapshot and the render: draw the next one
                snap = snapshot(self.reality)
                with self._lock:
                    self._conn.send(("render", snap, intrinsics, np.asarray(offset), depth_range))
                    reply = self._conn.recv()
            if reply is None:
                raise RuntimeError("the render replica does not match the reality's scene")
            return RenderedFrame(color=reply[0], depth=reply[1])

        return _render

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()

"""The hardware of a mock robot (a config with a ``mock`` section): its reality (:mod:`mock.reality`), the servo
emulator serving the reality's robot on the config's pseudo-terminal, simulated RealSense cameras rendering it
through librealsense's software device, and laser distance sensors scanning it on pseudo-terminals of their own
(:mod:`mock.lds_emulator`). What ``s2r deploy`` drives instead of a real robot; the driver code
above it is the real one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mock.lds_emulator import LdsEmulator
from mock.plants import require_dynamixel
from mock.reality import Reality, RenderProcess, check_reality_domain
from mock.sensor_model import CameraSensor, PolicyView
from mock.servo_emulators import emulator_for_config
from mock.simulated_realsense import PYBULLET_RENDER_DIVISOR, Renderer, SimulatedRealSense, coarse_renderer
from real.cameras.realsense import RealSenseCamera, SoftwareSource
from real.lidar.reader import LdsReader
from real.serial_emulator import EmulatorThread
from robot.description import HardwareConfig
from robot.intrinsics import Intrinsics
from sim.camera_model import RenderedFrame


def _pybullet_reality(config: HardwareConfig, domain: Any, seed: int, goals: Any) -> Any:
    return Reality(config.mock.task, domain, seed=seed, goals=goals, robot=config.mock.robot)


def _mujoco_reality(config: HardwareConfig, domain: Any, seed: int, goals: Any) -> Any:
    require_dynamixel(config)
    from mock.mujoco_reality import MujocoReality

    return MujocoReality(config.mock.task, domain, seed=seed, goals=goals)


def _pybullet_renderer(hardware: MockHardware, camera: str, depth_range: tuple[float, float]) -> Any:
    if hardware.render_process is None:  # PyBullet renders in a process of its own, a replica of the reality
        hardware.render_process = RenderProcess(hardware.reality)
    return coarse_renderer(hardware.render_process.renderer(depth_range), PYBULLET_RENDER_DIVISOR)


def _mujoco_renderer(hardware: MockHardware, camera: str, depth_range: tuple[float, float]) -> Any:
    return hardware.reality.renderer(camera, depth_range)  # renders outside the reality's lock


@dataclass(frozen=True)
class RealityEngine:
    """A physics engine a mock robot's reality can run on: ``build`` makes the reality (config, domain, seed,
    goals); ``renderer`` the color + depth renderer of a camera (by name, with its depth range)."""

    build: Callable[[HardwareConfig, Any, int, Any], Any]
    renderer: Callable[[MockHardware, str, tuple[float, float]], Any]


#: Engine name -> what it takes to run a reality on it: the simulator's own (PyBullet) or a second engine (MuJoCo).
REALITIES: dict[str, RealityEngine] = {
    "pybullet": RealityEngine(_pybullet_reality, _pybullet_renderer),
    "mujoco": RealityEngine(_mujoco_reality, _mujoco_renderer),
}
ENGINES = tuple(REALITIES)


def check_domain(task: str, domain: Any, engine: str) -> list[str]:
    """Refuse an unknown ``engine`` (ValueError) and a reality naming no term of ``task`` (:class:`mock.reality.
    RealityError`); returns the host terms accepted without being applied. Both engines apply every other term."""
    if engine not in REALITIES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return check_reality_domain(task, domain)


def _timer(after_s: float, action: Any) -> None:
    """Run ``action`` ``after_s`` seconds from now on a daemon thread (it never holds the process open)."""
    timer = threading.Timer(after_s, action)
    timer.daemon = True
    timer.start()


class MockHardware:
    """A mock robot's reality, its servo emulator serving on the config's port and its simulated cameras."""

    def __init__(
        self,
        config: HardwareConfig,
        reality_domain: str | None,
        seed: int,
        engine: str = "pybullet",
        goals: list[list[float]] | None = None,
    ) -> None:
        """``goals``: a navigation route (m, the start frame) the reality lays its rooms out for."""
        self.config = config
        self.engine = engine
        check_domain(config.mock.task, reality_domain, engine)  # refuses what the mock path cannot apply
        self.reality: Any = REALITIES[engine].build(config, reality_domain, seed, goals)
        self.render_process: RenderProcess | None = None
        self.devices: dict[str, Any] = {}
        self.seed = seed
        self.sensors: dict[str, CameraSensor] = {}  # each camera's errors this episode
        self._views: dict[str, PolicyView | None] = {}
        self.emulator = emulator_for_config(config, self.reality)
        self._server = EmulatorThread(self.emulator, config.bus.port)
        self.lidars: dict[str, LdsEmulator] = {}
        try:
            for s in config.lidars:
                self.lidars[s.name] = LdsEmulator(s, self.reality.sensor_scan, seed)
        except BaseException:
            self.close()
            raise

    def camera(
        self,
        name: str,
        image_size: tuple[int, int] | None = None,
        crop: tuple[int, int, int, int] | None = None,
    ) -> Any:
        """The RealSenseCamera of camera ``name``, fed by a software device rendering the reality with the camera
        errors its domain gives (:mod:`mock.sensor_model`). ``image_size`` (width, height) and ``crop`` (x, y,
        width, height, px): how the policy will reduce the frames, which sets the scale the image errors are drawn
        at so that the policy sees the simulation's strengths (no size: per stream pixel)."""
        cam_cfg = self.config.camera(name)
        view = None if image_size is None else PolicyView(tuple(image_size), None if crop is None else tuple(crop))
        self._views[name] = view
        self._new_sensor(name)
        renderer = self._sensor_renderer(name, REALITIES[self.engine].renderer(self, name, cam_cfg.depth_range))
        # depth rendered from the color camera: one 640x480 render per frame instead of two (one per imager)
        device = SimulatedRealSense(cam_cfg, renderer, depth_view="color")
        self.devices[name] = device
        return RealSenseCamera(cam_cfg, SoftwareSource(device), grab_timeout_s=1.0)

    def _new_sensor(self, name: str) -> None:
        """Camera ``name``'s errors for the reality's current episode, seeded by the episode and the camera."""
        index = [c.name for c in self.config.cameras].index(name)
        seed = int(getattr(self.reality, "episode_seed", self.seed))
        self.sensors[name] = CameraSensor(self.reality.core.params, seed * 7919 + index, self._views.get(name))

    def _sensor_renderer(self, name: str, renderer: Renderer) -> Renderer:
        """``renderer`` seen through camera ``name``'s sensor: drawn with the lens's true intrinsics (the stream
        declares the configured ones), then the episode's image and depth errors."""

        def _render(intrinsics: Intrinsics, offset: np.ndarray) -> RenderedFrame:
            sensor = self.sensors[name]
            if not sensor.changes_frames:
                return renderer(intrinsics, offset)
            true = sensor.intrinsics(intrinsics)
            return sensor.apply(renderer(true, offset), focal_px=true.fx)

        return _render

    def lidar(self, name: str) -> LdsReader:
        """The driver of laser scanner ``name``, on its emulator's pseudo-terminal (not yet connected)."""
        emulator = self.lidars[name]
        lidar = emulator.lidar
        return LdsReader(name, lidar.port, lidar.model, lidar.baudrate)

    def stall_lidar(self, name: str, after_s: float, for_s: float) -> None:
        """Silence laser scanner ``name`` ``after_s`` seconds from now, for ``for_s`` seconds (a fault injection)."""
        emulator = self.lidars[name]
        _timer(after_s, emulator.pause)
        _timer(after_s + for_s, emulator.resume)

    def stall_camera(self, name: str, after_s: float, for_s: float) -> None:
        """Silence camera ``name`` ``after_s`` seconds from now, for ``for_s`` seconds (a fault injection)."""
        device = self.devices[name]
        _timer(after_s, device.pause)
        _timer(after_s + for_s, device.resume)

    def set_bus_faults(self, faults: dict[str, float], seed: int) -> None:
        """Set the emulator's fault knobs (:class:`real.dynamixel.emulator.Faults` fields, e.g.
        ``drop_probability``) on every servo, each servo's fault draws seeded from ``seed`` and its id."""
        for servo in self.emulator.servos.values():
            for name, value in faults.items():
                if not hasattr(servo.faults, name):
                    raise ValueError(f"bus_faults: no emulator fault named {name!r}")
                setattr(servo.faults, name, value)
            servo.faults.rng.seed(seed + servo.ident)

    # -- what only the reality knows -------------------------------------------------------------------------------
    def privileged(self) -> np.ndarray:
        """The task's privileged state vector now (what a state policy takes beside proprioception)."""
        return self.reality.privileged()

    def goal(self) -> np.ndarray | None:
        """A goal-conditioned task's goal relative to the robot now (None for a task without one)."""
        return self.reality.goal()

    def set_goal(self, index: int) -> None:
        """The reality judges arrival at goal ``index`` of the route from now on."""
        self.reality.set_goal(index)

    def outcome(self) -> tuple[bool, bool]:
        """(success, failure) of the episode now, judged by the reality."""
        return self.reality.outcome()

    def new_episode(self, seed: int) -> None:
        if self.render_process is not None:
            self.render_process.new_episode(seed)  # the reality and its render replica together
        else:
            self.reality.new_episode(seed)
        for name in self.sensors:
            self._new_sensor(name)

    def restore_scene(self) -> None:
        """The reality's grasp object back where the episode placed it (after the arm's drive to its start pose)."""
        self.reality.restore_scene()

    def close(self) -> None:
        for emulator in self.lidars.values():
            emulator.stop()
        self._server.stop()
        if self.render_process is not None:
            self.render_process.close()
        self.reality.close()

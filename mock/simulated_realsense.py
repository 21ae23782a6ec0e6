"""A simulated D435 built from librealsense's ``software_device``: rendered frames enter the real SDK.

:class:`SimulatedRealSense` declares a depth sensor (Z16, depth unit 1 mm, the D400 default) and a color sensor
(RGB8) with their intrinsics and the depth-to-color extrinsics, and pushes frames from a renderer at the
configured rate with frame numbers and host-time timestamps of when each image was taken.
:class:`~real.cameras.realsense.SoftwareSource` reads them through ``rs.syncer`` and
:class:`~real.cameras.realsense.RealSenseCamera` aligns and converts them with exactly the code it runs on a real
device. With ``record_to=PATH.db3`` librealsense's own recorder writes what the
device streams, which :class:`~real.cameras.realsense.RecordingSource` plays back.

Depth is rendered from the depth imager's viewpoint (``depth_view="imager"``: its own intrinsics, 15 mm from the
color camera) and ``rs.align`` reprojects it into the color image, as on the device; ``depth_view="color"`` renders
depth from the color camera instead (one render per frame, alignment is then exact).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from real.cameras.realsense import import_pyrealsense2
from robot.intrinsics import Intrinsics, camera_intrinsics, d435_depth_intrinsics
from sim.camera_model import RenderedFrame, render, rotation_from_rpy

if TYPE_CHECKING:
    from robot.description import Camera as CameraConfig

#: Depth origin (left imager) seen from the color camera, in the color optical frame (x right, y down, z forward):
#: about 15 mm, the typical depth-to-color translation of D435 factory calibrations.
DEPTH_TO_COLOR_M = (0.015, 0.0, 0.0)

#: D400 default depth unit (m per Z16 count).
D435_DEPTH_UNIT = 0.001

#: The PyBullet reality's camera draws at half the stream's resolution (320x240 for 640x480). TinyRenderer's cost
#: follows the pixel count: at full size the mock camera fell behind its 15 fps stream on 2 loaded cores (the grasp
#: student acted on frames 149 ms old at the median and failed CI's parity test; 68 ms now). benchmarks/
#: mujoco_reality.py, idle machine: grasp scene 18.4 -> 68.3 fps, navigation room 11.0 -> 42.3 fps. The policies see a
#: crop reduced to 64 px or less, which a 320x240 render still supersamples 3.5x. The MuJoCo reality draws full size.
PYBULLET_RENDER_DIVISOR = 2

#: A renderer: (intrinsics, sensor offset in the camera_link frame in m) -> color + metric depth.
Renderer = Callable[[Intrinsics, np.ndarray], RenderedFrame]


def pybullet_renderer(
    client: int,
    camera_pose: Callable[[], tuple[np.ndarray, np.ndarray]],
    depth_range: tuple[float, float] = (0.105, 10.0),
) -> Renderer:
    """A renderer for a PyBullet scene; ``camera_pose()`` returns the camera_link position (m) and rotation matrix
    in the world at the moment of the frame (a moving robot's camera follows it)."""

    def _render(intrinsics: Intrinsics, offset: np.ndarray) -> RenderedFrame:
        position, rotation = camera_pose()
        return render(client, intrinsics, position + rotation @ offset, rotation, depth_range=depth_range)

    return _render


def coarse_renderer(renderer: Renderer, divisor: int) -> Renderer:
    """``renderer`` drawing each frame at 1/``divisor`` of the stream's resolution (the same field of view), every
    rendered pixel then repeated ``divisor`` x ``divisor`` times: the stream keeps its size and intrinsics, a frame
    costs a CPU renderer about ``divisor``^2 times less and carries that much less detail. Repeating (not
    interpolating) invents no colour or depth: area-averaging the frame back down gives the coarse render's own
    averages."""
    if divisor < 1 or int(divisor) != divisor:
        raise ValueError(f"divisor must be a positive integer, got {divisor!r}")
    if divisor == 1:
        return renderer

    def _render(intrinsics: Intrinsics, offset: np.ndarray) -> RenderedFrame:
        w, h = intrinsics.width, intrinsics.height
        if w % divisor or h % divisor:
            raise ValueError(f"a {w}x{h} stream does not divide by {divisor}")
        frame = renderer(intrinsics.scaled(w // divisor, h // divisor), offset)
        color = frame.color.repeat(divisor, axis=0).repeat(divisor, axis=1)
        depth = frame.depth.repeat(divisor, axis=0).repeat(divisor, axis=1)
        return RenderedFrame(color=color, depth=depth)

    return _render


def static_pose(xyz: tuple[float, float, float], rpy: tuple[float, float, float]) -> Callable:
    """A camera_pose callable for a camera fixed in the world."""
    position, rotation = np.asarray(xyz, dtype=float), rotation_from_rpy(rpy)
    return lambda: (position, rotation)


def _optical_to_link(v: tuple[float, float, float]) -> np.ndarray:
    """A vector in the optical frame (x right, y down, z forward) in camera_link axes (x forward, y left, z up)."""
    x, y, z = v
    return np.array([z, -x, -y])


class SimulatedRealSense:
    """A software D435 streaming what ``renderer`` draws, at the config's color / depth profiles and fps.

    ``start(syncer)`` opens both sensors into the syncer and starts the push thread; ``stop()`` ends it. ``pause()``
    / ``resume()`` stop and restart the frames (a camera that goes silent). ``push_times`` maps recent frame numbers
    to the host ``time.monotonic_ns()`` at which they entered librealsense.
    """

    def __init__(
        self,
        config: CameraConfig,
        renderer: Renderer,
        *,
        serial: str = "SIM-D435",
        depth_view: Literal["imager", "color"] = "imager",
        depth_unit: float = D435_DEPTH_UNIT,
        record_to: str | Path | None = None,
    ) -> None:
        self.config = config
        self.renderer = renderer
        self.serial = serial
        self.depth_view = depth_view
        self.depth_unit = depth_unit
        self.record_to = Path(record_to) if record_to is not None else None
        c = config.color
        self.color_intrinsics = camera_intrinsics(c.width, c.height, config.intrinsics)
        self.depth_intrinsics: Intrinsics | None = None
        if config.depth is not None:
            d = config.depth
            same = depth_view == "color"
            self.depth_intrinsics = (
                camera_intrinsics(d.width, d.height, config.intrinsics)
                if same
                else d435_depth_intrinsics(d.width, d.height)
            )
        self.fps = c.fps
        self.frames_pushed = 0
        self.push_times: dict[int, int] = {}
        self._push_order: deque[int] = deque()
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._build()

    # -- librealsense objects ----------------------------------------------------------------------------------
    def _build(self) -> None:
        rs = import_pyrealsense2()
        self._rs = rs
        dev = rs.software_device()
        dev.register_info(rs.camera_info.name, "Intel RealSense D435 (simulated)")
        dev.register_info(rs.camera_info.serial_number, self.serial)
        dev.register_info(rs.camera_info.firmware_version, "simulated")
        color_sensor = dev.add_sensor("RGB Camera")
        self._color_profile = color_sensor.add_video_stream(
            self._video_stream(rs.stream.color, 1, rs.format.rgb8, 3, self.color_intrinsics), True
        ).as_video_stream_profile()
        self._sensors = [color_sensor]
        self._depth_profile = None
        if self.depth_intrinsics is not None:
            depth_sensor = dev.add_sensor("Stereo Module")
            self._depth_profile = depth_sensor.add_video_stream(
                self._video_stream(rs.stream.depth, 0, rs.format.z16, 2, self.depth_intrinsics), True
            ).as_video_stream_profile()
            depth_sensor.add_read_only_option(rs.option.depth_units, self.depth_unit)
            extrinsics = rs.extrinsics()
            extrinsics.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
            # p_color = p_depth + t, where t is minus the depth origin seen from the color camera
            offset = DEPTH_TO_COLOR_M if self.depth_view == "imager" else (0.0, 0.0, 0.0)
            extrinsics.translation = [-v for v in offset]
            self._depth_profile.register_extrinsics_to(self._color_profile, extrinsics)
            self._sensors.append(depth_sensor)
            self._depth_offset = _optical_to_link(offset)
            dev.create_matcher(rs.matchers.dlr_c)
        self._device = dev

    def _video_stream(self, stream: Any, uid: int, fmt: Any, bpp: int, intr: Intrinsics) -> Any:
        rs = self._rs
        i = rs.intrinsics()
        i.width, i.height, i.fx, i.fy, i.ppx, i.ppy = intr.width, intr.height, intr.fx, intr.fy, intr.cx, intr.cy
        i.model = rs.distortion.brown_conrady
        i.coeffs = [0.0] * 5
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = stream, 0, uid
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt, vs.intrinsics = intr.width, intr.height, self.fps, bpp, fmt, i
        return vs

    # -- streaming ---------------------------------------------------------------------------------------------
    def start(self, syncer: Any) -> tuple[Any, Any | None]:
        """Open the sensors into ``syncer`` and start pushing; returns (color profile, depth profile or None)."""
        if self._thread is not None:
            self.stop()
        target = self._rs.recorder(str(self.record_to), self._device) if self.record_to else self._device
        self._target = target
        self._open_sensors = list(target.query_sensors())
        for sensor in self._open_sensors:
            sensor.open(sensor.get_stream_profiles()[0])
            sensor.start(syncer)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"sim-realsense-{self.serial}", daemon=True)
        self._thread.start()
        return self._color_profile, self._depth_profile

    def stop(self) -> None:
        """Stop pushing and close the sensors (and the recording, which is then complete on disk)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10.0)
        self._thread = None
        for sensor in self._open_sensors:
            try:
                sensor.stop()
                sensor.close()
            except RuntimeError:
                pass
        self._open_sensors = []
        self._target = None  # releasing the recorder closes its file

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def _run(self) -> None:
        period = 1.0 / self.fps
        next_tick = time.monotonic()
        while not self._stop.is_set():
            if self._paused.is_set():
                self._stop.wait(period)
                next_tick = time.monotonic()
                continue
            taken_ms = time.time() * 1e3  # the scene's state is read at the start of the render
            self.push(self.render(), taken_ms)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_tick = time.monotonic()  # rendering is slower than the frame rate: run as fast as it can

    def render(self) -> tuple[np.ndarray, np.ndarray | None]:
        """One color image and (if the camera has depth) one metric depth image, each from its sensor's view."""
        zero = np.zeros(3)
        color_frame = self.renderer(self.color_intrinsics, zero)
        if self.depth_intrinsics is None:
            return color_frame.color, None
        if self.depth_view == "color" and self.depth_intrinsics == self.color_intrinsics:
            return color_frame.color, color_frame.depth
        return color_frame.color, self.renderer(self.depth_intrinsics, self._depth_offset).depth

    def push(self, images: tuple[np.ndarray, np.ndarray | None], taken_ms: float | None = None) -> int:
        """Push one color (+ metric depth) pair as the next frame; returns its frame number. ``taken_ms``: when the
        image was taken, host wall-clock ms (default: now); the frame carries it as a system-time timestamp, as a
        D400 with global time enabled stamps its frames in the host's time."""
        color, depth = images
        self.frames_pushed += 1
        number = self.frames_pushed
        stamp_ms = time.time() * 1e3 if taken_ms is None else float(taken_ms)
        self.push_times[number] = time.monotonic_ns()
        self._push_order.append(number)
        if len(self._push_order) > 1000:
            self.push_times.pop(self._push_order.popleft(), None)
        if depth is not None and self._depth_profile is not None:
            raw = np.rint(np.asarray(depth, dtype=np.float32) / np.float32(self.depth_unit))
            raw = np.clip(raw, 0, 65535).astype(np.uint16)
            self._sensors[1].on_video_frame(self._software_frame(raw, 2, stamp_ms, number, self._depth_profile))
        color = np.ascontiguousarray(color, dtype=np.uint8)
        self._sensors[0].on_video_frame(self._software_frame(color, 3, stamp_ms, number, self._color_profile))
        return number

    def _software_frame(self, pixels: np.ndarray, bpp: int, stamp_ms: float, number: int, profile: Any) -> Any:
        rs = self._rs
        frame = rs.software_video_frame()
        frame.pixels = pixels
        frame.stride = pixels.shape[1] * bpp
        frame.bpp = bpp
        frame.timestamp = stamp_ms
        frame.domain = rs.timestamp_domain.system_time
        frame.frame_number = number
        frame.profile = profile
        return frame

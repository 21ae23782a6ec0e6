"""Intel RealSense D400 capture through librealsense (pyrealsense2): live devices, recordings and simulated frames.

One class, :class:`RealSenseCamera`, reads framesets from a source and runs the same code on every frameset
whatever its origin: optional depth post-processing (decimation, spatial, temporal, hole filling, in the order
Intel's post-processing white paper gives), ``rs.align`` of depth to color, conversion of depth to metres with the
device's depth scale, and host / device timestamps. Three sources:

- :class:`LiveSource`: a USB device chosen by serial number (or the only one), started by ``rs.pipeline`` with the
  configured color and depth profiles; visual preset; recovery by hardware reset when frames stop.
- :class:`RecordingSource`: a ``.bag`` or ``.db3`` recording played with real time off, so no frame is dropped;
  the end, an empty recording and an unreadable (truncated, unindexed) file each end in a clear error.
- :class:`SoftwareSource`: frames that a software device (the mock layer's simulated RealSense) pushes
  through ``rs.software_device``.

pyrealsense2 is imported on first use: the rest of the package works without it (it needs libusb-1.0 on Linux).
"""

from __future__ import annotations

import ctypes
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from real.cameras.capture import ThreadedCamera
from real.cameras.frame import CameraError, EndOfStream, Frame
from robot.intrinsics import Intrinsics

if TYPE_CHECKING:
    from robot.description import Camera as CameraConfig

#: librealsense's distortion model names -> the names used in :class:`Intrinsics`.
_DISTORTION_NAMES = {
    "none": "none",
    "brown_conrady": "brown_conrady",
    "modified_brown_conrady": "modified_brown_conrady",
    "inverse_brown_conrady": "inverse_brown_conrady",
    "ftheta": "ftheta",
    "kannala_brandt4": "kannala_brandt4",
}

#: Seconds to wait for a device to come back after ``hardware_reset`` (it re-enumerates on USB in 2-5 s).
RESET_WAIT_S = 10.0


def import_pyrealsense2() -> Any:
    """The pyrealsense2 module, or a :class:`CameraError` saying how to install what is missing.

    pyrealsense2 links against libusb-1.0. The system library is the first choice; where the import fails for want
    of it, the copy the PyPI package ``libusb-package`` ships is loaded into the process's global symbol table
    and the import tried again, so that neither a user nor a worker process spawned later needs ``apt-get``."""
    try:
        import pyrealsense2 as rs
    except ImportError as exc:
        if not _load_packaged_libusb(exc):
            raise CameraError(
                f"pyrealsense2 could not be imported ({exc}). Install the camera extra: `pip install "
                f"'sim2real-pipeline[realsense]'` (pyrealsense2 and libusb-package; pyrealsense2 has wheels for "
                f"Linux x86_64 and Windows), or the system library libusb-1.0 (`sudo apt-get install libusb-1.0-0`)."
            ) from exc
        try:
            import pyrealsense2 as rs
        except ImportError as again:
            raise CameraError(
                f"pyrealsense2 could not be imported ({again}), even with libusb-package's libusb"
            ) from again
    return rs


def _load_packaged_libusb(exc: ImportError) -> bool:
    """Load libusb-package's libusb-1.0 with ``RTLD_GLOBAL`` if ``exc`` is pyrealsense2 missing libusb and that
    package has the library; True when it was loaded."""
    if "libusb" not in str(exc):
        return False
    try:
        import libusb_package
    except ImportError:
        return False
    path = libusb_package.get_library_path()
    if path is None:
        return False
    ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    return True


def list_devices() -> list[dict[str, str]]:
    """Connected RealSense devices: name, serial, firmware, USB type and product line (where reported)."""
    rs = import_pyrealsense2()
    fields = {
        "name": rs.camera_info.name,
        "serial": rs.camera_info.serial_number,
        "firmware": rs.camera_info.firmware_version,
        "usb": rs.camera_info.usb_type_descriptor,
        "product_line": rs.camera_info.product_line,
    }
    return [
        {key: (dev.get_info(info) if dev.supports(info) else "") for key, info in fields.items()}
        for dev in rs.context().query_devices()
    ]


def intrinsics_from_profile(profile: Any) -> Intrinsics:
    """:class:`Intrinsics` of a librealsense video stream profile."""
    i = profile.as_video_stream_profile().get_intrinsics()
    model = str(i.model).split(".")[-1]
    return Intrinsics(i.width, i.height, i.fx, i.fy, i.ppx, i.ppy, _DISTORTION_NAMES.get(model, model), tuple(i.coeffs))


class RealSenseSource(Protocol):
    """Where framesets come from. ``lossless``: deliver every frame (recordings); ``warmup``: discard the first
    frames after start (live and simulated devices, whose auto exposure settles)."""

    lossless: bool
    warmup: bool

    def start(self, rs: Any, config: CameraConfig) -> tuple[Any, Any | None, float | None]:
        """Start streaming; return (color profile, depth profile or None, depth scale in m or None)."""

    def wait(self, timeout_s: float) -> Any | None:
        """The next frameset, or None after ``timeout_s``; :class:`EndOfStream` when a recording ends."""

    def stop(self) -> None:
        """Stop streaming; must not raise."""

    def recover(self, rs: Any, config: CameraConfig) -> None:
        """Bring a source that stopped sending frames back (reset, restart)."""


def _find_profile(profiles: Any, stream: Any) -> Any | None:
    for prof in profiles:
        if prof.stream_type() == stream:
            return prof
    return None


#: Z16 values that are no reading: 0 (librealsense's invalid depth) and 65535, which real D435 recordings carry
#: for pixels without depth (it would read as 65.5 m).
NO_DEPTH_RAW = (0, 65535)


def depth_metres(raw: np.ndarray, scale: float) -> np.ndarray:
    """A Z16 depth image as float32 metres (``scale``: m per count), 0 where there is no reading."""
    depth = raw.astype(np.float32) * np.float32(scale)
    depth[raw == NO_DEPTH_RAW[1]] = 0.0
    return depth


def _depth_scale(device: Any) -> float:
    return float(device.first_depth_sensor().get_depth_scale())


class _PipelineSource:
    """What the live and the recorded sources share: an ``rs.pipeline`` to wait on and to stop."""

    def __init__(self) -> None:
        self._pipeline: Any = None

    def _next(self, timeout_s: float) -> Any | None:
        ok, frames = self._pipeline.try_wait_for_frames(int(timeout_s * 1000))
        return frames if ok else None

    def stop(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass
            self._pipeline = None


class LiveSource(_PipelineSource):
    """A RealSense on USB. ``serial`` None: the only device connected."""

    lossless = False
    warmup = True

    def __init__(self, serial: str | None = None) -> None:
        super().__init__()
        self.serial = serial
        self._device: Any = None

    def _select(self, rs: Any) -> str:
        found = list_devices()
        if not found:
            raise CameraError(
                "no RealSense device found: check the USB cable (a D435 needs a USB 3 port for 640x480@30 color "
                "+ depth) and that no other program holds the camera; `s2r cameras list` shows what is connected"
            )
        serials = [d["serial"] for d in found]
        if self.serial is None:
            if len(found) > 1:
                raise CameraError(f"{len(found)} RealSense devices connected ({serials}); set `serial` in the config")
            return serials[0]
        if self.serial not in serials:
            raise CameraError(f"RealSense {self.serial} not found; connected: {serials}")
        return self.serial

    def start(self, rs: Any, config: CameraConfig) -> tuple[Any, Any | None, float | None]:
        serial = self._select(rs)
        pipeline = rs.pipeline()
        cfg = rs.config()
        cfg.enable_device(serial)
        c = config.color
        cfg.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
        if config.depth is not None:
            d = config.depth
            cfg.enable_stream(rs.stream.depth, d.width, d.height, rs.format.z16, d.fps)
        if not cfg.can_resolve(rs.pipeline_wrapper(pipeline)):
            raise CameraError(
                f"RealSense {serial} does not support color {c.width}x{c.height}@{c.fps} RGB8"
                + (f" with depth {d.width}x{d.height}@{d.fps} Z16" if config.depth is not None else "")
                + f" on this connection (USB type {self._usb_type(rs, serial)}); USB 2 allows fewer modes"
            )
        profile = pipeline.start(cfg)
        self._pipeline, self._device = pipeline, profile.get_device()
        scale = None
        if config.depth is not None:
            scale = _depth_scale(self._device)
            if config.visual_preset is not None:
                sensor = self._device.first_depth_sensor()
                preset = getattr(rs.rs400_visual_preset, config.visual_preset)
                sensor.set_option(rs.option.visual_preset, float(int(preset)))
        streams = profile.get_streams()
        return _find_profile(streams, rs.stream.color), _find_profile(streams, rs.stream.depth), scale

    @staticmethod
    def _usb_type(rs: Any, serial: str) -> str:
        return next((d["usb"] for d in list_devices() if d["serial"] == serial), "?")

    def wait(self, timeout_s: float) -> Any | None:
        ok, frames = self._pipeline.try_wait_for_frames(int(timeout_s * 1000))
        return frames if ok else None

    def recover(self, rs: Any, config: CameraConfig) -> None:
        """Hardware-reset the device, wait for it to come back on USB, start again."""
        serial = self._device.get_info(rs.camera_info.serial_number) if self._device is not None else self.serial
        self.stop()
        if self._device is not None:
            self._device.hardware_reset()
        deadline = time.monotonic() + RESET_WAIT_S
        time.sleep(1.0)  # the device leaves the bus first
        while time.monotonic() < deadline and serial not in [d["serial"] for d in list_devices()]:
            time.sleep(0.2)
        self.start(rs, config)


class RecordingSource(_PipelineSource):
    """A ``.bag`` (librealsense up to 2.5x) or ``.db3`` (ROS 2 bag, written by newer librealsense) recording,
    played without real time so that every frame is delivered, once, in order."""

    lossless = True
    warmup = False

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._playback: Any = None
        self.frames = 0

    def start(self, rs: Any, config: CameraConfig | None) -> tuple[Any, Any | None, float | None]:
        if self.path.suffix not in (".bag", ".db3"):
            raise CameraError(f"recording {self.path}: expected a .bag or .db3 file")
        if not self.path.is_file():
            raise CameraError(f"recording {self.path} does not exist")
        if self.path.stat().st_size == 0:
            raise CameraError(f"recording {self.path} is empty (0 bytes): the recorder was stopped before writing")
        pipeline = rs.pipeline()
        cfg = rs.config()
        cfg.enable_device_from_file(str(self.path), repeat_playback=False)
        try:
            # resolve first and turn real time off before the pipeline starts the (cached) device: set afterwards,
            # the first frames are already played in real time and may be dropped
            resolved = cfg.resolve(rs.pipeline_wrapper(pipeline))
            resolved.get_device().as_playback().set_real_time(False)
            profile = pipeline.start(cfg)
        except RuntimeError as exc:
            if "No streams" in str(exc):
                raise CameraError(f"recording {self.path} holds no frames: nothing was recorded") from exc
            raise CameraError(
                f"recording {self.path} cannot be played: it is truncated, unindexed (the recorder did not close "
                f"it) or not a RealSense recording. librealsense: {exc}"
            ) from exc
        self._pipeline = pipeline
        self._playback = profile.get_device().as_playback()
        if self._playback.is_real_time():
            self.stop()
            raise CameraError(f"recording {self.path}: librealsense did not turn real-time playback off")
        self.frames = 0
        streams = profile.get_streams()
        color, depth = _find_profile(streams, rs.stream.color), _find_profile(streams, rs.stream.depth)
        if color is None:
            self.stop()
            raise CameraError(f"recording {self.path} has no color stream (streams: {[str(s) for s in streams]})")
        if color.format() not in (rs.format.rgb8, rs.format.bgr8):
            self.stop()
            raise CameraError(f"recording {self.path}: color format {color.format()} is not RGB8 or BGR8")
        self._rs = rs
        return color, depth, (_depth_scale(profile.get_device()) if depth is not None else None)

    def wait(self, timeout_s: float) -> Any | None:
        frames = self._next(timeout_s)
        if frames is not None:
            self.frames += 1
            return frames
        if self._playback.current_status() == self._rs.playback_status.stopped:
            if self.frames == 0:
                raise EndOfStream(f"recording {self.path} holds no frames", 0)
            raise EndOfStream(f"end of recording {self.path} after {self.frames} frames", self.frames)
        return None

    def recover(self, rs: Any, config: CameraConfig) -> None:
        raise CameraError(f"recording {self.path} stopped delivering frames before its end")


class SoftwareSource:
    """Framesets a simulated camera pushes through librealsense's software device (``device``: an object with
    the software device and its sensors, such as :class:`mock.simulated_realsense.SimulatedRealSense`)."""

    lossless = False
    warmup = True

    def __init__(self, device: Any) -> None:
        self.device = device
        self._syncer: Any = None

    def start(self, rs: Any, config: CameraConfig) -> tuple[Any, Any | None, float | None]:
        self._syncer = rs.syncer()
        color, depth = self.device.start(self._syncer)
        return color, depth, self.device.depth_unit

    def wait(self, timeout_s: float) -> Any | None:
        ok, frames = self._syncer.try_wait_for_frames(int(timeout_s * 1000))
        return frames if ok else None

    def stop(self) -> None:
        self.device.stop()

    def recover(self, rs: Any, config: CameraConfig) -> None:
        self.stop()
        self.start(rs, config)


def _make_filters(rs: Any, names: list[str]) -> list[Any]:
    """Depth post-processing blocks; spatial and temporal run in disparity space, as Intel recommends."""
    blocks: list[Any] = []
    disparity = any(n in ("spatial", "temporal") for n in names)
    for name in names:
        if name == "decimation":
            blocks.append(rs.decimation_filter())
    if disparity:
        blocks.append(rs.disparity_transform(True))
    for name in names:
        if name == "spatial":
            blocks.append(rs.spatial_filter())
        elif name == "temporal":
            blocks.append(rs.temporal_filter())
    if disparity:
        blocks.append(rs.disparity_transform(False))
    if "hole_filling" in names:
        blocks.append(rs.hole_filling_filter())
    return blocks


class RealSenseCamera(ThreadedCamera):
    """A D400 camera from its hardware-config entry; ``source`` defaults to the live device with the config's
    serial. Frames carry RGB color and metric depth aligned to color."""

    def __init__(
        self,
        config: CameraConfig,
        source: RealSenseSource | None = None,
        *,
        grab_timeout_s: float = 1.0,
        reconnect_after: int = 3,
    ) -> None:
        self.config = config
        self.source: RealSenseSource = source if source is not None else LiveSource(config.serial)
        super().__init__(
            config.name, lossless=self.source.lossless, grab_timeout_s=grab_timeout_s, reconnect_after=reconnect_after
        )
        self._rs: Any = None
        self._intrinsics: Intrinsics | None = None
        self._depth_intrinsics: Intrinsics | None = None
        self._scale: float | None = None
        self._align: Any = None
        self._filters: list[Any] = []
        self._bgr = False

    @classmethod
    def from_recording(cls, path: str | Path, config: CameraConfig | None = None, **kwargs: Any) -> RealSenseCamera:
        """Play a recording; without ``config`` the camera is named after the file and uses no filters."""
        if config is None:
            from robot.description import Camera as CameraConfig

            config = CameraConfig(
                name=Path(path).stem,
                model="D435",
                color={"width": 640, "height": 480, "fps": 30},
                mount={"xyz": [0, 0, 0], "rpy": [0, 0, 0]},
            )
        return cls(config, RecordingSource(path), **kwargs)

    @property
    def intrinsics(self) -> Intrinsics:
        if self._intrinsics is None:
            raise CameraError(f"camera {self.name!r}: intrinsics are known once connected")
        return self._intrinsics

    @property
    def depth_intrinsics(self) -> Intrinsics | None:
        """Intrinsics of the raw depth stream (before alignment), None without depth."""
        return self._depth_intrinsics

    @property
    def depth_scale(self) -> float | None:
        return self._scale

    def _open(self) -> None:
        rs = import_pyrealsense2()
        self._rs = rs
        color, depth, scale = self.source.start(rs, self.config)
        self._intrinsics = intrinsics_from_profile(color)
        self._depth_intrinsics = intrinsics_from_profile(depth) if depth is not None else None
        self._bgr = color.format() == rs.format.bgr8
        self._scale = scale
        self._align = rs.align(rs.stream.color) if depth is not None else None
        self._filters = _make_filters(rs, list(self.config.filters)) if depth is not None else []
        if self.source.warmup:
            for _ in range(self.config.warmup_frames):
                if self._next_frameset(self.grab_timeout_s) is None:
                    break

    def _next_frameset(self, timeout_s: float) -> Any | None:
        """The next frameset holding every stream, None after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            frames = self.source.wait(max(0.0, deadline - time.monotonic()))
            if frames is None:
                return None
            # the syncer may hand out a partial frameset (after a start, or when a frame was lost): skip it
            if frames.get_color_frame() and (self._align is None or frames.get_depth_frame()):
                return frames
            self.stats.incomplete += 1

    def _grab(self, timeout_s: float) -> Frame | None:
        frames = self._next_frameset(timeout_s)
        if frames is None:
            return None
        host_ns = time.monotonic_ns()
        depth = None
        if self._align is not None:
            for block in self._filters:
                frames = block.process(frames).as_frameset()
            frames = self._align.process(frames)
            depth = depth_metres(np.asanyarray(frames.get_depth_frame().get_data()), self._scale)
        color_frame = frames.get_color_frame()
        color = np.array(color_frame.get_data(), dtype=np.uint8, copy=True)
        if self._bgr:
            color = np.ascontiguousarray(color[:, :, ::-1])
        stamp_ms = float(frames.get_timestamp())
        captured = None
        domains = self._rs.timestamp_domain
        if frames.get_frame_timestamp_domain() in (domains.global_time, domains.system_time):
            # the stamp is in the host's wall-clock time: the latency from capture to arrival, on the monotonic clock
            wall_at_arrival_ns = time.time_ns() - (time.monotonic_ns() - host_ns)
            captured = host_ns - max(0, wall_at_arrival_ns - int(stamp_ms * 1e6))
        return Frame(color, depth, host_ns, stamp_ms, int(color_frame.get_frame_number()), captured)

    def _close(self) -> None:
        self.source.stop()

    def _recover(self) -> None:
        self.source.recover(self._rs, self.config)

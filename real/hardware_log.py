"""Hardware logs: one MCAP file per deployment, one channel per stream, every message stamped with the host clock.

Writing goes through the ``mcap`` library's writer (zstd-compressed chunks, CRCs on chunks and on the data
section). What a log holds, in the schemas Foxglove (and any MCAP viewer) shows without plugins:

- structured streams (joint states with joint names, commands, policy observations and actions, estimates, safety
  events, loop timing): JSON objects (``message_encoding="json"``), numpy arrays as lists, each channel with its
  own JSON schema (inferred from its first message, titled by the topic);
- color images: ``foxglove.CompressedImage`` (JPEG; RGB order once decoded by :func:`read_log`);
- depth images: ``foxglove.RawImage`` (``16UC1``, millimetres, 0 = no reading: lossless);
- camera intrinsics (``foxglove.CameraCalibration``) and the robot's frames (``foxglove.FrameTransforms``);
  these Foxglove schemas are the ``foxglove-sdk``'s own (protobuf), registered as they are.

Times: an MCAP record's ``log_time`` and ``publish_time`` are nanoseconds since the Unix epoch (as viewers expect);
the host's ``time.monotonic_ns()`` when the sample was taken (not when it was written) stays the reference: the
``clock`` metadata record holds ``unix_minus_monotonic_ns``, measured as the log opens, and :func:`read_log` and
:func:`log_info` report monotonic stamps (``stamp_ns``) with the Unix time beside them (``unix_ns``). Logs written
before (JSON with one shared schema, ``jpeg`` and ``png16_mm`` images, monotonic ``log_time``) still read.

Surviving a kill: the header and the deployment metadata reach the file as the log opens, and the chunk in progress
is ended and handed to the OS whenever ``flush_interval_s`` (0.5 s) of host time has passed since the last flush:
on the next write, or from a background thread while nothing is written. A SIGKILLed writer loses at most the
last ``flush_interval_s`` (plus a quarter of it when idle) of messages; a chunk also ends when it fills
(``chunk_size``). Nothing is fsynced: a power cut can lose what the OS had not yet written.

Reading, :func:`log_info` and the CSV and MP4 exports are :mod:`real.log_reader`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import cv2
import foxglove.messages as fm
import numpy as np
from mcap.writer import CompressionType, Writer

PROFILE = "s2r"
FLUSH_INTERVAL_S = 0.5  # host time between flushes of the chunk in progress: what a kill can lose
#: Observation entries that are images: logged on ``/policy/observation/<key>`` as lossless images, the rest as JSON.
IMAGE_KEYS = ("rgb", "depth")
CLOCK_RECORD = "clock"  # metadata record: {"unix_minus_monotonic_ns": ...}
COLOR_SCHEMA = "foxglove.CompressedImage"
RAW_IMAGE_SCHEMA = "foxglove.RawImage"
#: A decoded message's ``encoding`` for color and depth images: today's schema name, or an older log's encoding.
COLOR_ENCODINGS = (COLOR_SCHEMA, "jpeg")
DEPTH_ENCODINGS = (RAW_IMAGE_SCHEMA, "png16_mm")  # a RawImage may also hold a lossless RGB frame (rgb8)


def json_schema_of(value: Any) -> dict[str, Any]:
    """A JSON schema describing ``value`` (a message as written): objects by their properties, arrays by their
    first item, numbers that may also be null (a field a later message leaves empty)."""
    if isinstance(value, dict):
        return {"type": "object", "properties": {str(k): json_schema_of(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"type": "array", "items": json_schema_of(value[0]) if value else {}}
    if isinstance(value, bool):
        return {"type": ["boolean", "null"]}
    if isinstance(value, int | float):
        return {"type": ["number", "null"]}
    if isinstance(value, str):
        return {"type": ["string", "null"]}
    return {}


def foxglove_time(unix_ns: int) -> fm.Timestamp:
    return fm.Timestamp(sec=unix_ns // 1_000_000_000, nsec=unix_ns % 1_000_000_000)


class LogError(RuntimeError):
    """A log cannot be written or read; the message names the file."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class HardwareLog:
    """An MCAP log being written. ``metadata`` (robot, policy, command, ...) goes into an MCAP metadata record.

    ``flush_interval_s``: host seconds after which the chunk in progress is ended and flushed to the OS (what a
    killed writer loses); ``chunk_size``: bytes after which a chunk ends anyway. Safe to write from several
    threads."""

    def __init__(
        self,
        path: str | Path,
        metadata: dict[str, str] | None = None,
        chunk_size: int = 256 * 1024,
        jpeg_quality: int = 90,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        guard: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        """``guard``: a context every write and the close run in (deploy holds its stop signals there, so a
        signal never leaves a record half-written)."""
        self._guard = guard
        self.path = Path(path)
        if self.path.suffix != ".mcap":
            raise LogError(f"{self.path}: a hardware log is an .mcap file")
        if not flush_interval_s > 0:
            raise LogError(f"{self.path}: flush_interval_s must be positive, not {flush_interval_s}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._writer = Writer(
            self._file, chunk_size=chunk_size, compression=CompressionType.ZSTD, enable_data_crcs=True
        )
        self._writer.start(profile=PROFILE, library="sim2real-pipeline")
        if metadata:
            self._writer.add_metadata("deployment", {str(k): str(v) for k, v in metadata.items()})
        self.clock_offset_ns = time.time_ns() - time.monotonic_ns()  # Unix time = monotonic + this
        self._writer.add_metadata(CLOCK_RECORD, {"unix_minus_monotonic_ns": str(self.clock_offset_ns)})
        self._schemas: dict[str, int] = {}
        # ends the chunk in progress and flushes the stream (mcap >= 1.6): header and metadata are on disk from here
        self._writer.flush()
        self._channels: dict[str, int] = {}
        self._sequence: dict[str, int] = {}
        self.jpeg_quality = int(jpeg_quality)
        self.flush_interval_s = float(flush_interval_s)
        self.closed = False
        self._lock = threading.Lock()
        self._pending = False  # messages added since the last flush
        self._last_flush = time.monotonic()
        self._flush_error: OSError | None = None
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_idle, name=f"log flush {self.path.name}", daemon=True)
        self._flusher.start()

    def _flush_locked(self) -> None:
        self._writer.flush()  # ends the chunk in progress and flushes the stream (mcap >= 1.6)
        self._pending = False
        self._last_flush = time.monotonic()

    def _flush_idle(self) -> None:
        """Background: flush what waits while nothing is written (a write flushes when it is due itself)."""
        while not self._stop.wait(self.flush_interval_s / 4):
            with self._lock:
                if self.closed or not self._pending or time.monotonic() - self._last_flush < self.flush_interval_s:
                    continue
                try:
                    self._flush_locked()
                except OSError as e:  # disk full, ...: raised by the next write or close
                    self._flush_error = e
                    return

    def _check(self) -> None:
        if self.closed:
            raise LogError(f"{self.path}: the log is closed")
        if self._flush_error is not None:
            raise LogError(f"{self.path}: writing failed ({self._flush_error})") from self._flush_error

    def _channel(self, topic: str, encoding: str, schema: tuple[str, str, bytes]) -> int:
        """The channel of ``topic`` (registered with its schema ``(name, encoding, data)`` on first use)."""
        if topic not in self._channels:
            name = schema[0]
            if name not in self._schemas:
                self._schemas[name] = self._writer.register_schema(*schema)
            self._channels[topic] = self._writer.register_channel(topic, encoding, self._schemas[name])
            self._sequence[topic] = 0
        return self._channels[topic]

    def _add(
        self, topic: str, encoding: str, schema: Callable[[], tuple[str, str, bytes]], data: bytes, stamp: int
    ) -> None:
        """``stamp``: host monotonic ns; the record's times are the Unix time of that instant."""
        with self._guard(), self._lock:
            self._check()
            channel = self._channel(topic, encoding, schema()) if topic not in self._channels else self._channels[topic]
            unix = stamp + self.clock_offset_ns
            self._writer.add_message(
                channel, log_time=unix, data=data, publish_time=unix, sequence=self._sequence[topic]
            )
            self._sequence[topic] += 1
            self._pending = True
            if time.monotonic() - self._last_flush >= self.flush_interval_s:
                self._flush_locked()

    @staticmethod
    def _stamp(stamp_ns: int | None) -> int:
        return time.monotonic_ns() if stamp_ns is None else int(stamp_ns)

    def write(self, topic: str, message: dict[str, Any], stamp_ns: int | None = None) -> None:
        """A JSON message on ``topic`` (numpy values become lists); ``stamp_ns``: host monotonic ns (default:
        now). The channel's JSON schema is inferred from its first message."""
        payload = _jsonable(message)

        def schema() -> tuple[str, str, bytes]:  # built once, when the channel is registered
            return (
                "s2r" + topic.replace("/", "."),
                "jsonschema",
                json.dumps({"title": topic, **json_schema_of(payload)}).encode(),
            )

        self._add(
            topic,
            "json",
            schema,
            json.dumps(payload).encode(),
            self._stamp(stamp_ns),
        )

    def write_message(self, topic: str, message: Any, stamp_ns: int | None = None) -> None:
        """A ``foxglove.messages`` message (``CameraCalibration``, ``FrameTransforms``, ...), protobuf-encoded with
        the SDK's schema."""
        schema = type(message).get_schema()
        self._add(
            topic,
            "protobuf",
            lambda: (schema.name, schema.encoding, bytes(schema.data)),
            message.encode(),
            self._stamp(stamp_ns),
        )

    def write_color(self, topic: str, rgb: np.ndarray, stamp_ns: int | None = None, frame_id: str = "") -> None:
        """An HxWx3 uint8 RGB image as a JPEG ``foxglove.CompressedImage`` in frame ``frame_id``."""
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        )
        if not ok:
            raise LogError(f"{self.path}: cannot encode a color image of shape {rgb.shape}")
        stamp = self._stamp(stamp_ns)
        time_ = foxglove_time(stamp + self.clock_offset_ns)
        self.write_message(
            topic, fm.CompressedImage(timestamp=time_, frame_id=frame_id, data=buf.tobytes(), format="jpeg"), stamp
        )

    def write_depth(self, topic: str, depth_m: np.ndarray, stamp_ns: int | None = None, frame_id: str = "") -> None:
        """An HxW (or HxWx1) metric depth image (m, 0 = none) as a ``foxglove.RawImage`` in ``16UC1`` millimetres
        (lossless to the millimetre; the chunk compression packs it)."""
        mm = np.clip(np.rint(np.asarray(depth_m, dtype=np.float64).squeeze() * 1000.0), 0, 65535).astype("<u2")
        if mm.ndim != 2:
            raise LogError(f"{self.path}: cannot store a depth image of shape {np.shape(depth_m)}")
        stamp = self._stamp(stamp_ns)
        h, w = mm.shape
        image = fm.RawImage(
            timestamp=foxglove_time(stamp + self.clock_offset_ns), frame_id=frame_id, width=w, height=h,
            encoding="16UC1", step=2 * w, data=mm.tobytes(),
        )  # fmt: skip
        self.write_message(topic, image, stamp)

    def write_lossless(self, topic: str, image: np.ndarray, stamp_ns: int | None = None, frame_id: str = "") -> None:
        """An image exactly as given, as a ``foxglove.RawImage``: HxWx3 uint8 RGB (``rgb8``) or HxW / HxWx1 float32
        (``32FC1``), e.g. the reduced frames a camera policy acted on, so that a replay recomputes its actions."""
        image = np.asarray(image)
        if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
            encoding, data = "rgb8", np.ascontiguousarray(image)
        elif image.dtype == np.float32 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)):
            encoding, data = "32FC1", np.ascontiguousarray(image.reshape(image.shape[:2]), dtype="<f4")
        else:
            raise LogError(f"{self.path}: no lossless image encoding for {image.shape} {image.dtype}")
        stamp = self._stamp(stamp_ns)
        h, w = data.shape[:2]
        raw = fm.RawImage(
            timestamp=foxglove_time(stamp + self.clock_offset_ns), frame_id=frame_id, width=w, height=h,
            encoding=encoding, step=data.nbytes // h, data=data.tobytes(),
        )  # fmt: skip
        self.write_message(topic, raw, stamp)

    def flush(self) -> None:
        """End the chunk in progress and hand everything written so far to the OS now."""
        with self._lock:
            self._check()
            self._flush_locked()

    def close(self) -> None:
        """Write the summary and close the file (idempotent)."""
        if self.closed:
            return
        self._stop.set()
        self._flusher.join()
        with self._guard(), self._lock:
            self.closed = True
            try:
                self._writer.finish()
            finally:
                self._file.close()
        if self._flush_error is not None:
            raise LogError(f"{self.path}: writing failed ({self._flush_error})") from self._flush_error

    def __enter__(self) -> HardwareLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

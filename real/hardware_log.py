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

Reading (:class:`LogReader`, :func:`read_log`, :func:`log_info`, ...) goes through the library's ``StreamReader``
(CRCs validated) and never stops with a traceback: a log that was cut or damaged is read up to the last intact chunk,
and where and why it stopped is reported as a :class:`LogDamage` (``"cut at byte N of M after K messages:
<reason>"``). A file with no readable start (empty, not MCAP, cut within its header) raises :class:`LogError`.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import foxglove.messages as fm
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from mcap.records import Channel, DataEnd, Footer, Header, Message, Metadata, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from real.video import Mp4Writer

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


@dataclass(frozen=True)
class LogMessage:
    topic: str
    stamp_ns: int  # host monotonic ns when the sample was taken
    encoding: str  # "json", a protobuf schema's name (foxglove.CompressedImage, ...), or an older log's encoding
    data: Any  # dict (json, protobuf), RGB uint8 array (color), metric float32 array (depth), bytes (raw, other)
    unix_ns: int | None = None  # the same instant in ns since the Unix epoch (None: a log older than the clock record)


@functools.lru_cache(maxsize=64)
def _protobuf_class(name: str, descriptor_set: bytes) -> Any:
    """The protobuf message class of the schema ``name`` from its serialized ``FileDescriptorSet``."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def _decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if len(data) else None
    if image is None:
        raise ValueError("not a JPEG image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _decode_raw_image(msg: Any) -> np.ndarray:
    """A ``foxglove.RawImage``: ``16UC1`` depth (mm) in metres as float32, ``32FC1`` as float32, ``rgb8`` as HxWx3
    uint8."""
    dtype, channels, per_unit = {"16UC1": ("<u2", 1, 1000.0), "32FC1": ("<f4", 1, 1.0), "rgb8": ("u1", 3, None)}.get(
        msg.encoding, (None, 0, None)
    )
    if dtype is None:
        raise ValueError(f"an image in {msg.encoding!r}, not 16UC1, 32FC1 or rgb8")
    row = np.dtype(dtype).itemsize * channels * msg.width
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise ValueError(f"{len(msg.data)} bytes for {msg.height} rows of step {msg.step} ({msg.width} px)")
    rows = np.frombuffer(msg.data, np.uint8)[: msg.step * msg.height].reshape(msg.height, msg.step)[:, :row]
    values = rows.copy().view(dtype)
    if per_unit is None:
        return values.reshape(msg.height, msg.width, channels)
    return (values.astype(np.float32) / np.float32(per_unit)).reshape(msg.height, msg.width)


def decode(encoding: str, data: bytes, schema: tuple[str, str, bytes] | None = None) -> Any:
    """A message's payload decoded by its encoding (and, for protobuf, its schema ``(name, encoding, data)``);
    ``ValueError`` if it does not decode."""
    if encoding == "json":
        return json.loads(data)
    if encoding == "protobuf":
        if schema is None or schema[1] != "protobuf":
            raise ValueError("a protobuf message without a protobuf schema")
        msg = _protobuf_class(schema[0], schema[2]).FromString(data)
        if schema[0] == COLOR_SCHEMA:
            return _decode_jpeg(msg.data)
        if schema[0] == RAW_IMAGE_SCHEMA:
            return _decode_raw_image(msg)
        return json_format.MessageToDict(msg, preserving_proto_field_name=True)
    if encoding == "jpeg":  # logs written before the Foxglove schemas
        return _decode_jpeg(data)
    if encoding == "png16_mm":
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if len(data) else None
        if image is None:
            raise ValueError("not a PNG image")
        return image.astype(np.float32) / 1000.0
    return data


class LogDamageWarning(UserWarning):
    """A log was read only up to where it was cut or damaged (:func:`read_log`)."""


@dataclass(frozen=True)
class LogDamage:
    """Where and why reading a log stopped before its end."""

    offset: int  # byte offset of the record reading stopped at: everything before it was read
    size: int  # file size, bytes
    messages: int  # messages read before the stop (all topics)
    reason: str
    cut: bool  # the file ends early (a killed writer, a partial copy); False: its content is damaged

    def __str__(self) -> str:
        what = "cut" if self.cut else "damaged"
        return f"{what} at byte {self.offset} of {self.size} after {self.messages} messages: {self.reason}"


_MAGIC = b"\x89MCAP0\r\n"
_KILLED = "the writer was killed or the file cut"


class _Stop(Exception):
    """Reading stops here (internal to :class:`LogReader`)."""

    def __init__(self, reason: str, cut: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cut = cut


class _FileEnd(Exception):
    """The ``mcap`` reader asked for bytes past the end of the file."""


class _Bounded:
    """The log file as the ``mcap`` library's reader sees it: a read returns exactly the bytes asked for or raises
    :class:`_FileEnd`, so a damaged length field never makes the library allocate more than the file holds, nor take
    a short record for a whole one; ``pos`` counts the bytes read."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f, self.size, self.pos = f, size, 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise ValueError(f"a negative length ({n}) at byte {self.pos}")
        if n > self.size - self.pos:
            raise _FileEnd(f"{n} bytes asked for at byte {self.pos}")
        data = self.f.read(n)
        self.pos += len(data)
        if len(data) < n:
            raise _FileEnd("the file shrank while it was read")
        return data


class LogReader:
    """One pass over a log's messages in file order (``topics``: only these; ``raw``: ``data`` left as the stored
    bytes). After the pass, ``damage`` says where and why it stopped early (None: the log was complete),
    ``metadata`` holds the ``deployment`` metadata record and ``messages`` counts the messages read (all topics).

    Records are parsed by the ``mcap`` library's :class:`~mcap.stream_reader.StreamReader` with CRC validation on:
    every chunk is checked against its CRC before any of its messages is yielded, so a cut or damaged log yields
    the messages of its intact chunks up to the first bad one, never altered ones; the data section's CRC is
    checked at its end, the summary's (here) at the footer. Any exception the library raises on a damaged file
    becomes the reported stop. Raises :class:`LogError` only for a file with no readable start (missing,
    unreadable, empty, not MCAP, cut within its header)."""

    def __init__(self, path: str | Path, topics: Iterable[str] | None = None, raw: bool = False) -> None:
        self.path = Path(path)
        self.topics = None if topics is None else set(topics)
        self.raw = raw
        self.size = 0  # bytes
        self.messages = 0
        self.metadata: dict[str, str] = {}
        self.damage: LogDamage | None = None
        self._channels: dict[int, tuple[str, str, int]] = {}  # id: (topic, encoding, schema id)
        self._schemas: dict[int, tuple[str, str, bytes]] = {}  # id: (name, encoding, data)
        self.clock_offset_ns: int | None = None  # Unix minus monotonic (the clock record; None: an older log)
        self._at = 0  # offset of the record being read
        self._complete = False  # the file ends with the closing magic
        self._data_ended = False  # the data end record was read: every message was

    def __iter__(self) -> Iterator[LogMessage]:
        self.messages, self.metadata, self.damage, self._channels, self._schemas = 0, {}, None, {}, {}
        self.clock_offset_ns = None
        self._at, self._data_ended = 0, False
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise LogError(f"{self.path}: no such log") from None
        except OSError as e:
            raise LogError(f"{self.path}: cannot read it ({e.strerror or e})") from None
        with f:
            self.size = os.fstat(f.fileno()).st_size
            magic = f.read(len(_MAGIC))
            if not magic:
                raise LogError(f"{self.path}: empty file (0 bytes): no log was written to it")
            if magic != _MAGIC:
                if len(magic) < len(_MAGIC) and _MAGIC.startswith(magic):
                    raise LogError(f"{self.path}: cut after {self.size} bytes, before its MCAP header: no log in it")
                raise LogError(f"{self.path}: not an MCAP file")
            f.seek(max(self.size - len(_MAGIC), len(_MAGIC)))
            self._complete = f.read(len(_MAGIC)) == _MAGIC  # ends as a finished log: a short read is damage
            f.seek(0)
            bounded = _Bounded(f, self.size)
            records = StreamReader(bounded, validate_crcs=True).records  # type: ignore[arg-type]
            try:
                header = next(records)
            except Exception as e:  # noqa: BLE001 - whatever the library raises on a damaged header
                if isinstance(e, _FileEnd) and not self._complete:
                    raise LogError(
                        f"{self.path}: cut after {self.size} bytes, within its MCAP header: no log in it"
                    ) from None
                raise LogError(f"{self.path}: its MCAP header is damaged ({type(e).__name__}: {e})") from None
            if not isinstance(header, Header):
                raise LogError(f"{self.path}: not an MCAP log (its first record is not a header)")
            try:
                yield from self._records(records, bounded)
            except Exception as e:  # noqa: BLE001 - any failure on a damaged file is a reported stop
                stop = self._stop(e)
                self.damage = LogDamage(self._at, self.size, self.messages, stop.reason, stop.cut)

    def _stop(self, e: Exception) -> _Stop:
        if isinstance(e, _Stop):
            return e
        if not isinstance(e, _FileEnd):
            return _Stop(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)  # MemoryError has no text
        if self._complete:
            return _Stop(
                f"a record runs past the end of the file ({e}), yet the file ends as a finished log: "
                "a length field is damaged"
            )
        where = "before the log's end" if self._at == self.size else "within a record"
        if self._data_ended:
            where = "in the summary section, past every message"
        return _Stop(f"the file ends {where} ({_KILLED})", cut=True)

    def _records(self, records: Iterator[Any], bounded: _Bounded) -> Iterator[LogMessage]:
        """The library's records after the header: messages decoded, channels and metadata kept, the summary's CRC
        checked at the footer, nothing after the closing magic."""
        summary = 0  # offset of the summary section, once the data end is read
        while True:
            self._at = bounded.pos
            record = next(records, None)
            if record is None:
                break
            if self._data_ended:
                if isinstance(record, Message):
                    raise _Stop("a message after the data section's end")
                if isinstance(record, Footer) and record.summary_crc:
                    bounded.f.seek(summary)
                    crc = zlib.crc32(bounded.f.read(bounded.pos - 4 - summary))
                    bounded.f.seek(bounded.pos)
                    if crc != record.summary_crc:
                        raise _Stop("summary CRC mismatch (past every message)")
            elif isinstance(record, Message):
                message = self._message(record)
                if message is not None:
                    yield message
            elif isinstance(record, Channel):
                self._channels[record.id] = (record.topic, record.message_encoding, record.schema_id)
            elif isinstance(record, Schema):
                self._schemas[record.id] = (record.name, record.encoding, bytes(record.data))
            elif isinstance(record, Metadata):
                if record.name == "deployment" and not self.metadata:
                    self.metadata = dict(record.metadata)
                elif record.name == CLOCK_RECORD and self.clock_offset_ns is None:
                    self.clock_offset_ns = int(record.metadata.get("unix_minus_monotonic_ns", 0))
            elif isinstance(record, DataEnd):
                summary, self._data_ended = bounded.pos, True
            elif isinstance(record, Footer):
                raise _Stop("a footer before the data section's end")
        if bounded.pos != self.size:
            raise _Stop("bytes after the closing magic (past every message)")

    def _message(self, record: Message) -> LogMessage | None:
        if record.channel_id not in self._channels:
            raise _Stop(f"a message on channel {record.channel_id}, which the log never declared")
        topic, encoding, schema_id = self._channels[record.channel_id]
        if self.topics is not None and topic not in self.topics:
            self.messages += 1
            return None
        schema = self._schemas.get(schema_id)
        label = schema[0] if encoding == "protobuf" and schema is not None else encoding
        data: Any = record.data
        if not self.raw:
            try:
                data = decode(encoding, data, schema)
            except Exception as e:  # noqa: BLE001 - json, protobuf, cv2: a payload that does not decode
                raise _Stop(f"a message on {topic} does not decode as {label} ({type(e).__name__}: {e})") from e
        self.messages += 1
        offset = self.clock_offset_ns
        if offset is None:  # an older log: log_time is the monotonic stamp
            return LogMessage(topic, record.log_time, label, data)
        return LogMessage(topic, record.log_time - offset, label, data, record.log_time)


def read_log(path: str | Path, topics: list[str] | None = None, raw: bool = False) -> Iterator[LogMessage]:
    """Messages of a log in file order (``topics``: only these; ``raw``: leave ``data`` as the stored bytes). A log
    that was cut (a killed writer) or damaged is read up to its last intact chunk, then a
    :class:`LogDamageWarning` says where and why it stopped (:class:`LogReader` hands over the same as a value)."""
    reader = LogReader(path, topics, raw)
    yield from reader
    if reader.damage is not None:
        warnings.warn(f"{reader.path}: {reader.damage}", LogDamageWarning, stacklevel=2)


def log_metadata(path: str | Path) -> dict[str, str]:
    """The ``deployment`` metadata record of a log ({} if the log has none, or was cut before it)."""
    reader = LogReader(path, raw=True)
    for _ in reader:
        break  # the writer puts metadata first
    return reader.metadata


def log_info(path: str | Path) -> dict[str, Any]:
    """Per topic: message count, encoding, first and last host timestamps (ns) and mean rate (Hz); overall
    duration (s), file size (bytes), metadata, and ``damaged``: where and why reading stopped early (a
    :class:`LogDamage` as text), None for a complete log."""
    topics: dict[str, dict[str, Any]] = {}
    first = last = None
    reader = LogReader(path, raw=True)
    for msg in reader:
        t = topics.setdefault(msg.topic, {"messages": 0, "encoding": msg.encoding, "first_ns": msg.stamp_ns})
        t["messages"] += 1
        t["last_ns"] = msg.stamp_ns
        first = msg.stamp_ns if first is None else min(first, msg.stamp_ns)
        last = msg.stamp_ns if last is None else max(last, msg.stamp_ns)
    offset = reader.clock_offset_ns
    for t in topics.values():
        if offset is not None:  # the same instants as Unix time (ns since the epoch)
            t["first_unix_ns"], t["last_unix_ns"] = t["first_ns"] + offset, t["last_ns"] + offset
        span = (t["last_ns"] - t["first_ns"]) / 1e9
        t["rate_hz"] = round((t["messages"] - 1) / span, 2) if span > 0 else None
    return {
        "path": str(path),
        "bytes": reader.size,
        "duration_s": round((last - first) / 1e9, 3) if first is not None else 0.0,
        "start_unix_ns": first + offset if first is not None and offset is not None else None,
        "messages": reader.messages,
        "damaged": None if reader.damage is None else str(reader.damage),
        "metadata": reader.metadata,
        "topics": dict(sorted(topics.items())),
    }


#: Topics whose lists run over the robot's joints in config order (named by joint in CSV exports).
JOINT_TOPICS = ("/joint_states", "/command")


def _flatten(prefix: str, value: Any, out: dict[str, Any], joints: list[str] | None = None) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out, joints)
    elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        names = joints if joints is not None and len(joints) == len(value) else range(len(value))
        for name, v in zip(names, value, strict=True):
            out[f"{prefix}_{name}"] = v
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list) else value


def export_csv(path: str | Path, out_dir: str | Path) -> list[Path]:
    """One CSV per JSON topic (``stamp_ns`` first, then the flattened fields; lists become ``name_0, name_1``, and
    on the joint topics, ``position_joint1, ...`` by the joint names the log's metadata records)."""
    import csv

    joints = [j for j in log_metadata(path).get("joints", "").split(",") if j] or None
    rows: dict[str, list[dict[str, Any]]] = {}
    for msg in read_log(path):
        if msg.encoding == "json":
            row: dict[str, Any] = {"stamp_ns": msg.stamp_ns}
            _flatten("", msg.data, row, joints if msg.topic in JOINT_TOPICS else None)
            rows.setdefault(msg.topic, []).append(row)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, topic_rows in sorted(rows.items()):
        fields = list(dict.fromkeys(k for r in topic_rows for k in r))
        target = out_dir / (topic.strip("/").replace("/", "_") + ".csv")
        with open(target, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(topic_rows)
        written.append(target)
    return written


def export_mp4(path: str | Path, out_dir: str | Path) -> list[Path]:
    """One H.264 MP4 per image topic at its measured frame rate; depth drawn with a colour map over 0-3 m."""
    info = log_info(path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers: dict[str, Mp4Writer] = {}
    try:
        for msg in read_log(path):
            if msg.encoding not in COLOR_ENCODINGS + DEPTH_ENCODINGS:
                continue
            if msg.encoding in DEPTH_ENCODINGS and msg.data.ndim == 3:  # a lossless RGB frame (rgb8)
                rgb = msg.data
            elif msg.encoding in DEPTH_ENCODINGS:
                scaled = np.clip(msg.data / 3.0 * 255.0, 0, 255).astype(np.uint8)
                rgb = cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
                rgb[msg.data <= 0] = 0
            else:
                rgb = msg.data
            if msg.topic not in writers:
                target = out_dir / (msg.topic.strip("/").replace("/", "_") + ".mp4")
                writers[msg.topic] = Mp4Writer(target, info["topics"][msg.topic]["rate_hz"] or 10.0)
            writers[msg.topic].add(rgb)
    finally:
        for w in writers.values():
            w.close()
    return [w.path for w in writers.values()]

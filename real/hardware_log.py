"""Hardware logs: one MCAP file per deployment, one channel per stream, host monotonic timestamps on every message.

Writing goes through the ``mcap`` library's writer (zstd-compressed chunks, CRCs on chunks and on the data
section). Message encodings:

- structured streams (joint states, commands, policy observations and actions, estimates, safety events, loop
  timing): JSON objects (``message_encoding="json"``), numpy arrays as lists;
- color images: JPEG bytes (``message_encoding="jpeg"``, RGB order once decoded by :func:`read_log`);
- depth images: 16-bit PNG bytes in millimetres (``message_encoding="png16_mm"``), 0 = no reading.

``log_time`` and ``publish_time`` are the host's ``time.monotonic_ns()`` when the sample was taken (not when it was
written).

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
import numpy as np
from mcap.records import Channel, DataEnd, Footer, Header, Message, Metadata
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from real.video import Mp4Writer

PROFILE = "s2r"
JSON_SCHEMA = json.dumps({"type": "object"}).encode()
FLUSH_INTERVAL_S = 0.5  # host time between flushes of the chunk in progress: what a kill can lose


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
        self._json_schema = self._writer.register_schema("object", "jsonschema", JSON_SCHEMA)
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

    def _channel(self, topic: str, encoding: str) -> int:
        if topic not in self._channels:
            schema = self._json_schema if encoding == "json" else 0
            self._channels[topic] = self._writer.register_channel(topic, encoding, schema)
            self._sequence[topic] = 0
        return self._channels[topic]

    def _add(self, topic: str, encoding: str, data: bytes, stamp_ns: int | None) -> None:
        stamp = time.monotonic_ns() if stamp_ns is None else int(stamp_ns)
        with self._guard(), self._lock:
            self._check()
            channel = self._channel(topic, encoding)
            self._writer.add_message(
                channel, log_time=stamp, data=data, publish_time=stamp, sequence=self._sequence[topic]
            )
            self._sequence[topic] += 1
            self._pending = True
            if time.monotonic() - self._last_flush >= self.flush_interval_s:
                self._flush_locked()

    def write(self, topic: str, message: dict[str, Any], stamp_ns: int | None = None) -> None:
        """A JSON message on ``topic`` (numpy values become lists); ``stamp_ns``: host monotonic ns (default:
        now)."""
        self._add(topic, "json", json.dumps(_jsonable(message)).encode(), stamp_ns)

    def write_color(self, topic: str, rgb: np.ndarray, stamp_ns: int | None = None) -> None:
        """An HxWx3 uint8 RGB image, JPEG-compressed."""
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        )
        if not ok:
            raise LogError(f"{self.path}: cannot encode a color image of shape {rgb.shape}")
        self._add(topic, "jpeg", buf.tobytes(), stamp_ns)

    def write_depth(self, topic: str, depth_m: np.ndarray, stamp_ns: int | None = None) -> None:
        """An HxW (or HxWx1) metric depth image (m, 0 = none), stored losslessly as 16-bit PNG in mm."""
        mm = np.clip(np.rint(np.asarray(depth_m, dtype=np.float64).squeeze() * 1000.0), 0, 65535).astype(np.uint16)
        ok, buf = cv2.imencode(".png", mm)
        if not ok:
            raise LogError(f"{self.path}: cannot encode a depth image of shape {np.shape(depth_m)}")
        self._add(topic, "png16_mm", buf.tobytes(), stamp_ns)

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
    stamp_ns: int
    encoding: str
    data: Any  # dict (json), RGB uint8 array (jpeg), metric float32 array (png16_mm), bytes (other)


def decode(encoding: str, data: bytes) -> Any:
    """A message's payload decoded by its encoding; ``ValueError`` if it does not decode."""
    if encoding == "json":
        return json.loads(data)
    if encoding in ("jpeg", "png16_mm"):
        flags = cv2.IMREAD_COLOR if encoding == "jpeg" else cv2.IMREAD_UNCHANGED
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if len(data) else None
        if image is None:
            raise ValueError(f"not a {'JPEG' if encoding == 'jpeg' else 'PNG'} image")
        if encoding == "jpeg":
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
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
        self._channels: dict[int, tuple[str, str]] = {}  # id: (topic, encoding)
        self._at = 0  # offset of the record being read
        self._complete = False  # the file ends with the closing magic
        self._data_ended = False  # the data end record was read: every message was

    def __iter__(self) -> Iterator[LogMessage]:
        self.messages, self.metadata, self.damage, self._channels = 0, {}, None, {}
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
                self._channels[record.id] = (record.topic, record.message_encoding)
            elif isinstance(record, Metadata):
                if record.name == "deployment" and not self.metadata:
                    self.metadata = dict(record.metadata)
            elif isinstance(record, DataEnd):
                summary, self._data_ended = bounded.pos, True
            elif isinstance(record, Footer):
                raise _Stop("a footer before the data section's end")
        if bounded.pos != self.size:
            raise _Stop("bytes after the closing magic (past every message)")

    def _message(self, record: Message) -> LogMessage | None:
        if record.channel_id not in self._channels:
            raise _Stop(f"a message on channel {record.channel_id}, which the log never declared")
        topic, encoding = self._channels[record.channel_id]
        if self.topics is not None and topic not in self.topics:
            self.messages += 1
            return None
        data: Any = record.data
        if not self.raw:
            try:
                data = decode(encoding, data)
            except Exception as e:  # noqa: BLE001 - json, cv2: a payload that does not decode
                raise _Stop(f"a message on {topic} does not decode as {encoding} ({type(e).__name__}: {e})") from e
        self.messages += 1
        return LogMessage(topic, record.log_time, encoding, data)


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
    for t in topics.values():
        span = (t["last_ns"] - t["first_ns"]) / 1e9
        t["rate_hz"] = round((t["messages"] - 1) / span, 2) if span > 0 else None
    return {
        "path": str(path),
        "bytes": reader.size,
        "duration_s": round((last - first) / 1e9, 3) if first is not None else 0.0,
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
            if msg.encoding not in ("jpeg", "png16_mm"):
                continue
            if msg.encoding == "png16_mm":
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

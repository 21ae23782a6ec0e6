"""Reading hardware logs (written by :mod:`real.hardware_log`): messages, metadata, a summary, CSV and MP4 exports.

Reading (:class:`LogReader`, :func:`read_log`, :func:`log_info`, ...) goes through the library's ``StreamReader``
(CRCs validated) and never stops with a traceback: a log that was cut or damaged is read up to the last intact chunk,
and where and why it stopped is reported as a :class:`LogDamage` (``"cut at byte N of M after K messages:
<reason>"``). A file with no readable start (empty, not MCAP, cut within its header) raises :class:`LogError`.
"""

from __future__ import annotations

import functools
import io
import json
import os
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
import zstandard
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from mcap.data_stream import ReadDataStream
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, DataEnd, Footer, Header, Message, Metadata, Schema
from mcap.stream_reader import StreamReader

from real.hardware_log import (
    CLOCK_RECORD,
    COLOR_ENCODINGS,
    COLOR_SCHEMA,
    DEPTH_ENCODINGS,
    PROFILE,
    RAW_IMAGE_SCHEMA,
    LogError,
)
from real.video import Mp4Writer


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


def _chunk_records(chunk: Chunk) -> Iterator[Channel | Schema | Message]:
    """The records of ``chunk``, its CRC checked first: decompressed with a decompressor of its own (no state
    shared with an earlier damaged chunk) to exactly its declared size; unknown record kinds are skipped."""
    if chunk.compression == "zstd":
        data = zstandard.ZstdDecompressor().decompress(chunk.data, max_output_size=chunk.uncompressed_size)
    elif chunk.compression == "":
        data = bytes(chunk.data)
    else:
        raise _Stop(f"a chunk compressed with {chunk.compression!r}, which this reader does not decompress")
    if len(data) != chunk.uncompressed_size:
        raise _Stop(f"a chunk decompresses to {len(data)} bytes, not the {chunk.uncompressed_size} it declares")
    if chunk.uncompressed_crc and zlib.crc32(data) != chunk.uncompressed_crc:
        raise _Stop("chunk CRC mismatch")
    stream = ReadDataStream(io.BytesIO(data))
    while stream.count < len(data):
        opcode, length = stream.read1(), stream.read8()
        if length > len(data) - stream.count:
            raise _Stop("a record in a chunk runs past the chunk's end")
        if opcode == Opcode.CHANNEL:
            yield Channel.read(stream)
        elif opcode == Opcode.SCHEMA:
            yield Schema.read(stream)
        elif opcode == Opcode.MESSAGE:
            yield Message.read(stream, length)
        else:
            stream.read(length)


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
        self._ours = False  # the log was written by :mod:`real.hardware_log` (its profile): every message chunked

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
            records = StreamReader(bounded, validate_crcs=True, emit_chunks=True).records  # type: ignore[arg-type]
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
            self._ours = header.profile == PROFILE
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
            elif isinstance(record, Chunk):
                for inner in list(_chunk_records(record)):  # the whole chunk parsed before any message is yielded
                    message = self._declare_or_read(inner)
                    if message is not None:
                        yield message
            elif isinstance(record, Message) and self._ours:
                raise _Stop(
                    "a message outside any chunk, which this project's writer never writes (a damaged type byte)"
                )
            elif isinstance(record, Channel | Schema | Message):
                message = self._declare_or_read(record)
                if message is not None:
                    yield message
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

    def _declare_or_read(self, record: Channel | Schema | Message) -> LogMessage | None:
        """Keep a channel or schema declaration; a message becomes a :class:`LogMessage` (None: a topic not asked
        for)."""
        if isinstance(record, Channel):
            self._channels[record.id] = (record.topic, record.message_encoding, record.schema_id)
        elif isinstance(record, Schema):
            self._schemas[record.id] = (record.name, record.encoding, bytes(record.data))
        else:
            return self._message(record)
        return None

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

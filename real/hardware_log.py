"""Hardware logs: one MCAP file per deployment, one channel per stream, host monotonic timestamps on every message.

Writing goes through the ``mcap`` library's writer (zstd-compressed chunks). Message encodings:

- structured streams (joint states, commands, policy observations and actions, estimates, safety events, loop
  timing): JSON objects (``message_encoding="json"``), numpy arrays as lists;
- color images: JPEG bytes (``message_encoding="jpeg"``, RGB order once decoded by :func:`read_log`);
- depth images: 16-bit PNG bytes in millimetres (``message_encoding="png16_mm"``), 0 = no reading.

``log_time`` and ``publish_time`` are the host's ``time.monotonic_ns()`` when the sample was taken (not when it was
written). Chunks are small (``chunk_size``, 256 KiB by default) and flushed as they fill: a process killed
mid-run leaves a file without its summary, which :func:`read_log` still reads up to the last complete chunk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from mcap.exceptions import EndOfFile, McapError
from mcap.records import Channel, Message, Metadata
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

PROFILE = "s2r"
JSON_SCHEMA = json.dumps({"type": "object"}).encode()


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
    """An MCAP log being written. ``metadata`` (robot, policy, command, ...) goes into an MCAP metadata record."""

    def __init__(
        self,
        path: str | Path,
        metadata: dict[str, str] | None = None,
        chunk_size: int = 256 * 1024,
        jpeg_quality: int = 90,
    ) -> None:
        self.path = Path(path)
        if self.path.suffix != ".mcap":
            raise LogError(f"{self.path}: a hardware log is an .mcap file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._writer = Writer(self._file, chunk_size=chunk_size, compression=CompressionType.ZSTD)
        self._writer.start(profile=PROFILE, library="sim2real-pipeline")
        if metadata:
            self._writer.add_metadata("deployment", {str(k): str(v) for k, v in metadata.items()})
        self._json_schema = self._writer.register_schema("object", "jsonschema", JSON_SCHEMA)
        self._channels: dict[str, int] = {}
        self._sequence: dict[str, int] = {}
        self.jpeg_quality = int(jpeg_quality)
        self.closed = False

    def _channel(self, topic: str, encoding: str) -> int:
        if topic not in self._channels:
            schema = self._json_schema if encoding == "json" else 0
            self._channels[topic] = self._writer.register_channel(topic, encoding, schema)
            self._sequence[topic] = 0
        return self._channels[topic]

    def _add(self, topic: str, encoding: str, data: bytes, stamp_ns: int | None) -> None:
        if self.closed:
            raise LogError(f"{self.path}: the log is closed")
        stamp = time.monotonic_ns() if stamp_ns is None else int(stamp_ns)
        channel = self._channel(topic, encoding)
        self._writer.add_message(channel, log_time=stamp, data=data, publish_time=stamp, sequence=self._sequence[topic])
        self._sequence[topic] += 1

    def write(self, topic: str, message: dict[str, Any], stamp_ns: int | None = None) -> None:
        """A JSON message on ``topic`` (numpy values become lists)."""
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

    def close(self) -> None:
        """Write the summary and close the file (idempotent)."""
        if not self.closed:
            self.closed = True
            self._writer.finish()
            self._file.close()

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
    if encoding == "json":
        return json.loads(data)
    if encoding == "jpeg":
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if encoding == "png16_mm":
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).astype(np.float32) / 1000.0
    return data


def _records(path: Path) -> Iterator[Any]:
    """The records of an MCAP file in file order (chunks decompressed), stopping quietly where a killed writer
    left the file cut."""
    if not path.exists():
        raise LogError(f"{path}: no such log")
    with open(path, "rb") as f:
        records = StreamReader(f).records
        while True:
            try:
                yield next(records)
            except StopIteration:
                return
            except (EndOfFile, McapError, EOFError, ValueError) as e:
                if f.tell() <= 8 and not isinstance(e, EndOfFile):
                    raise LogError(f"{path}: not an MCAP file ({e})") from e
                return  # cut: everything before the damaged record has been read


def read_log(path: str | Path, topics: list[str] | None = None, raw: bool = False) -> Iterator[LogMessage]:
    """Messages of a log in file order (``topics``: only these). A log whose writer was killed is read up to its
    last complete chunk. ``raw``: leave ``data`` as the stored bytes."""
    channels: dict[int, Channel] = {}
    for record in _records(Path(path)):
        if isinstance(record, Channel):
            channels[record.id] = record
        elif isinstance(record, Message):
            channel = channels[record.channel_id]
            if topics is None or channel.topic in topics:
                data = record.data if raw else decode(channel.message_encoding, record.data)
                yield LogMessage(channel.topic, record.log_time, channel.message_encoding, data)


def log_metadata(path: str | Path) -> dict[str, str]:
    """The ``deployment`` metadata record of a log ({} if the log has none, or was cut before it)."""
    for record in _records(Path(path)):
        if isinstance(record, Metadata) and record.name == "deployment":
            return dict(record.metadata)
        if isinstance(record, Message):
            break  # the writer puts metadata first
    return {}


def log_info(path: str | Path) -> dict[str, Any]:
    """Per topic: message count, encoding, first and last host timestamps and mean rate; overall duration."""
    topics: dict[str, dict[str, Any]] = {}
    first = last = None
    for msg in read_log(path, raw=True):
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
        "bytes": Path(path).stat().st_size,
        "duration_s": round((last - first) / 1e9, 3) if first is not None else 0.0,
        "metadata": log_metadata(path),
        "topics": dict(sorted(topics.items())),
    }


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        for i, v in enumerate(value):
            out[f"{prefix}_{i}"] = v
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list) else value


def export_csv(path: str | Path, out_dir: str | Path) -> list[Path]:
    """One CSV per JSON topic (``stamp_ns`` first, then the flattened fields; lists become ``name_0, name_1``)."""
    import csv

    rows: dict[str, list[dict[str, Any]]] = {}
    for msg in read_log(path):
        if msg.encoding == "json":
            row: dict[str, Any] = {"stamp_ns": msg.stamp_ns}
            _flatten("", msg.data, row)
            rows.setdefault(msg.topic, []).append(row)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, topic_rows in sorted(rows.items()):
        fields = list(dict.fromkeys(k for r in topic_rows for k in r))
        target = out_dir / (topic.replace("/", "_") + ".csv")
        with open(target, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(topic_rows)
        written.append(target)
    return written


def export_mp4(path: str | Path, out_dir: str | Path) -> list[Path]:
    """One MP4 per image topic at its measured frame rate; depth drawn with a colour map over 0-3 m."""
    info = log_info(path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers: dict[str, cv2.VideoWriter] = {}
    written = []
    try:
        for msg in read_log(path):
            if msg.encoding not in ("jpeg", "png16_mm"):
                continue
            if msg.encoding == "png16_mm":
                scaled = np.clip(msg.data / 3.0 * 255.0, 0, 255).astype(np.uint8)
                bgr = cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO)
                bgr[msg.data <= 0] = 0
            else:
                bgr = cv2.cvtColor(msg.data, cv2.COLOR_RGB2BGR)
            if msg.topic not in writers:
                target = out_dir / (msg.topic.replace("/", "_") + ".mp4")
                fps = info["topics"][msg.topic]["rate_hz"] or 10.0
                h, w = bgr.shape[:2]
                writers[msg.topic] = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                if not writers[msg.topic].isOpened():
                    raise LogError(f"cannot write {target}")
                written.append(target)
            writers[msg.topic].write(bgr)
    finally:
        for w in writers.values():
            w.release()
    return written

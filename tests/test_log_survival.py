"""Hardware logs that survive a kill, and a reader that never gives a traceback (issue 21).

- every truncation point and a few hundred seeded byte flips of a log with JSON channels and color and depth
  images: the reader yields what it can and reports where it stopped, never raises (a :class:`LogError` only for
  files with no readable start);
- the writer flushes the chunk in progress every 0.5 s of host time, so a copy of a log still being written
  (what a SIGKILL leaves) holds every message but the last half second;
- a real ``s2r deploy`` SIGKILLed 3 s after its log opened leaves a log that reads to within a second of the kill;
- ``s2r log info`` on cut, empty and non-MCAP files: a one-line warning and the summary, or a one-line error.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mcap.writer import Writer

from policies.cli import main as s2r
from real.hardware_log import HardwareLog, LogError
from real.log_reader import LogDamageWarning, LogMessage, LogReader, log_info, log_metadata, read_log

REPO = Path(__file__).resolve().parents[1]
METADATA = {"robot": "openmanipulator_x", "policy": "grasp_rgbd"}


def _frames(i: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.stack([(xx * 4 + i) % 256, yy * 5 % 256, (xx + yy + 7 * i) % 256], axis=-1).astype(np.uint8)
    depth = (0.5 + 0.01 * xx + 0.002 * yy + 0.001 * i).astype(np.float32)
    depth[:4] = 0.0
    return rgb, depth


def _write_test_log(path: Path) -> None:
    """40 cycles of joint states, commands, loop timing, a color and a depth image, in chunks of about 4 KiB."""
    with HardwareLog(path, METADATA, chunk_size=4096) as log:
        for i in range(40):
            stamp = 10**9 + i * 50_000_000
            rgb, depth = _frames(i)
            log.write("/joint_states", {"position": np.linspace(-1, 1, 5) * i, "velocity": [0.1] * 5}, stamp)
            log.write("/command", {"requested": [0.01 * i] * 5, "sent": [0.01 * i] * 5}, stamp + 1)
            log.write_color("/camera/color", rgb, stamp + 2)
            log.write_depth("/camera/depth", depth, stamp + 3)
            log.write("/loop", {"cycle": i, "late_s": 0.0}, stamp + 4)


def _key(m: LogMessage) -> tuple:
    data = m.data
    if isinstance(data, np.ndarray):
        data = (data.shape, str(data.dtype), data.tobytes())
    else:
        data = json.dumps(data, sort_keys=True)
    return m.topic, m.stamp_ns, m.encoding, data


def _read(path: Path) -> tuple[list[tuple], LogReader]:
    reader = LogReader(path)
    return [_key(m) for m in reader], reader


def _header_end(data: bytes) -> int:
    """Bytes up to the end of the header record: a shorter file has no readable start."""
    return 8 + 9 + struct.unpack_from("<Q", data, 9)[0]


@pytest.fixture(scope="module")
def test_log(tmp_path_factory) -> tuple[bytes, list[tuple]]:
    path = tmp_path_factory.mktemp("log") / "full.mcap"
    _write_test_log(path)
    messages, reader = _read(path)
    assert reader.damage is None and reader.metadata == METADATA and len(messages) == 200
    return path.read_bytes(), messages


def test_every_truncation_reads_a_prefix_and_says_where_it_stopped(test_log, tmp_path):
    data, full = test_log
    size, header_end = len(data), _header_end(data)
    metadata_end = header_end + 9 + struct.unpack_from("<Q", data, header_end + 1)[0]
    assert data[header_end] == 0x0C  # a metadata record
    ends = {size - 1, size - 8, size - 9, metadata_end - 1, metadata_end}
    points = sorted(set(range(65)) | {round(k * size / 50) for k in range(51)} | ends)
    path = tmp_path / "cut.mcap"
    counts = []
    for p in points:
        path.write_bytes(data[:p])
        if p < header_end:
            with pytest.raises(LogError, match="empty|cut after|before its MCAP header|within its MCAP header"):
                _read(path)
            continue
        messages, reader = _read(path)
        assert messages == full[: len(messages)], p  # the messages read are the log's first ones, unaltered
        assert reader.messages == len(messages)
        if p == size:
            assert reader.damage is None and len(messages) == len(full)
        else:
            d = reader.damage
            assert d is not None and d.cut and d.size == p and d.offset <= p and d.messages == len(messages), p
            assert str(d).startswith(f"cut at byte {d.offset} of {p} after {len(messages)} messages: ")
        assert reader.metadata == (METADATA if p >= metadata_end else {}), p  # the record after the header
        counts.append(len(messages))
    assert counts == sorted(counts)  # never fewer messages from a longer file
    assert counts[-1] == len(full) and len(set(counts)) > 10  # chunk after chunk becomes readable
    info = log_info(path)  # path now holds data[:size] (the last point): complete
    assert info["damaged"] is None and info["messages"] == len(full)


def test_flipped_bytes_read_identically_or_report_damage(test_log, tmp_path):
    data, full = test_log
    rng = np.random.default_rng(21)
    header_end = _header_end(data)
    positions = sorted(rng.choice(len(data), 300, replace=False).tolist())
    path = tmp_path / "flipped.mcap"
    damaged = 0
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(flipped))
        try:
            messages, reader = _read(path)
            info = log_info(path)
        except LogError:
            assert pos < header_end, pos  # only the magic or the header can make a file unreadable
            continue
        if reader.damage is None:
            assert messages == full and reader.metadata == METADATA, pos
            assert info["damaged"] is None
        else:
            damaged += 1
            assert info["damaged"] == str(reader.damage)
            it = iter(full)
            assert all(m in it for m in messages), pos  # what was read is the log's own, in order
    assert damaged > 0.9 * len(positions)  # chunks, data section and summary carry CRCs


def test_damaged_record_types_are_reported_alike_by_every_reader(test_log, tmp_path):
    """Every bit of every record's type byte flipped: a chunk read as another record (a message outside any chunk,
    which the writer never writes) is reported, never yielded; the decoding reader and ``log_info`` (which does not
    decode) report the same damage."""
    data, full = test_log
    starts, pos = [], _header_end(data)
    while data[pos] != 0x0F:  # up to the data end record
        starts.append(pos)
        pos += 9 + struct.unpack_from("<Q", data, pos + 1)[0]
    assert len(starts) > 10
    path = tmp_path / "typed.mcap"
    for start in starts[:12]:  # the two metadata records and ten chunks
        for bit in range(8):
            flipped = bytearray(data)
            flipped[start] ^= 1 << bit
            path.write_bytes(bytes(flipped))
            messages, reader = _read(path)
            info = log_info(path)
            assert reader.damage is not None and info["damaged"] == str(reader.damage), (start, bit)
            assert info["messages"] == reader.messages, (start, bit)
            if data[start] == 0x06:  # a chunk (a damaged metadata record may lose the clock: other stamps)
                it = iter(full)
                assert all(m in it for m in messages), (start, bit)


def test_every_reader_reports_instead_of_raising(test_log, tmp_path):
    data, full = test_log
    path = tmp_path / "cut.mcap"
    path.write_bytes(data[: len(data) // 2])
    with pytest.warns(LogDamageWarning, match=r"cut at byte \d+ of \d+ after \d+ messages"):
        n = sum(1 for _ in read_log(path, topics=["/loop"]))
    assert 0 < n < 40
    assert log_metadata(path) == METADATA
    from real.log_reader import export_csv, export_mp4

    with pytest.warns(LogDamageWarning):
        written = export_csv(path, tmp_path / "csv")
    with open(tmp_path / "csv" / "loop.csv") as f:
        assert len(list(csv.DictReader(f))) == n
    with pytest.warns(LogDamageWarning):
        assert len(export_mp4(path, tmp_path / "mp4")) == 2
    assert {p.name for p in written} == {"joint_states.csv", "command.csv", "loop.csv"}


def test_the_writer_flushes_every_half_second(tmp_path):
    path = tmp_path / "live.mcap"
    log = HardwareLog(path, {"robot": "x"}, chunk_size=1 << 20)  # chunks never fill: only time flushes
    try:
        snapshot = tmp_path / "at_open.mcap"
        shutil.copyfile(path, snapshot)  # a kill right after opening
        messages, reader = _read(snapshot)
        assert messages == [] and reader.metadata == {"robot": "x"} and reader.damage.cut

        written = []
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            stamp = time.monotonic_ns()
            log.write("/tick", {"i": len(written)}, stamp)
            written.append(stamp)
            time.sleep(0.05)
        shutil.copyfile(path, snapshot)  # what a SIGKILL now would leave
        with pytest.warns(LogDamageWarning, match="cut at byte"):
            stamps = [m.stamp_ns for m in read_log(snapshot)]
        assert stamps == written[: len(stamps)]
        assert stamps and (written[-1] - stamps[-1]) / 1e9 < 1.0  # at most about a second lost

        time.sleep(1.0)  # nothing written: the background flush writes the rest
        shutil.copyfile(path, snapshot)
        with pytest.warns(LogDamageWarning):
            assert [m.stamp_ns for m in read_log(snapshot)] == written
    finally:
        log.close()
    assert log_info(path)["damaged"] is None


def test_writer_flush_writes_the_chunk_in_progress(tmp_path):
    """The mcap Writer's ``flush()`` (mcap >= 1.6), which the log's time-based flush relies on, ends the chunk being
    built and hands it to the file: fails if the library changes under it."""
    path = tmp_path / "flush.mcap"
    with open(path, "wb") as f:
        writer = Writer(f, chunk_size=1 << 20)
        writer.start(profile="s2r", library="test")
        channel = writer.register_channel("/a", "json", 0)
        writer.add_message(channel, log_time=5, data=b'{"v": 1}', publish_time=5)
        f.flush()
        assert sum(1 for _ in LogReader(path)) == 0  # still in the chunk being built
        writer.flush()
        reader = LogReader(path)
        assert [(m.topic, m.stamp_ns, m.data) for m in reader] == [("/a", 5, {"v": 1})]
        assert reader.damage is not None and reader.damage.cut  # not finished
        writer.finish()


def test_cli_log_info_on_cut_empty_and_foreign_files(test_log, tmp_path, capsys):
    data, full = test_log
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    assert s2r(["log", "info", str(cut), "--json", str(tmp_path / "info.json")]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"s2r: warning: {cut}: cut at byte ")
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["damaged"] in captured.err and 0 < info["messages"] < len(full)
    assert "/camera/color" in captured.out and "openmanipulator_x" in captured.out
    assert f"{info['messages']} messages" in captured.out

    assert s2r(["log", "export", str(cut), "--to", "csv", "--out", str(tmp_path / "csv")]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "cut at byte" in captured.err

    rng = np.random.default_rng(0)
    cases = {
        "empty.mcap": (b"", "empty"),
        "random.mcap": (rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not an MCAP file"),
        "magic_only.mcap": (data[:5], "before its MCAP header"),
        "header_cut.mcap": (data[:20], "within its MCAP header"),
    }
    for name, (content, says) in cases.items():
        (tmp_path / name).write_bytes(content)
        assert s2r(["log", "info", str(tmp_path / name)]) == 2, name
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1 and says in captured.err and "Traceback" not in captured.err, name
        assert captured.err.startswith(f"s2r: {tmp_path / name}: ")
    (tmp_path / "folder.mcap").mkdir()
    assert s2r(["log", "info", str(tmp_path / "folder.mcap")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _s2r() -> list[str]:
    exe = Path(sys.executable).parent / "s2r"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "policies.cli"]


@pytest.mark.slow
def test_a_sigkilled_deploy_leaves_a_log_to_within_a_second(tmp_path):
    """The real driver code against the servo emulator, killed 3 s after its log opened (before the fix: 0 bytes).
    10 episodes of about 2 s: the run is still going at the kill."""
    path = tmp_path / "killed.mcap"
    cmd = _s2r() + ["deploy", "--robot", "mock/openmanipulator_x", "--policy", "policies/bundles/grasp_state"]
    cmd += ["--episodes", "10", "--log", str(path), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60.0
        while not path.exists():
            assert proc.poll() is None, f"deploy exited ({proc.returncode}): {proc.stderr.read()}"
            assert time.monotonic() < deadline, "the deploy did not open its log within 60 s"
            time.sleep(0.02)
        time.sleep(3.0)
        assert proc.poll() is None, "the deploy ended before the kill"
        kill_ns = time.monotonic_ns()  # the writer stamps log time with the same clock
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    reader = LogReader(path, raw=True)
    stamps = {}
    for m in reader:
        stamps.setdefault(m.topic, []).append(m.stamp_ns)
    assert reader.damage is not None and reader.damage.cut
    assert reader.metadata["robot"] == "openmanipulator_x_mock"
    assert len(stamps.get("/joint_states", [])) >= 5
    last = max(max(s) for s in stamps.values())
    assert 0 < (kill_ns - last) / 1e9 < 1.0, (kill_ns - last) / 1e9

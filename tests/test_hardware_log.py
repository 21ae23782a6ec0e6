"""Hardware logs (MCAP): what is written is read back, a killed writer leaves a readable log, and the CLI
summarizes and exports logs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import av
import cv2
import numpy as np
import pytest

from policies.cli import main as s2r
from real.hardware_log import HardwareLog, LogError
from real.log_reader import LogDamageWarning, export_csv, log_info, read_log
from robot.config_file import load_hardware_config


def _frames(i: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.stack([(xx * 4 + i) % 256, yy * 5 % 256, np.full_like(xx, 128)], axis=-1).astype(np.uint8)
    depth = (0.5 + 0.01 * xx + 0.001 * i).astype(np.float32)
    depth[:4] = 0.0  # no reading
    return rgb, depth


def test_messages_come_back_with_their_timestamps(tmp_path):
    path = tmp_path / "run.mcap"
    with HardwareLog(path, {"robot": "openmanipulator_x", "policy": "grasp_state"}) as log:
        for i in range(20):
            stamp = 1_000_000_000 + i * 100_000_000  # 10 Hz
            rgb, depth = _frames(i)
            log.write("joint_states", {"position": np.arange(5) * 0.1 * i, "cycle": i}, stamp_ns=stamp)
            log.write_color("camera/color", rgb, stamp_ns=stamp + 1)
            log.write_depth("camera/depth", depth, stamp_ns=stamp + 2)
    with pytest.raises(LogError, match="closed"):
        log.write("joint_states", {})
    joints = list(read_log(path, topics=["joint_states"]))
    assert [m.data["cycle"] for m in joints] == list(range(20))
    assert [m.stamp_ns for m in joints] == [1_000_000_000 + i * 100_000_000 for i in range(20)]
    np.testing.assert_allclose(joints[7].data["position"], np.arange(5) * 0.7)
    depth = next(m for m in read_log(path, topics=["camera/depth"]) if m.stamp_ns == 1_000_000_000 + 2)
    np.testing.assert_allclose(depth.data, _frames(0)[1], atol=0.0005)  # lossless to the millimetre
    color = next(iter(read_log(path, topics=["camera/color"])))
    assert color.data.shape == (48, 64, 3) and np.abs(color.data.astype(int) - _frames(0)[0]).mean() < 3
    info = log_info(path)
    assert info["metadata"] == {"robot": "openmanipulator_x", "policy": "grasp_state"}
    assert {t: v["messages"] for t, v in info["topics"].items()} == dict.fromkeys(
        ["camera/color", "camera/depth", "joint_states"], 20
    )
    assert info["topics"]["joint_states"]["rate_hz"] == pytest.approx(10.0)
    assert info["duration_s"] == pytest.approx(1.9, abs=1e-6)
    assert info["damaged"] is None and info["messages"] == 60


WRITER = """
import sys, time
import numpy as np
from real.hardware_log import HardwareLog
log = HardwareLog(sys.argv[1], {"robot": "x"}, chunk_size=8 * 1024)
i = 0
while True:
    log.write("cycle", {"i": i, "payload": np.random.default_rng(i).random(64)})
    if i == 400:
        print("ready", flush=True)
    i += 1
    time.sleep(0.0005)
"""


def test_a_killed_writer_leaves_a_log_readable_to_its_last_chunk(tmp_path):
    path = tmp_path / "killed.mcap"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with pytest.warns(LogDamageWarning, match=r"cut at byte \d+ of \d+ after \d+ messages"):
        cycles = [m.data["i"] for m in read_log(path)]
    assert len(cycles) >= 300 and cycles == list(range(len(cycles)))  # complete chunks, in order, no gaps
    info = log_info(path)
    assert info["metadata"] == {"robot": "x"} and info["damaged"].startswith("cut at byte")


def test_bad_logs_fail_clearly(tmp_path):
    with pytest.raises(LogError, match="no such log"):
        list(read_log(tmp_path / "missing.mcap"))
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"this is not an mcap file at all")
    with pytest.raises(LogError, match="not an MCAP file"):
        list(read_log(junk))
    with pytest.raises(LogError, match=r"\.mcap"):
        HardwareLog(tmp_path / "log.txt")


def test_cli_summarizes_and_exports(tmp_path, capsys):
    path = tmp_path / "run.mcap"
    with HardwareLog(path, {"robot": "turtlebot3_burger"}) as log:
        for i in range(12):
            rgb, depth = _frames(i)
            stamp = 5_000_000_000 + i * 50_000_000
            log.write("command", {"targets": [0.1 * i, -0.1 * i], "nested": {"rate": 20.0}}, stamp_ns=stamp)
            log.write_color("camera/color", rgb, stamp_ns=stamp)
            log.write_depth("camera/depth", depth, stamp_ns=stamp)
    assert s2r(["log", "info", str(path), "--json", str(tmp_path / "info.json")]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # a complete log: no warning
    assert "camera/color" in out and "20.0 Hz" in out and "turtlebot3_burger" in out

    assert s2r(["log", "export", str(path), "--to", "csv", "--out", str(tmp_path / "csv")]) == 0
    with open(tmp_path / "csv" / "command.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and rows[0].keys() == {"stamp_ns", "targets_0", "targets_1", "nested.rate"}
    assert float(rows[3]["targets_0"]) == pytest.approx(0.3) and int(rows[3]["stamp_ns"]) == 5_150_000_000

    assert s2r(["log", "export", str(path), "--to", "mp4", "--out", str(tmp_path / "video")]) == 0
    for name in ("camera_color.mp4", "camera_depth.mp4"):
        cap = cv2.VideoCapture(str(tmp_path / "video" / name))
        frames = 0
        while cap.read()[0]:
            frames += 1
        cap.release()
        assert frames == 12
        with av.open(str(tmp_path / "video" / name)) as video:  # H.264: plays in browsers, GitHub, VS Code
            assert video.streams.video[0].codec_context.name == "h264"
    assert s2r(["log", "info", str(tmp_path / "missing.mcap")]) != 0


def test_csv_export_names_joint_columns_by_joint(tmp_path):
    path = tmp_path / "joints.mcap"
    with HardwareLog(path, {"robot": "openmanipulator_x", "joints": "joint1,joint2,gripper"}) as log:
        log.write("/joint_states", {"position": [0.1, 0.2, 0.3], "velocity": [0.0, 0.0, 0.0]}, 1_000)
        log.write("/command", {"requested": [0.1, 0.2, 0.3], "sent": [0.1, 0.2, 0.25]}, 1_001)
        log.write("/policy/action", {"action": [0.5, -0.5, 0.0]}, 1_002)  # not joints, though of the same length
    written = {p.name: p for p in export_csv(path, tmp_path / "csv")}
    with open(written["joint_states.csv"]) as f:
        header = next(csv.reader(f))
    assert header == [
        "stamp_ns",
        *(f"{k}_{j}" for k in ("position", "velocity") for j in ("joint1", "joint2", "gripper")),
    ]
    with open(written["command.csv"]) as f:
        row = next(csv.DictReader(f))
    assert float(row["sent_gripper"]) == pytest.approx(0.25)
    with open(written["policy_action.csv"]) as f:
        assert next(csv.reader(f)) == ["stamp_ns", "action_0", "action_1", "action_2"]


def test_channels_carry_the_foxglove_schemas_and_unix_times(tmp_path, arm_config):
    """What Foxglove needs, checked with the mcap library's own reader: images and frames in the foxglove-sdk's
    schemas, a JSON schema of its own per JSON channel, log times in Unix ns; our reader returns the monotonic
    stamps as written, with the Unix time beside them, and the images as they were (depth to the millimetre)."""
    from mcap.reader import make_reader

    from real.frames import RobotFrames, camera_calibration, camera_frame, frame_transforms
    from robot.description import urdf_path
    from robot.intrinsics import Intrinsics

    path = tmp_path / "fox.mcap"
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.stack([xx * 4, yy * 5, np.full_like(xx, 90)], axis=-1).astype(np.uint8)  # smooth: JPEG keeps it
    depth = np.round(rng.uniform(0.2, 2.0, (48, 64)), 3).astype(np.float32)
    depth[0, :5] = 0.0
    frames = RobotFrames(arm_config, urdf_path(arm_config))
    stamp = 5_000_000_000  # a monotonic stamp (host seconds since boot)
    with HardwareLog(path, {"robot": arm_config.name}) as log:
        offset = log.clock_offset_ns
        log.write("/joint_states", {"name": arm_config.joint_names, "position": [0.0] * 5}, stamp)
        log.write("/loop", {"cycle": 0, "act_ms": None}, stamp)
        log.write_message("/tf", frame_transforms(frames.transforms([0.1, 0.2, 0.3, 0.4, 0.01])), stamp)
        optical = camera_frame("table")
        log.write_color("/camera/color", rgb, stamp + 1, optical)
        log.write_depth("/camera/depth", depth, stamp + 2, optical)
        k = Intrinsics(640, 480, 615.0, 615.5, 320.0, 240.0)
        log.write_message("/camera/calibration", camera_calibration(k, optical), stamp + 1)
    assert abs(offset + time.monotonic_ns() - time.time_ns()) < 10**9  # the offset maps the host clock to Unix ns
    with open(path, "rb") as f:
        reader = make_reader(f)
        schemas = {
            ch.topic: reader.get_summary().schemas[ch.schema_id] for ch in reader.get_summary().channels.values()
        }
        times = {ch.topic: None for ch in reader.get_summary().channels.values()}
        for _, channel, message in reader.iter_messages():
            times[channel.topic] = message.log_time
    assert (
        schemas["/camera/color"].name == "foxglove.CompressedImage" and schemas["/camera/color"].encoding == "protobuf"
    )
    assert schemas["/camera/depth"].name == "foxglove.RawImage"
    assert schemas["/camera/calibration"].name == "foxglove.CameraCalibration"
    assert schemas["/tf"].name == "foxglove.FrameTransforms"
    joint_schema = json.loads(schemas["/joint_states"].data)
    assert schemas["/joint_states"].encoding == "jsonschema" and joint_schema["title"] == "/joint_states"
    assert joint_schema["properties"]["name"]["items"]["type"] == ["string", "null"]
    assert schemas["/loop"].name != schemas["/joint_states"].name  # a schema per channel
    assert times["/joint_states"] == stamp + offset and times["/camera/depth"] == stamp + 2 + offset
    messages = {m.topic: m for m in read_log(path)}
    assert messages["/joint_states"].stamp_ns == stamp and messages["/joint_states"].unix_ns == stamp + offset
    assert messages["/camera/color"].encoding == "foxglove.CompressedImage"
    assert np.abs(messages["/camera/color"].data.astype(int) - rgb).mean() < 3
    np.testing.assert_array_equal(messages["/camera/depth"].data, depth)  # lossless to the millimetre
    calibration = messages["/camera/calibration"].data
    assert calibration["frame_id"] == "table_optical" and calibration["K"][0] == pytest.approx(k.fx)
    tf = {t["child_frame_id"]: t for t in messages["/tf"].data["transforms"]}
    assert tf["link2"]["parent_frame_id"] == "link1" and tf["table_optical"]["parent_frame_id"] == "table_link"
    info = log_info(path)
    assert info["start_unix_ns"] == stamp + offset and info["topics"]["/camera/depth"]["first_ns"] == stamp + 2


def test_foxglove_layouts_are_current_and_log_view_points_to_them(tmp_path, capsys):
    from real.foxglove_layout import ROBOTS, layout_json, layout_path

    for robot in ROBOTS:  # docs/foxglove/ holds what the generator writes: python -m real.foxglove_layout
        assert layout_path(robot).read_text() == layout_json(load_hardware_config(robot)), robot
    arm = json.loads(layout_path("openmanipulator_x").read_text())["content"]
    three_d = arm["items"][0]["content"]
    assert three_d["panelType"] == "ThreeDee" and three_d["config"]["layers"]["robot"]["topic"] == "/robot_description"
    image = arm["items"][1]["content"]["items"][0]["content"]
    assert image["config"]["imageMode"] == {"imageTopic": "/camera/color", "calibrationTopic": "/camera/calibration"}
    path = tmp_path / "view.mcap"
    with HardwareLog(path, {"robot": "openmanipulator_x_mock"}) as log:
        log.write_color("/camera/color", np.zeros((8, 8, 3), np.uint8), 1)
    assert s2r(["log", "view", str(path)]) == 0
    out = capsys.readouterr().out
    assert str(layout_path("openmanipulator_x")) in out and "/camera/color" in out


def test_logs_in_the_format_before_the_foxglove_schemas_still_read(tmp_path):
    """The earlier writer's images: JPEG color as encoding ``jpeg`` and depth as a 16-bit PNG in mm (``png16_mm``),
    schema-less, with JSON messages of one shared schema and monotonic log times."""
    from mcap.writer import Writer

    color = np.zeros((24, 32, 3), np.uint8)
    color[:, 16:] = (200, 40, 10)
    depth_mm = np.full((24, 32), 750, np.uint16)
    depth_mm[0, 0] = 0  # no reading
    path = tmp_path / "old.mcap"
    with open(path, "wb") as fh:
        writer = Writer(fh)
        writer.start(profile="s2r", library="s2r (old)")
        schema = writer.register_schema("s2r", "jsonschema", json.dumps({"type": "object"}).encode())
        joints = writer.register_channel("/joint_states", "json", schema)
        jpeg = writer.register_channel("/camera/color", "jpeg", 0)
        png = writer.register_channel("/camera/depth", "png16_mm", 0)
        stamp = 5_000_000_000  # seconds since boot, as the old logs have them
        writer.add_message(joints, stamp, json.dumps({"position": [0.1, 0.2]}).encode(), stamp)
        writer.add_message(jpeg, stamp, cv2.imencode(".jpg", color[:, :, ::-1])[1].tobytes(), stamp)
        writer.add_message(png, stamp, cv2.imencode(".png", depth_mm)[1].tobytes(), stamp)
        writer.finish()
    got = {m.topic: m for m in read_log(path)}
    assert got["/joint_states"].data == {"position": [0.1, 0.2]} and got["/joint_states"].stamp_ns == stamp
    image = got["/camera/color"].data
    assert image.shape == (24, 32, 3) and np.abs(image[5, 25].astype(int) - [200, 40, 10]).max() <= 8  # RGB
    np.testing.assert_allclose(got["/camera/depth"].data, depth_mm / 1000.0)  # metres, 0 kept as no reading

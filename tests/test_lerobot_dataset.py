"""Hardware logs exported as LeRobotDatasets (v3.0), validated against the published format with pyarrow and PyAV
(the lerobot package cannot be installed beside our torch), read back, and replayed on the mock arm."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from policies.cli import main as s2r
from real.deploy_log import DeployLog
from real.lerobot_dataset import DatasetError, read_lerobot
from real.log_reader import read_log
from robot.config_file import load_hardware_config
from robot.intrinsics import Intrinsics
from robot.joint_state import JointState

DATA = Path(__file__).parent / "data"


def _camera_log(path, episodes=2, steps=5):
    """A log of the mock arm written by deploy's own writer (:class:`real.deploy_log.DeployLog`, in its order: a
    cycle's joints, command, then the frame it acted on): frame ``s`` of episode ``e`` is grey ``20 s + 40 e``; in
    each episode's cycle 3 the camera held (no new frame logged)."""
    config = load_hardware_config("mock/openmanipulator_x")
    camera = SimpleNamespace(name="table", intrinsics=Intrinsics(64, 48, 60.0, 60.0, 32.0, 24.0))
    rng = np.random.default_rng(0)
    stamp = 1_000_000_000
    metadata = {"robot": "openmanipulator_x_mock", "task": "grasp"}
    log = DeployLog(str(path), config, metadata, guard=contextlib.nullcontext)
    for e in range(episodes):
        log.episode_start(e, seed=e)
        for s in range(steps):
            position = rng.uniform(-0.3, 0.3, 5) * [1, 1, 1, 1, 0.05]
            joints = JointState(position, np.zeros(5), np.zeros(5), stamp)
            frame = SimpleNamespace(color=np.full((48, 64, 3), 20 * s + 40 * e, np.uint8), depth=None,
                                    host_time_ns=stamp - 30_000_000)  # fmt: skip
            held = s == 3
            log.cycle(joints, {"proprio": position}, None if held else np.zeros(4), (position + 0.01, position + 0.01),
                      {"late_ms": 0.0}, frame=None if held else frame, camera=camera)  # fmt: skip
            stamp += 100_000_000
        log.episode_end(e, "timeout", steps)
    log.close()


def test_a_log_exports_to_the_v3_layout_and_reads_back(tmp_path, capsys):
    log = tmp_path / "run.mcap"
    _camera_log(log)
    out = tmp_path / "dataset"
    assert s2r(["log", "export", str(log), "--to", "lerobot", "--out", str(out)]) == 0
    assert "2 episodes, 10 frames" in capsys.readouterr().out
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10.0 and info["robot_type"] == "openmanipulator_x"
    assert info["total_episodes"] == 2 and info["total_frames"] == 10 and info["splits"] == {"train": "0:2"}
    assert info["features"]["action"]["names"] == ["joint1", "joint2", "joint3", "joint4", "gripper"]
    video_key = "observation.images.table"
    assert info["features"][video_key]["dtype"] == "video" and info["features"][video_key]["shape"] == [48, 64, 3]
    frames = pq.read_table(out / info["data_path"].format(chunk_index=0, file_index=0))
    assert set(frames.column_names) == {
        "observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index"
    }  # fmt: skip
    assert frames["index"].to_pylist() == list(range(10)) and frames["frame_index"].to_pylist()[5:] == list(range(5))
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in episodes] == [(0, 5), (5, 10)]
    assert episodes[1][f"videos/{video_key}/from_timestamp"] == pytest.approx(0.5)
    tasks = pq.read_table(out / "meta" / "tasks.parquet")  # as pandas writes it: task_index, indexed by the text
    assert tasks.to_pylist() == [{"task_index": 0, "task": "grasp"}]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    video = out / info["video_path"].format(video_key=video_key, chunk_index=0, file_index=0)
    with av.open(str(video)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert container.streams.video[0].codec_context.name == "h264"
    # each frame with its own cycle: episode 1's cycle 1 is 20 + 40; a held cycle (3) shows the frame before it
    grey = [int(f[10, 10, 0]) for f in decoded]
    expected = [0, 20, 40, 40, 80, 40, 60, 80, 80, 120]
    assert len(decoded) == 10 and all(abs(g - x) <= 3 for g, x in zip(grey, expected, strict=True)), grey
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert len(stats["action"]["mean"]) == 5 and stats["action"]["count"] == [10]
    data = read_lerobot(out)
    assert [len(e.action) for e in data.episodes] == [5, 5] and data.episodes[0].task == "grasp"
    logged = list(read_log(log, topics=["/command"]))
    np.testing.assert_allclose(data.episodes[1].action[0], logged[5].data["sent"], rtol=1e-6)
    # a folder that is not one, another version, a folder that exists
    with pytest.raises(DatasetError, match="no meta/info.json"):
        read_lerobot(tmp_path)
    info["codebase_version"] = "v2.1"
    (out / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="v2.1"):
        read_lerobot(out)
    assert s2r(["log", "export", str(log), "--to", "lerobot", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_a_dataset_drives_the_mock_arm_through_the_safety_filter(tmp_path, capsys):
    out = tmp_path / "dataset"
    assert s2r(["log", "export", str(DATA / "mock_arm_grasp.mcap"), "--to", "lerobot", "--out", str(out)]) == 0
    result = tmp_path / "replay.json"
    argv = ["replay", str(out), "--robot", "mock/openmanipulator_x", "--episode", "1", "--json", str(result)]
    assert s2r(argv) == 0
    report = json.loads(result.read_text())
    assert report["reached_start"] and report["frames_sent"] == 16
    assert report["parked"] and report["torque_off"]  # read back from the emulated servos
    assert max(report["state_error_rms"][j] for j in ("joint1", "joint2", "joint3", "joint4")) < 0.02  # rad
    assert s2r(["replay", str(out), "--robot", "mock/turtlebot3_burger"]) == 2
    assert "are not turtlebot3_burger_mock's" in capsys.readouterr().err


def test_simulated_rollouts_are_recorded_as_a_dataset(tmp_path, capsys):
    out, report = tmp_path / "rollouts", tmp_path / "eval.json"
    argv = ["eval", "--task", "grasp", "--policy", "expert", "--episodes", "2", "--seed", "7", "--json", str(report)]
    assert s2r([*argv, "--record", str(out)]) == 0
    lengths = [e["length"] for e in json.loads(report.read_text())["per_episode"]]
    data = read_lerobot(out)
    assert [len(e.action) for e in data.episodes] == lengths and data.info["total_frames"] == sum(lengths)
    assert "s2r eval: scripted_expert on grasp, seeds 7..8" in data.info["sources"][0]
    video = out / data.info["video_path"].format(video_key="observation.images.table", chunk_index=0, file_index=0)
    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == sum(lengths)
    # the action is the commanded joint targets: the arm's joints reach them by the next step (servo lag aside)
    episode = data.episodes[0]
    arm = slice(0, 4)
    assert np.median(np.abs(episode.state[1:, arm] - episode.action[:-1, arm])) < 0.02
    with pytest.raises(SystemExit, match="one policy"):
        s2r([*argv, "--record", str(tmp_path / "x"), "--sweep", "object_mass=0.05:0.1:2"])

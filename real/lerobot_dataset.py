"""Hardware logs as LeRobotDatasets (format v3.0), and back: the format most robot-learning users keep their data in.

Written here rather than with the ``lerobot`` package: the release the registry serves for Python 3.11 (0.4.x) pins
torch below 2.11, so it cannot be installed beside ours. The layout follows the published v3.0 format (LeRobot's
``LeRobotDataset`` v3 description: ``meta/info.json`` with ``codebase_version``, features, fps, robot type and path
templates; frames in ``data/chunk-000/file-000.parquet``; one row per episode in
``meta/episodes/chunk-000/file-000.parquet`` with its frame range and, per camera, its span of the shared video;
tasks in ``meta/tasks.parquet``; statistics in ``meta/stats.json``; videos in
``videos/<key>/chunk-000/file-000.mp4``, H.264).

One dataset frame is one control cycle of a log: ``observation.state`` is the measured joint positions (wheels:
velocities) in config order, ``action`` the joint targets actually sent through the safety filter (the LeRobot
convention: the command in joint space), named by joint; ``observation.images.<camera>`` is the camera frame the
cycle acted on (the latest before it). Everything is written into one chunk and one file per kind, which suits
datasets up to the format's default file sizes (100 MB of frames, 200 MB of video per file).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from real.hardware_log import COLOR_ENCODINGS
from real.log_reader import log_metadata, read_log
from real.video import Mp4Writer
from robot.config_file import load_hardware_config
from robot.description import HardwareConfig

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
CHUNKS_SIZE = 1000  # files per chunk folder (the format's default)


class DatasetError(ValueError):
    """A folder is not a LeRobotDataset v3.0 we can read, or does not fit the robot; the message says why."""


@dataclass
class Episode:
    """One episode of a dataset: ``state`` and ``action`` of shape (frames, joints), timestamps in s."""

    index: int
    task: str
    state: np.ndarray
    action: np.ndarray
    timestamp: np.ndarray


@dataclass
class Dataset:
    root: Path
    info: dict[str, Any]
    episodes: list[Episode]

    @property
    def joint_names(self) -> list[str]:
        return list(self.info["features"]["action"]["names"])


def _log_episodes(path: Path, config: HardwareConfig) -> list[dict[str, Any]]:
    """The log's episodes: per control cycle the measured state, the sent targets and the cycle's color frame.

    A deploy logs a cycle's joint state, then its command, then the camera frame the cycle acted on, so a frame
    belongs to the last command before it; a cycle that logged no frame (a held frame) shows the latest earlier one,
    and cycles before an episode's first frame show that first frame."""
    velocity = np.array([m.mode.value == "velocity" for m in config.motors])
    episodes: list[dict[str, Any]] = []
    frame: np.ndarray | None = None
    current: dict[str, Any] | None = None
    joints: dict[str, Any] | None = None
    open_cycle = False  # the last command's cycle may still log its frame
    topics = ["/episode", "/joint_states", "/command", "/camera/color"]
    for m in read_log(path, topics=topics):
        if m.topic == "/episode" and m.data.get("event") == "start":
            current = {"state": [], "action": [], "images": [], "stamps": []}
            episodes.append(current)
            open_cycle = False
        elif m.topic == "/camera/color" and m.encoding in COLOR_ENCODINGS:
            frame = m.data
            if open_cycle and current is not None:
                current["images"][-1] = frame
                open_cycle = False
        elif m.topic == "/joint_states":
            joints = {"data": m.data, "stamp": m.stamp_ns}
            open_cycle = False
        elif m.topic == "/command" and current is not None and joints is not None:
            data = joints["data"]
            current["state"].append(np.where(velocity, data["velocity"], data["position"]))
            current["action"].append(np.asarray(m.data["sent"], dtype=float))
            current["images"].append(frame)
            current["stamps"].append(joints["stamp"])
            joints, open_cycle = None, True
    for e in episodes:
        first = next((i for i in e["images"] if i is not None), None)
        e["images"] = [first if i is None else i for i in e["images"]]
    return [e for e in episodes if e["state"]]


def export_lerobot(logs: list[str | Path], out: str | Path, task: str | None = None) -> Path:
    """Write the episodes of hardware ``logs`` (one robot) as a LeRobotDataset v3.0 in ``out`` (a new folder)."""
    if not logs:
        raise DatasetError("no logs to export")
    metas = [log_metadata(p) for p in logs]
    robots = {m.get("robot", "") for m in metas}
    if len(robots) != 1 or "" in robots:
        raise DatasetError(f"the logs must come from one robot named in their metadata, got {sorted(robots)}")
    robot = robots.pop()
    config = load_hardware_config(f"mock/{robot.removesuffix('_mock')}" if robot.endswith("_mock") else robot)
    episodes = [e for p in logs for e in _log_episodes(Path(p), config)]
    if not episodes:
        raise DatasetError(f"{', '.join(map(str, logs))}: no episode with control cycles")
    task = task or metas[0].get("task") or "unknown"
    return write_lerobot(episodes, config, task, float(config.control.rate_hz), Path(out), [str(p) for p in logs])


def write_lerobot(
    episodes: list[dict[str, list]], config: HardwareConfig, task: str, fps: float, out: Path, sources: list[str]
) -> Path:
    """Write ``episodes`` (each ``state`` and ``action`` per frame in config order, and ``images``: one RGB frame
    per frame, or None) as a LeRobotDataset v3.0 in ``out``, a new folder; the video only if every frame has one."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out}: exists and is not empty; choose a new folder")
    episodes = [e for e in episodes if e["state"]]
    if not episodes:
        raise DatasetError(f"{out}: no frames to write")
    has_video = all(i is not None for e in episodes for i in e["images"])
    camera = config.cameras[0].name if config.cameras else "camera"
    video_key = f"observation.images.{camera}" if has_video else None
    names = list(config.joint_names)
    rows: dict[str, list[Any]] = {
        k: []
        for k in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index")
    }
    episode_rows: list[dict[str, Any]] = []
    writer = (
        Mp4Writer(out / VIDEO_PATH.format(video_key=video_key, chunk_index=0, file_index=0), fps) if video_key else None
    )
    index = 0
    try:
        for e, ep in enumerate(episodes):
            n = len(ep["state"])
            row = {
                "episode_index": e, "tasks": [task], "length": n, "data/chunk_index": 0, "data/file_index": 0,
                "dataset_from_index": index, "dataset_to_index": index + n,
                "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
            }  # fmt: skip
            if writer is not None:
                row |= {
                    f"videos/{video_key}/chunk_index": 0, f"videos/{video_key}/file_index": 0,
                    f"videos/{video_key}/from_timestamp": writer.frames / fps,
                    f"videos/{video_key}/to_timestamp": (writer.frames + n) / fps,
                }  # fmt: skip
                for image in ep["images"]:
                    writer.add(image)
            episode_rows.append(row)
            for f in range(n):
                rows["observation.state"].append(np.asarray(ep["state"][f], dtype=np.float32))
                rows["action"].append(np.asarray(ep["action"][f], dtype=np.float32))
                rows["timestamp"].append(f / fps)
                rows["frame_index"].append(f)
                rows["episode_index"].append(e)
                rows["index"].append(index + f)
                rows["task_index"].append(0)
            index += n
    finally:
        if writer is not None:
            writer.close()
    joints = len(names)
    table = pa.table(
        {
            "observation.state": pa.array(
                [r.tolist() for r in rows["observation.state"]], pa.list_(pa.float32(), joints)
            ),
            "action": pa.array([r.tolist() for r in rows["action"]], pa.list_(pa.float32(), joints)),
            "timestamp": pa.array(rows["timestamp"], pa.float32()),
            "frame_index": pa.array(rows["frame_index"], pa.int64()),
            "episode_index": pa.array(rows["episode_index"], pa.int64()),
            "index": pa.array(rows["index"], pa.int64()),
            "task_index": pa.array(rows["task_index"], pa.int64()),
        }
    )
    _write_parquet(table, out / DATA_PATH.format(chunk_index=0, file_index=0))
    _write_parquet(pa.Table.from_pylist(episode_rows), out / EPISODES_PATH)
    _write_parquet(_tasks_table([task]), out / "meta" / "tasks.parquet")
    vector = {"dtype": "float32", "shape": [joints], "names": names}
    scalar = {
        "float32": {"dtype": "float32", "shape": [1], "names": None},
        "int64": {"dtype": "int64", "shape": [1], "names": None},
    }
    features: dict[str, Any] = {"observation.state": vector, "action": dict(vector)}
    if video_key:
        h, w = episodes[0]["images"][0].shape[:2]
        features[video_key] = {
            "dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": h, "video.width": w, "video.codec": "h264", "video.pix_fmt": "yuv420p",
                     "video.is_depth_map": False, "video.fps": fps, "video.channels": 3, "has_audio": False},
        }  # fmt: skip
    features |= {"timestamp": scalar["float32"], "frame_index": scalar["int64"], "episode_index": scalar["int64"],
                 "index": scalar["int64"], "task_index": scalar["int64"]}  # fmt: skip
    info = {
        "codebase_version": CODEBASE_VERSION, "robot_type": config.name.removesuffix("_mock"),
        "total_episodes": len(episodes), "total_frames": index, "total_tasks": 1, "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if video_key else None, "features": features,
        "sources": sources,
    }  # fmt: skip
    (out / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    stats = {k: _stats(np.stack(rows[k])) for k in ("observation.state", "action")}
    (out / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))
    return out


def _tasks_table(tasks: list[str]) -> pa.Table:
    """``meta/tasks.parquet`` as LeRobot writes it with pandas: a ``task_index`` column indexed by the task text
    (LeRobot's loader reads a frame's task as the label of that row, ``tasks.iloc[task_index].name``). The pandas
    metadata marks the ``task`` column as the index, so pandas reads it as one and pyarrow as a plain column."""
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }  # fmt: skip
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _stats(values: np.ndarray) -> dict[str, Any]:
    return {
        "min": values.min(0).tolist(), "max": values.max(0).tolist(), "mean": values.mean(0).tolist(),
        "std": values.std(0).tolist(), "count": [len(values)],
    }  # fmt: skip


def read_lerobot(root: str | Path) -> Dataset:
    """A LeRobotDataset v3.0 folder, checked against the format (files, features, frame ranges) as it is read."""
    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise DatasetError(f"{root}: no meta/info.json: not a LeRobotDataset")
    info = json.loads(info_path.read_text())
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise DatasetError(
            f"{root}: codebase_version {info.get('codebase_version')!r}; this reader takes {CODEBASE_VERSION}"
        )
    features = info.get("features", {})
    for key in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index"):
        if key not in features:
            raise DatasetError(f"{root}: meta/info.json lacks the feature {key!r}")
    try:
        episodes_meta = pq.read_table(root / "meta" / "episodes").to_pylist()
        tasks = {r["task_index"]: r["task"] for r in pq.read_table(root / "meta" / "tasks.parquet").to_pylist()}
        frames: dict[tuple[int, int], pa.Table] = {}
        out = []
        for ep in sorted(episodes_meta, key=lambda r: r["episode_index"]):
            key = (int(ep["data/chunk_index"]), int(ep["data/file_index"]))
            if key not in frames:
                frames[key] = pq.read_table(root / info["data_path"].format(chunk_index=key[0], file_index=key[1]))
            table = frames[key]
            index = np.asarray(table["index"].to_numpy())
            mask = (index >= ep["dataset_from_index"]) & (index < ep["dataset_to_index"])
            if int(mask.sum()) != ep["length"]:
                raise DatasetError(
                    f"{root}: episode {ep['episode_index']} has {int(mask.sum())} frames, not {ep['length']}"
                )
            rows = table.filter(pa.array(mask))
            out.append(
                Episode(
                    int(ep["episode_index"]),
                    tasks.get(int(rows["task_index"][0].as_py()), ""),
                    np.array(rows["observation.state"].to_pylist(), dtype=np.float32),
                    np.array(rows["action"].to_pylist(), dtype=np.float32),
                    np.asarray(rows["timestamp"].to_numpy(), dtype=np.float64),
                )
            )
    except (OSError, pa.ArrowException, KeyError) as e:
        raise DatasetError(f"{root}: not a readable LeRobotDataset v3.0 ({type(e).__name__}: {e})") from e
    if len(out) != info.get("total_episodes"):
        raise DatasetError(f"{root}: {len(out)} episodes, meta/info.json says {info.get('total_episodes')}")
    return Dataset(root, info, out)


def replay_on_robot(
    root: str | Path, robot: str, episode: int = 0, start_mock: Callable[[HardwareConfig], Any] | None = None
) -> dict[str, Any]:
    """Drive ``robot`` (a hardware config) with the actions of one episode of the dataset at ``root``, one per
    control period, every target through the safety filter (an arm first eases to the episode's first recorded
    pose); then park and turn torque off, read back. A mock robot's hardware comes from ``start_mock`` (given the
    config; closed at the end). Returns what was sent and how closely the robot followed the dataset's recorded
    states (RMS per joint: rad, m or rad/s)."""
    import time

    from real.robot import Robot

    data = read_lerobot(root)
    config = load_hardware_config(robot)
    if data.joint_names != list(config.joint_names):
        raise DatasetError(f"{root}: its joints {data.joint_names} are not {config.name}'s {list(config.joint_names)}")
    chosen = next((e for e in data.episodes if e.index == episode), None)
    if chosen is None:
        raise DatasetError(f"{root}: no episode {episode} (it has {len(data.episodes)})")
    if config.mock is not None and start_mock is None:
        raise DatasetError(f"{config.name} is a mock robot: its hardware must be started (start_mock)")
    hardware = start_mock(config) if config.mock is not None else None
    period = 1.0 / config.control.rate_hz
    velocity = np.array([m.mode.value == "velocity" for m in config.motors])
    measured, events = [], 0
    try:
        with Robot(config) as bot:
            bot.configure()
            bot.activate()
            reached_start = None
            if not velocity.any():  # an arm goes to the episode's first recorded pose first, through the filter
                reached_start = bot.move_to(chosen.state[0].astype(float), timeout_s=3.0)
            start = time.monotonic()
            for i, target in enumerate(chosen.action):
                reading = bot.read()
                measured.append(np.where(velocity, reading.velocity, reading.position))
                _, filtered = bot.write(np.asarray(target, dtype=float))
                events += len(filtered)
                time.sleep(max(0.0, start + (i + 1) * period - time.monotonic()))
            bot.deactivate()
            report = bot.torque_report
            parked = bot.parked
    finally:
        if hardware is not None:
            hardware.close()
    error = np.abs(np.asarray(measured) - chosen.state)
    return {
        "dataset": str(root),
        "robot": config.name,
        "episode": episode,
        "reached_start": reached_start,
        "frames_sent": len(chosen.action),
        "safety_events": events,
        "state_error_rms": dict(zip(config.joint_names, np.sqrt((error**2).mean(0)).round(5).tolist(), strict=True)),
        "parked": parked,
        "torque_off": None if report is None else report.confirmed,
    }

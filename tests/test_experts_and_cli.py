"""Scripted experts reach the success the demo promises; the s2r command works end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from policies.cli import main as s2r
from policies.rollout import run_expert, wilson_interval

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("task", ["grasp", "navigate"])
def test_expert_success_rate_on_the_default_domain(task):
    summary = run_expert(task, episodes=30, seed=1000, progress=False)
    assert summary.success_rate >= 0.9, [(r.seed, r.success) for r in summary.per_episode]
    assert summary.episodes == 30 and len(summary.per_episode) == 30
    lo, hi = summary.success_ci95
    assert lo <= summary.success_rate <= hi


def test_wilson_interval():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(19, 20)
    assert lo == pytest.approx(0.7639, abs=1e-3) and hi == pytest.approx(0.9911, abs=1e-3)


def test_help_lists_every_subcommand_with_a_description():
    out = subprocess.run(
        [sys.executable, "-m", "policies.cli", "--help"], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    for command in (
        "demo",
        "expert",
        "train",
        "distill",
        "eval",
        "randomization",
        "mock-bus",
        "cameras",
        "check-config",
        "train-osi",
        "deploy",
        "replay",
        "log",
    ):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(command + " "))
        assert len(line.split(None, 1)[1]) > 10


def test_expert_command_writes_json_and_video(tmp_path, capsys):
    out_json, video = tmp_path / "r.json", tmp_path / "nav.mp4"
    assert (
        s2r(
            [
                "expert",
                "--task",
                "navigate",
                "--episodes",
                "2",
                "--seed",
                "5",
                "--json",
                str(out_json),
                "--video",
                str(video),
            ]
        )
        == 0
    )
    report = json.loads(out_json.read_text())
    assert report["episodes"] == 2 and report["task"] == "navigate"
    assert 0.0 <= report["success_rate"] <= 1.0 and report["mean_episode_length"] > 0
    assert [e["seed"] for e in report["per_episode"]] == [5, 6]
    printed = capsys.readouterr().out
    assert "success" in printed and "under the randomization 'none'" in printed  # it says which one it uses
    cap = cv2.VideoCapture(str(video))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (240, 320, 3)
    # One frame per step plus the first of each episode.
    assert frames == sum(e["length"] + 1 for e in report["per_episode"])


def test_expert_command_is_reproducible(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path in (a, b):
        assert s2r(["expert", "--task", "grasp", "--episodes", "3", "--seed", "9", "--json", str(path)]) == 0
    assert json.loads(a.read_text()) == json.loads(b.read_text())


def test_bad_episode_count_is_refused(capsys):
    assert s2r(["expert", "--task", "grasp", "--episodes", "0"]) == 2
    assert "--episodes and --n must be at least 1" in capsys.readouterr().err


def test_throughput_benchmark_prints_json(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/sim_throughput.py"),
            "--steps",
            "30",
            "--rounds",
            "2",
            "--json",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    report = json.loads(out.read_text())
    results = report["results"]
    assert {(r["task"], r["obs_mode"], r["randomization"]) for r in results} == {
        (t, m, v) for t in ("grasp", "navigate") for m in ("state", "rgbd") for v in ("none", "visual", "default")
    }
    assert len(report["randomization_cost"]) == 4
    for r in results:
        assert r["env_steps_per_s"] > 0 and r["raw_steps_per_s"] > 0 and r["cost_ratio"] > 0


@pytest.mark.parametrize("task", ["grasp", "navigate"])
def test_expert_success_under_default_randomization(task):
    summary = run_expert(task, episodes=30, seed=2000, progress=False, randomization="default")
    assert summary.success_rate >= 0.8, [(r.seed, r.success) for r in summary.per_episode]
    domains = [r.domain for r in summary.per_episode]
    assert len({str(d["latency_s"]) for d in domains}) == 30  # every episode's sampled domain is recorded


def test_expert_command_pins_a_domain_file(tmp_path):
    domain = tmp_path / "held_out.yaml"
    domain.write_text("latency_s: 0.04\nservo_strength: 0.8\n")
    out = tmp_path / "r.json"
    assert (
        s2r(
            [
                "expert",
                "--task",
                "grasp",
                "--episodes",
                "2",
                "--randomization",
                "default",
                "--domain",
                str(domain),
                "--json",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["randomization"] == "default"
    assert all(e["domain"]["latency_s"] == 0.04 and e["domain"]["servo_strength"] == 0.8 for e in report["per_episode"])
    assert s2r(["expert", "--task", "grasp", "--episodes", "1", "--domain", str(tmp_path / "missing.yaml")]) == 2


def test_randomization_preview_writes_a_contact_sheet(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert s2r(["randomization", "preview", "--task", "navigate", "--n", "4", "--seed", "3", "--out", str(out)]) == 0
    sheet = cv2.imread(str(out))
    # 2 x 2 tiles of (color | depth) at 160x120, each with a 2 px border.
    assert sheet.shape == (2 * 124, 2 * 324, 3)
    tiles = [sheet[r * 124 + 2 : r * 124 + 122, c * 324 + 2 : c * 324 + 162] for r in range(2) for c in range(2)]
    assert len({t.tobytes() for t in tiles}) == 4  # four different randomized views
    assert "4 randomized navigate views" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_tells_the_whole_story(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from a folder outside the repository: bundles and realities found by name
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--episodes", "2", "--video-episodes", "1", "--deploy-episodes", "1"]
    assert s2r(argv) == 0
    report = json.loads((out / "demo.json").read_text())
    steps = {"grasp_expert", "navigate_expert", "policy_in_sim", "deployment", "replay", "sysid"}
    has_mujoco = importlib.util.find_spec("mujoco") is not None  # the [mujoco] extra (Python >= 3.11)
    assert set(report) == steps | ({"deployment_mujoco"} if has_mujoco else set())
    assert report["deployment"]["ended"] == "completed" and report["deployment"]["robot"] == "openmanipulator_x_mock"
    if has_mujoco:  # the same episodes on the second engine
        second = report["deployment_mujoco"]
        assert second["engine"] == "mujoco" and second["ended"] == "completed" and len(second["episodes"]) == 1
    assert report["replay"]["check_policy"]["matches"] and (out / "deploy_grasp.mcap").stat().st_size > 1000
    assert report["sysid"]["mae_rad"] < report["sysid"]["nominal_mae_rad"]  # the fit explains the reality better
    assert "5. system identification" in capsys.readouterr().out


def test_camera_frames_benchmark_prints_json(tmp_path):
    out = tmp_path / "frames.json"
    subprocess.run(
        [sys.executable, str(REPO / "benchmarks/camera_frames.py"), "--frames", "3", "--supersample", "1,2"]
        + ["--json", str(out)],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    results = json.loads(out.read_text())["results"]
    assert [(r["supersample"], r["crop"] is not None) for r in results] == [
        (1, False),
        (1, True),
        (2, False),
        (2, True),
    ]
    assert results[0]["ratio_to_direct_whole_frame"] == 1.0 and all(r["ms_per_frame_p50"] > 0 for r in results)

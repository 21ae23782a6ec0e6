"""Replaying the mock robots' logs in tests/data (written by s2r deploy on hardware_configs/mock/): the hardware
played back, the policy's actions recomputed, and the logged commands driven through the simulated robot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from calibration.sim_replay import sim_replay
from policies.cli import main as s2r
from policies.replay_check import check_policy
from real.replay import ReplayRobot

DATA = Path(__file__).parent / "data"
LOGS = {"grasp": DATA / "mock_arm_grasp.mcap", "navigate": DATA / "mock_base_navigate.mcap"}
BUNDLES = {"grasp": "policies/bundles/grasp_state", "navigate": "policies/bundles/navigate_state"}


@pytest.mark.parametrize("task", ["grasp", "navigate"])
def test_the_shipped_policy_reproduces_its_logged_actions(task):
    result = check_policy(LOGS[task], BUNDLES[task])
    assert result["matches"] and result["cycles"] >= 20 and result["max_abs_difference"] < 1e-5


def test_a_changed_policy_is_caught(tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(BUNDLES["grasp"], changed)
    weights = torch.load(changed / "weights.pt", weights_only=True)
    key = next(k for k in weights if k.endswith("bias"))
    weights[key] = weights[key] + 0.05  # a small change in one layer
    torch.save(weights, changed / "weights.pt")
    result = check_policy(LOGS["grasp"], changed)
    assert not result["matches"] and result["max_abs_difference"] > 1e-3
    assert s2r(["replay", str(LOGS["grasp"]), "--check-policy", str(changed)]) == 1


@pytest.mark.parametrize("task", ["grasp", "navigate"])
def test_sim_replay_of_a_nominal_reality_stays_close(task):
    """The logs come from a reality in the nominal domain: the nominal sim driven open loop by the same commands
    follows the logged joints closely (the grasp log includes object contact the replay world does not have)."""
    drift = sim_replay(LOGS[task])
    rms = np.array(list(drift["rms_error"].values()))
    assert drift["cycles"] >= 20
    assert np.all(rms < (0.05 if task == "grasp" else 0.1)), drift


def test_replay_robot_plays_the_readings_back_in_order():
    robot = ReplayRobot(LOGS["navigate"])
    stamps = [robot.read().stamp_ns for _ in range(len(robot.readings))]
    assert stamps == sorted(stamps) and len(stamps) >= 20
    with pytest.raises(EOFError):
        robot.read()
    robot.write(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(robot.written[-1], [1.0, 2.0])


def test_cli_replay_writes_both_checks(tmp_path):
    out = tmp_path / "replay.json"
    plot = tmp_path / "drift.png"
    argv = ["replay", str(LOGS["grasp"]), "--check-policy", BUNDLES["grasp"], "--sim", "--json", str(out)]
    assert s2r([*argv, "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 20_000  # five panels, logged and simulated lines
    import matplotlib.image

    assert matplotlib.image.imread(plot).shape[0] > 800
    result = json.loads(out.read_text())
    assert result["check_policy"]["matches"] and set(result["sim_replay"]["rms_error"]) == {
        "joint1",
        "joint2",
        "joint3",
        "joint4",
        "gripper",
    }
    with pytest.raises(SystemExit, match="--check-policy"):
        s2r(["replay", str(LOGS["grasp"])])


def test_cli_replay_of_a_cut_log_warns_in_one_line(tmp_path, capsys):
    from real.hardware_log import HardwareLog
    from real.log_reader import log_metadata, read_log

    whole = tmp_path / "whole.mcap"  # the grasp log rewritten in small chunks, as a killed deploy leaves them
    with HardwareLog(whole, log_metadata(LOGS["grasp"]), chunk_size=2048) as log:
        for m in read_log(LOGS["grasp"]):
            assert m.encoding == "json"
            log.write(m.topic, m.data, m.stamp_ns)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    assert s2r(["replay", str(cut), "--check-policy", BUNDLES["grasp"]]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"s2r: warning: {cut}: cut at byte "), err

"""``s2r parity``: the same seeded episodes in simulation and through the mock arm's hardware path, compared.

The runs deploy on the mock arm (its servo emulator on a fixed pseudo-terminal): run this file under
``flock /tmp/s2r-mock.lock`` when someone else may be deploying on the same machine."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from policies.cli import main
from policies.parity import image_stats

ARM = "mock/openmanipulator_x"
JOINTS = ["joint1", "joint2", "joint3", "joint4", "gripper"]


def _run(tmp_path, bundle: str, episodes: int, *extra: str, robot: str = ARM) -> dict:
    out = tmp_path / "parity.json"
    argv = ["parity", "--policy", f"policies/bundles/{bundle}", "--robot", robot, "--episodes", str(episodes)]
    code = main([*argv, "--seed", "3000000", "--quiet", "--json", str(out), *extra])
    assert code == 0, f"parity exited {code}"
    assert out.is_file()
    return json.loads(out.read_text())


def _finite(x) -> bool:
    return all(math.isfinite(v) for v in np.ravel(np.asarray(x, dtype=float)))


def _check_common(report: dict, episodes: int) -> None:
    seeds = [3_000_000 + k for k in range(episodes)]
    sim, hw, agree, rows = report["sim"], report["hardware"], report["agreement"], report["per_episode"]
    assert hw["ended"] == "completed", hw["message"]
    assert sim["seeds"] == seeds and hw["seeds"] == seeds
    assert [r["seed"] for r in rows] == seeds
    # both success figures, each consistent with its per-episode outcomes
    sim_wins = sum(r["sim"]["success"] for r in rows)
    hw_wins = sum(r["hardware"]["success"] for r in rows)
    assert sim["successes"] == sim_wins and sim["success_rate"] == pytest.approx(sim_wins / episodes)
    assert hw["successes"] == hw_wins and hw["success_rate"] == pytest.approx(hw_wins / episodes)
    for r in rows:
        assert (r["hardware"]["outcome"] == "success") == r["hardware"]["success"]
    # agreement: every episode counted once, in the class its two outcomes give
    classes = ("both_succeed", "both_fail", "sim_only", "hardware_only")
    assert sum(agree[c] for c in classes) == agree["compared"] == episodes
    for c in classes:
        assert agree[c] == sum(r["agreement"] == c for r in rows)
    for r in rows:
        expected = {
            (True, True): "both_succeed",
            (False, False): "both_fail",
            (True, False): "sim_only",
            (False, True): "hardware_only",
        }[(r["sim"]["success"], r["hardware"]["success"])]
        assert r["agreement"] == expected
    assert agree["rate"] == pytest.approx((agree["both_succeed"] + agree["both_fail"]) / episodes)
    assert sim_wins - hw_wins == agree["sim_only"] - agree["hardware_only"]
    # the first pose of every episode, on both paths, every joint
    pose = report["first_pose"]
    assert pose is not None and pose["episodes"] == episodes and pose["joints"] == JOINTS
    assert set(pose["max_abs_diff"]) == set(JOINTS) and _finite(list(pose["max_abs_diff"].values()))
    for r in rows:
        assert len(r["first_pose"]["sim"]) == len(r["first_pose"]["hardware"]) == len(JOINTS)
        assert _finite(r["first_pose"]["sim"]) and _finite(r["first_pose"]["hardware"])
        assert r["first_pose"]["max_abs_diff"] == pytest.approx(
            np.max(np.abs(np.subtract(r["first_pose"]["sim"], r["first_pose"]["hardware"]))), abs=2e-4
        )
        assert r["scene_max_abs_diff"] is not None and _finite(r["scene_max_abs_diff"])


def test_state_policy_parity_on_the_mock_arm(tmp_path, capsys):
    report = _run(tmp_path, "grasp_state", 3)
    _check_common(report, 3)
    assert report["task"] == "grasp" and report["images"] is None
    # seed k built the same scene on both paths, and both start the episode from the same pose
    assert report["scene"]["max_abs_diff"] < 0.005  # m: a settled object, not a moved one
    assert report["first_pose"]["max_abs_diff_overall"] < 0.05
    printed = capsys.readouterr().out
    assert "simulation" in printed and "hardware path" in printed and "agreement" in printed


def test_the_so101s_drive_to_its_start_pose_leaves_the_scene_as_placed(tmp_path):
    """The SO-101's arm passes over the table on its way from its rest pose to the task's start pose and pushed the
    object of seed 3,000,000 by 7.7 cm; the mock puts it back where the scene placed it, as an operator sets the
    object down once the arm is in place, so both paths start the same scene."""
    report = _run(tmp_path, "so101_grasp_state", 1, "--max-steps", "3", robot="mock/so101")
    assert report["per_episode"][0]["scene_max_abs_diff"] < 0.002


@pytest.mark.realsense
def test_camera_policy_parity_on_the_mock_arm_measures_the_first_frames(tmp_path):
    report = _run(tmp_path, "grasp_rgbd", 2, "--max-steps", "15")
    _check_common(report, 2)
    assert report["max_steps"] == 15
    # the camera path waits seconds for its renderer: the arm, parked at rest, must not have fallen onto the scene
    assert report["scene"]["max_abs_diff"] < 0.01
    for r in report["per_episode"]:
        assert r["sim"]["steps"] <= 15 and r["hardware"]["steps"] <= 15
    images = report["images"]
    assert images is not None and images["episodes"] == 2
    for side in ("sim", "hardware"):
        stats = images[side]
        assert len(stats["rgb_mean"]) == len(stats["rgb_std"]) == 3
        assert all(0 <= v <= 255 for v in stats["rgb_mean"]) and _finite(stats["rgb_std"])
        assert 0.0 <= stats["depth_zero_fraction"] <= 1.0
        assert stats["depth_median_m"] is not None and 0.0 < stats["depth_median_m"] < 10.0
    assert _finite(images["rgb_mean_abs_diff"]) and 0.0 <= images["rgb_mean_abs_diff"] <= 255.0
    for r in report["per_episode"]:
        frame = r["first_frame"]
        assert _finite(frame["sim"]["rgb_mean"] + frame["hardware"]["rgb_mean"] + [frame["rgb_mean_abs_diff"]])
    # the episode means are the means of the per-episode figures
    per_ep = [r["first_frame"]["hardware"]["depth_zero_fraction"] for r in report["per_episode"]]
    assert images["hardware"]["depth_zero_fraction"] == pytest.approx(np.mean(per_ep), abs=1e-4)
    age = report["frame_age_ms"]  # present when the deploy logs it per cycle
    if age is not None and age.get("count"):
        assert _finite([age["p50"], age["p90"], age["max"]]) and 0 <= age["p50"] <= age["p90"] <= age["max"]


@pytest.mark.realsense
@pytest.mark.slow
def test_the_grasp_camera_student_transfers_through_the_camera_path(tmp_path):
    """The shipped grasp student on the mock arm, nominal reality, 10 seeds (in distribution: the seeds of the
    README's figure): it succeeded in 29 of 30 there against 28 of 30 in simulation; before the depth-hole filling
    and the rest-pose start, in 3 of 10. At least 7 of 10, and no more than 3 episodes lost to the camera path."""
    report = _run(tmp_path, "grasp_rgbd", 10)
    _check_common(report, 10)
    assert report["hardware"]["successes"] >= 7, report["agreement"]
    assert report["agreement"]["sim_only"] <= 3, report["agreement"]
    assert report["images"]["hardware"]["depth_zero_fraction"] < 0.005


@pytest.mark.realsense
@pytest.mark.slow
def test_the_so101_camera_student_transfers_through_the_feetech_and_camera_path(tmp_path):
    """The shipped SO-101 student on the mock SO-101 (Feetech bytes, RealSense software device), nominal reality, 10
    seeds (in distribution: the default deploy seeds, where `s2r deploy` measured 28 of 30; on 30 unseen seeds from
    6,100,000 it succeeded in 27 against 28 in simulation; the student before issue 28's continuation runs, 22 of 30
    on 6,000,000). At least 7 of 10, and no more than 3 episodes lost to the hardware path."""
    report = _run(tmp_path, "so101_grasp_rgbd", 10, robot="mock/so101")
    assert report["hardware"]["successes"] >= 7, report["agreement"]
    assert report["agreement"]["sim_only"] <= 3, report["agreement"]


def test_image_stats_ignore_missing_depth_in_the_median():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0], rgb[:2, :, 1] = 200, 100
    depth = np.full((4, 4, 1), 0.5, np.float32)
    depth[0, :2] = 0.0  # two pixels with no reading
    depth[3] = 0.9
    stats = image_stats(rgb, depth)
    assert stats["rgb_mean"] == [200.0, 50.0, 0.0]
    assert stats["rgb_std"] == [0.0, 50.0, 0.0]
    assert stats["depth_zero_fraction"] == pytest.approx(2 / 16)
    assert stats["depth_median_m"] == pytest.approx(0.5)  # of the 14 readings, not of 16 pixels
    assert image_stats(rgb, np.zeros((4, 4)))["depth_median_m"] is None


@pytest.mark.parametrize(
    ("bundle", "robot", "words"),
    [
        ("navigate_state", ARM, ("navigate policy", "grasp robot")),
        ("grasp_rgbd", "mock/turtlebot3_burger", ("grasp policy", "navigate robot")),
        ("grasp_state", "openmanipulator_x", ("not a mock robot",)),
    ],
)
def test_parity_refuses_a_bundle_and_robot_of_different_tasks(tmp_path, capsys, bundle, robot, words):
    out = tmp_path / "parity.json"
    argv = ["parity", "--policy", f"policies/bundles/{bundle}", "--robot", robot, "--episodes", "1"]
    code = main([*argv, "--quiet", "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert all(w in err for w in words), err
    assert not out.exists()  # refused before anything ran

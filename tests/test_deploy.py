"""Deployment end to end on the mock arm: the shipped state policy drives the real driver code over a pseudo-
terminal into a PyBullet reality, through the safety filter, at the control rate; the log records it; SIGINT ends
a run parked with torque off and a readable log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from policies.deploy import DeployConfig, deploy
from policies.replay_check import check_policy
from real.log_reader import log_info, read_log
from real.robot import SETTLE_TOLERANCE
from robot.config_file import load_hardware_config
from robot.spec import robot_signature

pytestmark = pytest.mark.slow


def _sent_within_limits(log) -> np.ndarray:
    """The commands a mock-arm log says were sent, checked to lie within the joint limits."""
    config = load_hardware_config("mock/openmanipulator_x")
    sent = np.array([m.data["sent"] for m in read_log(log, topics=["/command"])])
    lower = np.array([m.limits.lower for m in config.motors])
    upper = np.array([m.limits.upper for m in config.motors])
    assert np.all(sent >= lower - 1e-9) and np.all(sent <= upper + 1e-9)
    return sent


@pytest.mark.parametrize("name", ["openmanipulator_x", "turtlebot3_burger"])
def test_mock_configs_are_the_same_robots(name):
    real, mock = load_hardware_config(name), load_hardware_config(f"mock/{name}")
    assert robot_signature(real) == robot_signature(mock)  # a bundle trained for one runs on the other
    assert mock.mock is not None and real.mock is None


def test_state_policy_grasps_on_the_mock_arm_and_everything_is_logged(tmp_path):
    log = tmp_path / "grasp.mcap"
    summary = deploy(
        DeployConfig(
            robot="mock/openmanipulator_x",
            policy="policies/bundles/grasp_state",
            episodes=2,
            log=str(log),
            reality=None,
            status=False,
        )
    )
    assert summary.ended == "completed", summary.message
    assert [e.outcome for e in summary.episodes] == ["success", "success"] and summary.success_rate == 1.0
    assert summary.loop["cycle_ms_p50"] == pytest.approx(100.0, abs=5.0) and summary.loop["overruns"] <= 1
    info = log_info(log)
    topics = info["topics"]
    steps = sum(e.steps for e in summary.episodes)
    for topic in ("/joint_states", "/policy/observation", "/policy/action", "/command", "/loop"):
        assert topics[topic]["messages"] == steps, topic
    assert info["metadata"]["robot"] == "openmanipulator_x_mock"
    # what was sent is the filtered command: inside the limits and never more than max_step from the last
    _sent_within_limits(log)
    lifecycle = [m.data for m in read_log(log, topics=["/lifecycle"])]
    ids = [m.id for m in load_hardware_config("mock/openmanipulator_x").motors]
    # torque off as read back from every servo, not assumed
    assert lifecycle[-1] == {
        "state": "finalized",
        "ended": "completed",
        "torque": False,
        "torque_off": ids,
        "unreachable": {},
    }
    assert summary.torque_off == {"off": ids, "unreachable": {}} and summary.parked is True


def test_sigint_held_down_parks_turns_torque_off_and_leaves_a_whole_log(tmp_path):
    log = tmp_path / "stopped.mcap"
    cmd = [
        sys.executable,
        "-m",
        "policies.cli",
        "deploy",
        "--robot",
        "mock/openmanipulator_x",
        "--policy",
        "policies/bundles/grasp_state",
        "--episodes",
        "50",
        "--log",
        str(log),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if log.exists() and log.stat().st_size > 40_000:  # a few episodes in
            break
    # Ctrl-C held down: SIGINT every 10 ms until the process is gone, through the park, the torque-off, the log's
    # close and the summary
    while proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.01)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "ended: stopped SIGINT received: parked, torque off (read back on all 5 motors)" in out
    assert log_info(log)["damaged"] is None
    lifecycle = [m.data for m in read_log(log, topics=["/lifecycle"])]
    assert lifecycle[-1]["torque"] is False and lifecycle[-1].get("ended") == "stopped"
    assert log_info(log)["topics"]["/joint_states"]["messages"] > 10


def test_navigate_policy_drives_the_mock_base():
    summary = deploy(
        DeployConfig(robot="mock/turtlebot3_burger", policy="policies/bundles/navigate_state", status=False)
    )
    assert summary.ended == "completed" and summary.episodes[0].outcome == "success"
    assert summary.loop["cycle_ms_p50"] == pytest.approx(100.0, abs=5.0)


def test_a_noisy_bus_costs_retries_not_rate_and_nothing_unfiltered_is_sent(tmp_path):
    """5 % of servo replies lost and 1 % corrupted, per servo (a chained Fast Sync Read of the five fails about 27 %
    of the time): the bus retries, the loop keeps 10 Hz, faults are counted, and every command sent stays within
    the limits and the per-cycle step of the safety filter."""
    log = tmp_path / "noisy.mcap"
    summary = deploy(
        DeployConfig(
            robot="mock/openmanipulator_x",
            policy="policies/bundles/grasp_state",
            episodes=2,
            log=str(log),
            status=False,
            bus_faults={"drop_probability": 0.05, "corrupt_probability": 0.01},
        )
    )
    assert summary.ended == "completed", summary.message
    assert summary.bus["retries"] >= 5 and summary.bus["timeouts"] + summary.bus["corrupt"] >= 5
    assert summary.loop["cycle_ms_p50"] == pytest.approx(100.0, abs=5.0) and summary.loop["overruns"] <= 2
    config = load_hardware_config("mock/openmanipulator_x")
    sent = _sent_within_limits(log)
    step_limit = np.minimum(config.safety.max_step, np.array([m.limits.velocity for m in config.motors]) * 0.1)
    # within an episode, consecutive commands differ by at most the step limit; a cycle without a reading (all
    # retries failed) sends nothing, so the commands are split by the episodes' start times, not by step counts
    starts = [m.stamp_ns for m in read_log(log, topics=["/episode"]) if m.data["event"] == "start"]
    stamps = np.array([m.stamp_ns for m in read_log(log, topics=["/command"])])
    episode_of = np.searchsorted(starts, stamps, side="right")
    for k in range(1, len(starts) + 1):
        assert np.all(np.abs(np.diff(sent[episode_of == k], axis=0)) <= step_limit + 1e-9)
    assert len(sent) == sum(e.steps for e in summary.episodes) - summary.skipped_cycles


@pytest.mark.realsense
def test_camera_policy_on_the_mock_base_holds_through_a_camera_stall(tmp_path):
    """The rgbd student sees the reality through librealsense (a software device fed by a renderer process); a
    1 s camera stall makes the loop hold (wheels braked through the filter) at its rate, counted, then go on."""
    log = tmp_path / "stall.mcap"
    summary = deploy(
        DeployConfig(
            robot="mock/turtlebot3_burger",
            policy="policies/bundles/navigate_rgbd",
            status=False,
            camera_stall=(2.0, 1.0),
            log=str(log),
            episodes=2,  # the second episode rebuilds the scene in the reality and in its render replica
            max_steps=40,
            # the stall is the subject here: the mock base's frames arrive 140-180 ms old, at the edge of the
            # student's trained ages, and on a busy 2-core host some pass it (the frame-age refusal has its own test)
            max_frame_age_s=0.5,
        )
    )
    assert len(summary.episodes) == 2, summary.message
    assert summary.ended == "completed", summary.message
    assert summary.stalled_cycles >= 3 and summary.camera["frames"] >= 5
    assert summary.loop["cycle_ms_p50"] == pytest.approx(100.0, abs=5.0)
    topics = log_info(log)["topics"]
    assert topics["/camera/color"]["messages"] >= 5 and topics["/camera/depth"]["messages"] >= 5
    stalls = [m for m in read_log(log, topics=["/safety"]) if m.data["kind"] == "camera_stall"]
    assert len(stalls) == summary.stalled_cycles
    # the policy acted only on fresh frames: one observation per non-stalled cycle
    assert topics["/policy/action"]["messages"] == topics["/command"]["messages"] - summary.stalled_cycles
    # the log replays: the reduced frames it acted on were kept losslessly, so its actions recompute exactly
    check = check_policy(log, "navigate_rgbd")
    assert check["matches"] and check["max_abs_difference"] == 0.0 and check["cycles"] >= 5


@pytest.mark.realsense
def test_grasp_camera_student_deploys_on_the_mock_arm_with_its_crop(tmp_path):
    """The example grasp student was trained on a supersampled crop of the table camera (bundle.yaml ``camera``);
    on the mock arm it acts on librealsense frames cut and reduced the same way (real.robot.reduce_frame)."""
    from policies.loader import load

    policy = load("policies/bundles/grasp_rgbd")
    assert policy.meta["camera"]["crop"] == [96, 96, 448, 336]
    log = tmp_path / "grasp_rgbd.mcap"
    summary = deploy(
        DeployConfig(
            robot="mock/openmanipulator_x",
            policy="policies/bundles/grasp_rgbd",
            status=False,
            log=str(log),
            max_steps=15,
        )
    )
    assert summary.ended == "completed", summary.message
    assert summary.camera["frames"] >= 5
    topics = log_info(log)["topics"]
    assert topics["/policy/action"]["messages"] >= 5 and topics["/camera/color"]["messages"] >= 5
    # the episode starts where the simulation's does, not from a pose collapsed while the renderer started
    from robot.tasks.grasp import GraspTask

    start = GraspTask(load_hardware_config("mock/openmanipulator_x")).start_pose()
    first = next(iter(read_log(log, topics=["/joint_states"]))).data["position"]
    np.testing.assert_allclose(first, start, atol=0.03)
    # how old the frames acted on were, logged per cycle and summarized
    loops = [m.data for m in read_log(log, topics=["/loop"])]
    ages = [d["frame_age_ms"] for d in loops]
    assert all(a is None or a >= 0 for a in ages) and sum(a is not None for a in ages) >= 5
    assert 0 <= summary.camera["frame_age_ms_p50"] <= summary.camera["frame_age_ms_max"]
    # from the capture (the simulated D435 stamps frames in host time), which precedes the arrival
    assert summary.camera["frame_age_from"] == "capture"
    stamped = [d for d in loops if d["frame_captured_ns"] is not None]
    assert len(stamped) >= 5 and all(d["frame_captured_ns"] <= d["frame_arrived_ns"] for d in stamped)
    # no frame older than the policy trained on was acted on
    limit_ms = max(policy.trained_frame_age_s, 0.1) * 1e3
    assert summary.camera["max_frame_age_ms"] == pytest.approx(limit_ms)
    assert summary.camera["frame_age_ms_max"] <= limit_ms
    # the log replays: the reduced frames the student acted on were kept losslessly, so its actions recompute exactly
    check = check_policy(log, "grasp_rgbd")
    assert check["matches"] and check["max_abs_difference"] == 0.0 and check["cycles"] >= 5
    # and it opens in Foxglove without plugins: images, calibration and frames in the foxglove-sdk's schemas
    from mcap.reader import make_reader

    with open(log, "rb") as f:
        summary_ = make_reader(f).get_summary()
    schema_of = {c.topic: summary_.schemas[c.schema_id].name for c in summary_.channels.values()}
    assert (
        schema_of["/camera/color"] == "foxglove.CompressedImage" and schema_of["/camera/depth"] == "foxglove.RawImage"
    )
    assert (
        schema_of["/camera/calibration"] == "foxglove.CameraCalibration"
        and schema_of["/tf"] == "foxglove.FrameTransforms"
    )
    assert schema_of["/policy/observation/rgb"] == "foxglove.RawImage"
    joints = next(iter(read_log(log, topics=["/joint_states"]))).data
    assert joints["name"] == ["joint1", "joint2", "joint3", "joint4", "gripper"]
    tf = next(iter(read_log(log, topics=["/tf"]))).data["transforms"]
    assert {"link2", "table_link", "table_optical"} <= {t["child_frame_id"] for t in tf}


@pytest.mark.realsense
def test_a_camera_policy_holds_on_frames_older_than_it_trained_on_and_stops_when_none_is_younger(tmp_path):
    """Frames always older than the allowed age (here 20 ms: the simulated camera's render alone takes longer) are
    never acted on: every cycle holds, and the run stops once no younger frame has come for ``max_stall_s``."""
    log = tmp_path / "stale.mcap"
    summary = deploy(
        DeployConfig(
            robot="mock/turtlebot3_burger",
            policy="policies/bundles/navigate_rgbd",
            status=False,
            log=str(log),
            max_steps=60,
            max_frame_age_s=0.02,
            max_stall_s=1.0,
        )
    )
    assert summary.ended == "safety_stop" and "no frame younger than 20 ms" in summary.message
    assert summary.camera["frames"] >= 3  # frames came, and were refused
    assert summary.stalled_cycles >= 8
    assert "/policy/action" not in log_info(log)["topics"]  # the policy never acted
    assert summary.torque_off["unreachable"] == {} and len(summary.torque_off["off"]) == 2  # read back: both wheels


def test_sigint_in_process_leaves_every_emulated_servo_with_torque_off(tmp_path):
    """The signal arrives mid-episode; afterwards the servo emulator itself says torque is off on every motor,
    and the arm was parked at its rest pose first."""
    import threading

    from mock.hardware import MockHardware

    config = load_hardware_config("mock/openmanipulator_x")
    hardware = MockHardware(config, None, seed=3_000_000)
    try:
        timer = threading.Timer(2.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        summary = deploy(
            DeployConfig(
                robot="mock/openmanipulator_x",
                policy="policies/bundles/grasp_state",
                episodes=50,
                status=False,
                log=str(tmp_path / "int.mcap"),
            ),
            hardware=hardware,
        )
        timer.join()
        assert summary.ended == "stopped"
        servos = hardware.emulator.servos.values()
        assert [s.get("torque_enable") for s in servos] == [0] * 5
        # parked, read from the servos: within PARK_TOLERANCE of rest, or settled within SETTLE_TOLERANCE (a P-only
        # loop holding the arm against gravity stops short: 30-45 mrad on the elbow, depending on where the signal
        # caught the arm)
        assert summary.parked is True
        rest = np.array([config.arm.rest[j] for j in config.joint_names])
        np.testing.assert_allclose(
            [m.position for m in hardware.emulator.servos.values()][:4], rest[:4], atol=SETTLE_TOLERANCE
        )
    finally:
        hardware.close()


def test_adaptive_bundle_deploys_with_its_estimate_logged(tmp_path):
    from stable_baselines3.common.vec_env import DummyVecEnv

    from policies.osi import OSIConfig, train_osi
    from policies.sb3_actor import FlattenKeys
    from policies.train import TrainConfig, TrainingRun, state_spec
    from sim.envs.factory import task_env

    # an untrained universal policy, as s2r train --universal writes it, and a quickly fitted estimator
    run = TrainingRun(TrainConfig(task="grasp", out=str(tmp_path / "run"), n_envs=1, universal=True))
    env = task_env("grasp", "default", universal=True)
    run.spec, run.dynamics = state_spec(env), env.dynamics
    run.normalization = {"mean": np.zeros(run.spec.size, np.float32), "std": np.ones(run.spec.size, np.float32)}
    model = run._new_model(DummyVecEnv([lambda: FlattenKeys(task_env("grasp", "default", universal=True), run.spec)]))
    run.write_bundle(model, tmp_path / "up", step=0)
    cfg = OSIConfig(
        policy=str(tmp_path / "up"), out=str(tmp_path / "osi"), steps=200, history=4, compare_histories=[4], epochs=1
    )
    train_osi(cfg, progress=False)
    with pytest.raises(ValueError, match="--adapt"):
        deploy(DeployConfig(robot="mock/openmanipulator_x", policy=str(tmp_path / "osi"), status=False))
    log = tmp_path / "adapt.mcap"
    summary = deploy(
        DeployConfig(
            robot="mock/openmanipulator_x",
            policy=str(tmp_path / "osi"),
            adapt=True,
            max_steps=15,
            log=str(log),
            status=False,
        )
    )
    assert summary.ended == "completed"
    estimates = [m.data for m in read_log(log, topics=["/osi/estimate"])]
    assert len(estimates) == summary.episodes[0].steps and "latency_s" in estimates[0]

"""The base's laser scanner as both backends see it: the reduction to the policy's beams, the sensor's place in
the config, the simulated scan in both engines, and the LDS emulator serving a reality's room to the real driver
over a pseudo-terminal; a navigation route's room layout."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from robot.config_file import load_hardware_config
from robot.description import ConfigError
from robot.lidar import READINGS, SCAN_RANGE, measurement_noise, reduce_scan, sensor_scan


def _wall_scan(distance: float, bearing_deg: int) -> np.ndarray:
    scan = np.zeros(READINGS)
    scan[bearing_deg % READINGS] = distance
    return scan


def test_a_return_lands_in_its_beam_and_the_rest_read_the_range_limit():
    beams = reduce_scan(_wall_scan(1.2, 90))  # 90 deg: beam 4 of 16 (22.5 deg each), left of the base
    assert beams.dtype == np.float32 and beams.shape == (16,)
    assert beams[4] == pytest.approx(1.2) and np.all(np.delete(beams, 4) == SCAN_RANGE)
    assert reduce_scan(_wall_scan(1.2, 101))[4] == pytest.approx(1.2)  # inside the sector (+-11.25 deg)
    assert reduce_scan(_wall_scan(1.2, 102))[5] == pytest.approx(1.2)  # the next one
    assert np.all(reduce_scan(np.zeros(READINGS)) == SCAN_RANGE)  # no return anywhere
    # readings outside the sensor's 0.12-3.5 m count as no return, as the simulated sensor gives them
    assert np.all(reduce_scan(_wall_scan(0.05, 90)) == SCAN_RANGE) and np.all(reduce_scan(_wall_scan(3.6, 90)) == 3.0)
    with pytest.raises(ValueError, match="360 readings"):
        reduce_scan(np.zeros(100))


def test_the_mount_is_undone_so_beams_are_measured_from_the_base():
    """A sensor 0.032 m behind the base's origin, turned 90 deg: a point 1 m ahead of the base is seen at -90 deg
    1.032 m away, and lands in beam 0 at 1.0 m."""
    beams = reduce_scan(_wall_scan(1.032, -90), mount_xy=(-0.032, 0.0), mount_yaw=math.pi / 2)
    assert beams[0] == pytest.approx(1.0, abs=1e-4) and np.all(beams[1:] == SCAN_RANGE)
    # and the emulator's binning is its inverse: points seen from the base, binned as the mounted sensor sees them
    bearings = np.radians(np.arange(0, 360, 0.5))
    dist = np.where(np.abs(np.remainder(bearings + math.pi, 2 * math.pi) - math.pi) < 0.3, 1.0, np.inf)
    seen = sensor_scan(bearings, dist, (-0.032, 0.0), math.pi / 2)
    assert np.count_nonzero(seen) > 30 and reduce_scan(seen, (-0.032, 0.0), math.pi / 2)[0] == pytest.approx(1.0, 1e-3)


def test_measurement_noise_follows_the_datasheet_and_drops_readings():
    rng = np.random.default_rng(0)
    truth = np.full(READINGS, 2.0)
    noisy = np.stack([measurement_noise(truth, rng) for _ in range(200)])
    kept = noisy[noisy > 0]
    assert 0.01 < np.mean(noisy == 0) < 0.03  # 2 % dropouts
    assert np.std(kept) == pytest.approx(0.035 * 2.0, rel=0.1) and abs(np.mean(kept) - 2.0) < 0.01
    assert np.all(measurement_noise(np.zeros(READINGS), rng) == 0)  # no return stays no return
    assert np.mean(measurement_noise(np.full(READINGS, 3.45), rng) == 0) > 0.2  # noise pushes some past 3.5 m


def test_a_lidar_is_configured_and_checked(tmp_path):
    base = load_hardware_config("turtlebot3_burger")
    lidar = base.lidars[0]
    assert lidar.model == "LDS-01" and lidar.baudrate == 230400 and lidar.rate_hz == 5.0
    assert lidar.mount_xy_yaw[0] == pytest.approx([-0.032, 0.0])
    text = (load_hardware_config.__globals__["HARDWARE_CONFIG_DIR"] / "turtlebot3_burger.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("model: LDS-01", "model: LDS-01\n    max_scan_age_s: 0.1"))
    with pytest.raises(ConfigError, match="shorter than one revolution"):
        load_hardware_config(bad)
    bad.write_text(text.replace("model: LDS-01", "model: RPLIDAR"))
    with pytest.raises(ConfigError, match="lidars"):
        load_hardware_config(bad)


def test_the_state_observation_is_what_a_real_base_has():
    import gymnasium as gym

    from sim import TASK_IDS

    env = gym.make(TASK_IDS["navigate"], obs_mode="state")
    obs, info = env.reset(seed=4)
    core = env.unwrapped
    assert set(obs) == {"proprio", "scan", "effort"} and obs["scan"].shape == (16,) and obs["effort"].shape == (2,)
    clean = reduce_scan(core.lidar_scan(core.robot_pose()), *core.lidar_mount)
    assert np.median(np.abs(obs["scan"] - clean)) < 0.1  # the sensor's noise, not another quantity
    assert np.array_equal(info["privileged"]["scan"], obs["scan"])  # teachers see what the policy saw
    env.close()


def test_both_engines_scan_the_same_room():
    pytest.importorskip("mujoco", reason="the MuJoCo reality needs the mujoco wheel (.[mujoco], Python >= 3.11)")
    from mock.mujoco_reality import MujocoReality
    from mock.reality import Reality

    for seed in (1, 2):
        pb, mj = Reality("navigate", seed=seed), MujocoReality("navigate", seed=seed)
        a, b = pb.sensor_scan(), mj.sensor_scan()
        both = (a > 0) & (b > 0)
        assert np.mean(both) > 0.8 and np.percentile(np.abs(a - b)[both], 95) < 0.01
        pb.close(), mj.close()


def test_a_route_lays_the_room_out_around_its_goals():
    from mock.reality import Reality
    from sim.envs.navigate_env import ROOM_HALF

    goals = [[1.0, 0.0], [1.0, 1.0], [0.0, 0.5]]
    for seed in (0, 1, 2):
        world = Reality("navigate", seed=seed, goals=goals)
        core = world.core
        x, y, yaw = core.start_pose
        c, s = math.cos(yaw), math.sin(yaw)
        for g, w in zip(goals, core.goals_world, strict=True):
            assert np.allclose(w, [x + c * g[0] - s * g[1], y + s * g[0] + c * g[1]])
            assert np.all(np.abs(w) < ROOM_HALF - 0.3)
            assert all(np.hypot(w[0] - o[0], w[1] - o[1]) > o[2] + 0.35 for o in core.obstacles)
        assert np.allclose(world.goal(), goals[0], atol=0.01)  # relative to the robot at its start
        world.set_goal(2)
        assert np.allclose(world.goal(), goals[2], atol=0.01)
        world.close()
    with pytest.raises(ValueError, match=r"goals \[\[5.0, 0.0\]\].*do not fit"):
        Reality("navigate", seed=0, goals=[[5.0, 0.0]])


def test_the_emulator_serves_the_room_to_the_real_driver():
    from mock.hardware import MockHardware
    from real.lidar.reader import StaleScan

    config = load_hardware_config("mock/turtlebot3_burger")
    hardware = MockHardware(config, None, seed=7)
    emulator = hardware.lidars["lds"]
    try:
        assert not emulator.streaming  # silent until the driver's start command
        reader = hardware.lidar("lds").connect()
        assert emulator.streaming
        time.sleep(0.7)
        scan = reader.latest(config.lidars[0].max_scan_age_s)
        assert scan.packets == 60 and scan.rpm == pytest.approx(300.0)
        assert reader.stats["checksum_errors"] == 0 and reader.stats["scans"] >= 3
        truth = reduce_scan(hardware.reality.sensor_scan(), *config.lidars[0].mount_xy_yaw)
        seen = reduce_scan(scan.ranges_m, *config.lidars[0].mount_xy_yaw)
        assert np.median(np.abs(seen - truth)) < 0.1, (seen, truth)
        emulator.pause()  # the scanner vanishes
        time.sleep(0.8)
        with pytest.raises(StaleScan, match="lidar lds: the newest scan is"):
            reader.latest(config.lidars[0].max_scan_age_s)
        emulator.resume()
        time.sleep(0.5)
        assert reader.latest(config.lidars[0].max_scan_age_s).packets == 60
        reader.close()
        time.sleep(0.2)
        assert not emulator.streaming  # the driver's stop command
    finally:
        hardware.close()

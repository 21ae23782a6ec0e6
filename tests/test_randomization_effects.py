"""Each randomization term changes what it claims: read back from PyBullet, or measured on rendered pixels."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest

import sim  # noqa: F401
from sim.randomization.image_noise import D435_BASELINE_M, D435_SUBPIXEL


@pytest.fixture
def grasp():
    envs = []

    def make(obs_mode="state", **kw):
        env = gym.make("s2r/Grasp-v0", obs_mode=obs_mode, randomization="default", **kw)
        envs.append(env)
        return env

    yield make
    for e in envs:
        e.close()


def _dyn(env, body, link=-1):
    return p.getDynamicsInfo(body, link, physicsClientId=env.unwrapped.client)


def test_object_and_table_dynamics(grasp):
    env = grasp(params={"object.rolling_friction": 0.0007})  # a target the default config leaves alone
    pins = {
        "object_mass": 0.123,
        "object_friction": 0.61,
        "object_spinning_friction": 0.0021,
        "object_restitution": 0.25,
        "object_inertia_scale": 1.4,
        "object_com_offset": [0.002, -0.001, 0.0015],
        "table_friction": 1.1,
        "table_restitution": 0.2,
    }
    _, info = env.reset(seed=2, options={"domain": {"object_inertia_scale": 1.0, "object_com_offset": [0, 0, 0]}})
    core = env.unwrapped
    base_inertia = np.array(_dyn(env, core.object_id)[2]) / info["params"]["object.mass"]
    kind = core.object_info["kind"]
    _, info = env.reset(seed=2, options={"domain": pins})
    d = _dyn(env, core.object_id)
    assert d[0] == pytest.approx(0.123)
    assert d[1] == pytest.approx(0.61)
    assert d[5] == pytest.approx(0.25) and d[6] == pytest.approx(0.0007) and d[7] == pytest.approx(0.0021)
    np.testing.assert_allclose(np.array(d[2]) / 0.123, base_inertia * 1.4, rtol=1e-5)
    if kind != "mesh":
        np.testing.assert_allclose(d[3], [0.002, -0.001, 0.0015], atol=1e-9)
    t = _dyn(env, core.table_id)
    assert t[1] == pytest.approx(1.1) and t[5] == pytest.approx(0.2)


def test_robot_links_servos_and_fingers(grasp):
    env = grasp()
    env.reset(seed=0, options={"domain": {"robot_mass_scale": 1.0, "robot_inertia_scale": 1.0}})
    core = env.unwrapped
    body = core.robot.body
    nominal = [_dyn(env, body, j)[:3] for j in core.robot.indices]
    pins = {
        "robot_mass_scale": 1.2,
        "robot_inertia_scale": 0.5,
        "servo_strength": 0.85,
        "latency_s": 0.031,
        "servo_position_gain_scale": 2.0,
        "joint_damping_scale": 10.0,
        "finger_friction_scale": 0.8,
    }
    env.reset(seed=0, options={"domain": pins})
    for j, (m, _, inertia) in zip(core.robot.indices, nominal, strict=True):
        d = _dyn(env, body, j)
        assert d[0] == pytest.approx(m * 1.2)
        np.testing.assert_allclose(d[2], np.array(inertia) * 1.2 * 0.5, rtol=1e-5)
    prm = core.robot.params
    limits = np.array([mo.limits.effort for mo in core.config.motors])
    np.testing.assert_allclose(prm.max_torque, limits * 0.85)
    assert prm.latency == pytest.approx(0.031)
    assert prm.position_gain[0] == pytest.approx(0.6)
    np.testing.assert_allclose(prm.damping, 0.1)
    assert _dyn(env, body, core.fingers[0])[1] == pytest.approx(1.5 * 0.8)


def test_base_geometry_strength_and_friction():
    env = gym.make("s2r/Navigate-v0", randomization="default")
    pins = {
        "wheel_radius_scale": 1.04,
        "track_scale": 0.96,
        "wheel_strength_asymmetry": 0.1,
        "base_mass_scale": 1.15,
        "floor_friction": 0.55,
        "wheel_friction_scale": 0.9,
    }
    env.reset(seed=0, options={"domain": pins})
    core, c = env.unwrapped, env.unwrapped.client
    body = core.robot.body
    left, right = core.robot.indices
    radius = p.getCollisionShapeData(body, left, physicsClientId=c)[0][3][1]  # cylinder: (length, radius, -)
    assert radius == pytest.approx(0.033 * 1.04)
    # parentFramePos is relative to the parent's centre of mass: the left-right difference is the track.
    track = p.getJointInfo(body, left, physicsClientId=c)[14][1] - p.getJointInfo(body, right, physicsClientId=c)[14][1]
    assert track == pytest.approx(0.160 * 0.96)
    torque = core.robot.params.max_torque
    assert torque[0] / torque[1] == pytest.approx(1.1 / 0.9)
    assert _dyn(env, body)[0] == pytest.approx(0.8257 * 1.15, rel=1e-4)
    assert _dyn(env, core.floor_id)[1] == pytest.approx(0.55)
    assert _dyn(env, body, left)[1] == pytest.approx(0.9)
    env.close()


def test_a_reused_env_gets_the_requested_wheel_geometry_at_every_reset():
    """The wheel radius and track edit the URDF: every reset of one env must load the geometry it asked for, not
    the first episode's (PyBullet caches files by path). The only URDF-editing terms; the arm's are all set on the
    loaded bodies (test_robot_links_servos_and_fingers)."""
    env = gym.make("s2r/Navigate-v0", randomization="default")
    core, c = env.unwrapped, env.unwrapped.client
    for radius_scale, track_scale in [(0.9, 1.05), (1.1, 0.95), (1.0, 1.0), (1.2, 1.08), (0.9, 1.05)]:
        env.reset(seed=0, options={"domain": {"wheel_radius_scale": radius_scale, "track_scale": track_scale}})
        body = core.robot.body
        left, right = core.robot.indices
        radius = p.getCollisionShapeData(body, left, physicsClientId=c)[0][3][1]
        track = (
            p.getJointInfo(body, left, physicsClientId=c)[14][1] - p.getJointInfo(body, right, physicsClientId=c)[14][1]
        )
        assert (radius, track) == (pytest.approx(0.033 * radius_scale), pytest.approx(0.160 * track_scale))
    env.close()


def test_pushes_fire_every_n_steps_and_move_the_base():
    def speed_after_push(push):
        env = gym.make("s2r/Navigate-v0", randomization="none", domain={"base_push": push})
        # randomization="none" keeps the term (strength 0) so the pinned push still fires every 30 steps.
        env.reset(seed=4)
        core = env.unwrapped
        vel = []
        for _ in range(31):
            _, _, term, trunc, info = env.step(np.zeros(2, dtype=np.float32))
            vel.append(np.array(p.getBaseVelocity(core.robot.body, physicsClientId=core.client)[0][:2]))
        env.close()
        return vel[29], vel[30], info

    still_before, still_after, _ = speed_after_push([0.0, 0.0])
    before, after, info = speed_after_push([5.0, 0.0])
    assert np.linalg.norm(still_after) < 0.01 and np.linalg.norm(before) < 0.01
    assert after[0] > 0.05  # pushed along +x during step 31 only
    assert info["domain"]["base_push"] == [5.0, 0.0]


def test_every_steps_terms_are_redrawn():
    env = gym.make("s2r/Navigate-v0", randomization="default")
    _, info = env.reset(seed=1)
    pushes = [info["domain"]["base_push"]]
    for _ in range(62):
        _, _, term, trunc, info = env.step(np.zeros(2, dtype=np.float32))
        pushes.append(info["domain"]["base_push"])
    env.close()
    # Drawn again at the start of steps 31 and 61 (after 30 and 60 completed steps).
    assert (
        pushes[30] == pushes[0] and pushes[31] != pushes[30] and pushes[60] == pushes[31] and pushes[61] != pushes[60]
    )


def test_camera_terms_move_the_view(grasp):
    env = grasp(obs_mode="rgbd", image_size=(80, 60))
    core = env.unwrapped
    zero = {
        "camera_position_offset": [0, 0, 0],
        "camera_rotation_offset": [0, 0, 0],
        "camera_focal_scale": 1.0,
        "camera_principal_offset": [0, 0],
    }
    env.reset(seed=0, options={"domain": zero})
    pos0, R0 = core.camera_pose()
    fx0 = core.intrinsics_obs.fx
    env.reset(
        seed=0,
        options={
            "domain": {
                **zero,
                "camera_position_offset": [0.02, -0.01, 0.015],
                "camera_focal_scale": 1.03,
                "camera_principal_offset": [8.0, -4.0],
            }
        },
    )
    pos1, R1 = core.camera_pose()
    np.testing.assert_allclose(R0.T @ (pos1 - pos0), [0.02, -0.01, 0.015], atol=1e-12)
    assert core.intrinsics_obs.fx == pytest.approx(fx0 * 1.03)
    assert core.intrinsics_camera.cx == pytest.approx(319.5 + 8.0) and core.intrinsics_camera.cy == pytest.approx(235.5)
    env.reset(seed=0, options={"domain": {**zero, "camera_rotation_offset": [0.0, 0.0, 0.1]}})
    _, R2 = core.camera_pose()
    yaw = np.arctan2((R0.T @ R2)[1, 0], (R0.T @ R2)[0, 0])
    assert yaw == pytest.approx(0.1)


NO_IMAGE_NOISE = {
    "image_noise_std": 0.0,
    "image_blur_sigma": 0.0,
    "image_brightness": 0.0,
    "image_contrast": 1.0,
    "image_gamma": 1.0,
    "image_jpeg_quality": 100.0,
}


def _table_patch(obs):
    return obs["rgb"][-12:, :, :].astype(float)  # the bottom rows see only the table


def test_lighting_and_textures_change_pixels(grasp):
    env = grasp(obs_mode="rgbd", image_size=(80, 60))
    plain = {
        "table_texture": "flat",
        "table_color_shift": [0, 0, 0],
        "light_ambient": 0.6,
        "light_shadow": 0.0,
        **NO_IMAGE_NOISE,
    }
    obs, _ = env.reset(seed=0, options={"domain": plain})
    base = _table_patch(obs)
    assert base.std(axis=(0, 1)).max() < 3.0  # a flat, evenly lit table
    obs, _ = env.reset(seed=0, options={"domain": {**plain, "light_ambient": 0.3}})
    assert _table_patch(obs).mean() < base.mean() - 10
    obs, _ = env.reset(seed=0, options={"domain": {**plain, "table_color_shift": [0.15, -0.15, -0.15]}})
    shifted = _table_patch(obs).mean(axis=(0, 1))
    assert shifted[0] > base.mean(axis=(0, 1))[0] + 5 and shifted[2] < base.mean(axis=(0, 1))[2] - 5
    obs, _ = env.reset(
        seed=0,
        options={
            "domain": {
                **plain,
                "table_texture": "checker",
                "table_texture_frequency": 8.0,
                "table_color2": [0.0, 0.0, 1.0],
            }
        },
    )
    assert _table_patch(obs).std(axis=(0, 1)).max() > 20


def test_image_level_noise(grasp):
    env = grasp(obs_mode="rgbd", image_size=(80, 60))
    clean = {
        **NO_IMAGE_NOISE,
        "depth_noise_scale": 0.0,
        "depth_edge_dropout": 0.0,
        "depth_dark_dropout": 0.0,
        "depth_random_dropout": 0.0,
        "table_texture": "flat",
        "light_shadow": 0.0,
    }
    obs, _ = env.reset(seed=0, options={"domain": clean})
    ref = obs["rgb"].astype(float)
    obs, _ = env.reset(seed=0, options={"domain": {**clean, "image_noise_std": 0.03}})
    assert (obs["rgb"].astype(float) - ref)[-12:].std() > 3
    obs, _ = env.reset(seed=0, options={"domain": {**clean, "image_brightness": 0.1}})
    assert (obs["rgb"].astype(float) - ref).mean() > 10
    obs, _ = env.reset(seed=0, options={"domain": {**clean, "image_jpeg_quality": 60.0}})
    assert np.abs(obs["rgb"].astype(float) - ref).mean() > 0.2
    # Depth: 1 mm quantization, noise growing with distance, dropout.
    obs, _ = env.reset(seed=0, options={"domain": clean})
    d0 = obs["depth"][:, :, 0]
    np.testing.assert_allclose(d0[d0 > 0], np.round(d0[d0 > 0], 3), atol=1e-6)
    obs, _ = env.reset(seed=0, options={"domain": {**clean, "depth_noise_scale": 2.0}})
    err = obs["depth"][:, :, 0] - d0
    near, far = (d0 > 0) & (d0 < 0.6), d0 > 0.8
    assert err[far].std() > 1.5 * err[near].std() > 0
    # of the size the D435 model gives at the 640x480 stream's focal length, not at the 80x60 image's (8x larger)
    band = (d0 > 0.55) & (d0 < 0.65)
    model = 2.0 * d0[band] ** 2 * D435_SUBPIXEL / (env.unwrapped.intrinsics_camera.fx * D435_BASELINE_M)
    expected = np.sqrt(np.mean(model**2) + 0.001**2 / 6)  # and two 1 mm roundings
    assert 0.7 * expected < err[band].std() < 1.4 * expected
    obs, _ = env.reset(seed=0, options={"domain": {**clean, "depth_random_dropout": 0.01, "depth_edge_dropout": 0.5}})
    dropped = (d0 > 0) & (obs["depth"][:, :, 0] == 0)
    assert 0.005 < dropped.mean() < 0.1


def test_proprioceptive_noise_and_period_jitter(grasp):
    env = grasp()
    quiet = {"proprio_position_noise": 0.0, "proprio_velocity_noise": 0.0, "control_period_jitter": 0.0}
    env.reset(seed=0, options={"domain": {**quiet, "proprio_position_noise": 0.003}})
    core = env.unwrapped
    errs = []
    for _ in range(20):
        obs, *_ = env.step(np.zeros(4, dtype=np.float32))
        errs.append(obs["proprio"][:5] - core.robot.read().position)
    assert 0.002 < np.std(errs) < 0.004
    env.reset(seed=0, options={"domain": {**quiet, "control_period_jitter": 0.008}})
    times = []
    for _ in range(20):
        env.step(np.zeros(4, dtype=np.float32))
        times.append(core.robot.time)
    periods = np.diff(times)
    assert periods.min() < 0.1 - 0.003 and periods.max() > 0.1 + 0.003 and np.all(np.abs(periods - 0.1) <= 0.0085)


def test_effort_readings_carry_their_scale_and_noise_and_leave_the_other_readings_alone(grasp):
    """The ``effort`` observation is the simulated joint effort times ``proprio_effort_scale`` plus noise of std
    ``proprio_effort_noise``, drawn from a stream of its own: the same seed gives the same proprioception with or
    without effort noise."""
    env = grasp()
    core = env.unwrapped
    base = {"proprio_position_noise": 0.002, "proprio_velocity_noise": 0.03, "control_period_jitter": 0.0}
    runs = {}
    for noise, scale in ((0.0, 1.0), (0.0, 1.15), (0.04, 1.0)):
        env.reset(seed=4, options={"domain": {**base, "proprio_effort_noise": noise, "proprio_effort_scale": scale}})
        readings = []
        for _ in range(15):
            obs, *_ = env.step(np.array([0.3, 0.0, -0.5, 0.0], dtype=np.float32))
            readings.append((obs["proprio"], obs["effort"], core.robot.read().effort))
        runs[(noise, scale)] = readings
    for (proprio, effort, true), (proprio_s, effort_s, true_s) in zip(runs[(0.0, 1.0)], runs[(0.0, 1.15)], strict=True):
        np.testing.assert_array_equal(proprio, proprio_s)
        np.testing.assert_allclose(effort, true, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(effort_s, 1.15 * true_s, rtol=1e-5, atol=1e-6)
    errors = np.array([effort - true for _, effort, true in runs[(0.04, 1.0)]])
    # 0.04 N*m of servo torque: the same on the arm's joints, divided by its scale (m/rad) on the gripper
    scale = np.array([m.scale for m in core.config.motors])
    assert np.all(np.abs(errors.std(0) * scale - 0.04) < 0.015), errors.std(0)
    for (proprio, *_), (proprio_n, *_) in zip(runs[(0.0, 1.0)], runs[(0.04, 1.0)], strict=True):
        np.testing.assert_array_equal(proprio, proprio_n)
    assert np.abs([true for *_, true in runs[(0.0, 1.0)]]).max() > 0.05  # the arm's joints do carry load


def test_default_randomization_varies_the_domain(grasp):
    env = grasp()
    domains = [env.reset(seed=s)[1]["domain"] for s in range(20)]
    for name in ("object_mass", "latency_s", "light_direction", "table_texture", "camera_focal_scale"):
        values = [str(d[name]) for d in domains]
        assert len(set(values)) > 1, name


def _two_values(term):
    from sim.randomization.config import Choice, Hsv, LogUniform, Normal, Uniform, hsv_to_rgb

    d = term.distribution
    size = term.size or 1

    def shaped(x):
        x = np.broadcast_to(np.asarray(x, dtype=float), (size,)).tolist()
        return x if term.size else x[0]

    if isinstance(d, Choice):
        return d.options[0], d.options[1]
    if isinstance(d, Hsv):  # the darkest grey and the brightest saturated color of the ranges
        return hsv_to_rgb(d.hue[0], d.saturation[0], d.value[0]), hsv_to_rgb(d.hue[1], d.saturation[1], d.value[1])
    if isinstance(d, Uniform | LogUniform):
        return shaped(d.low), shaped(d.high)
    assert isinstance(d, Normal)
    return shaped(np.asarray(d.mean) - np.asarray(d.std)), shaped(np.asarray(d.mean) + np.asarray(d.std))


VISUAL = ("light.", "camera.", "image.", "depth.", "texture.")


@pytest.mark.parametrize("task", ["s2r/Grasp-v0", "s2r/Navigate-v0"])
def test_every_visual_term_changes_the_rendered_observation(task):
    """Pin each visual term to two values of its range: the color (or, for depth terms, depth) image changes."""
    env = gym.make(task, obs_mode="rgbd", image_size=(64, 48), randomization="default")
    core = env.unwrapped
    terms = [t for t in core.randomization.terms if t.target.startswith(VISUAL)]
    assert len(terms) > 30
    # Patterns on every element (so colors and frequencies show) and shadows on (light distance acts on them).
    base = {t.name: "checker" for t in terms if t.target.endswith(".pattern")}
    base.update(light_shadow=1.0, depth_noise_scale=1.0, depth_dark_dropout=0.0, depth_edge_dropout=0.0)
    unchanged = []
    for term in terms:
        a, b = _two_values(term)
        if a == b:
            continue  # a constant (depth_unit)
        if task == "s2r/Navigate-v0" and term.name.startswith("robot_"):
            continue  # the base's camera does not see the base
        if term.name == "depth_dark_dropout":
            continue  # needs dark surfaces in view; test_image_level_noise covers the mechanism
        obs_a, _ = env.reset(seed=1, options={"domain": {**base, term.name: a}})
        obs_b, _ = env.reset(seed=1, options={"domain": {**base, term.name: b}})
        key = "depth" if term.target.startswith("depth.") else "rgb"
        if np.array_equal(obs_a[key], obs_b[key]):
            unchanged.append(term.name)
    env.close()
    assert not unchanged, f"terms with no visible effect: {unchanged}"


def test_depth_dropout_hits_dark_surfaces_and_edges():
    from sim.randomization.image_noise import ImageNoise, ImageNoiseParams

    rgb = np.full((100, 100, 3), 200, np.uint8)
    rgb[:, :50] = 10  # dark left half
    depth = np.full((100, 100), 1.0, np.float32)
    depth[:, 70:] = 2.0  # a depth step between columns 69 and 70 (across the stereo baseline)
    depth[80:, :] = 3.0  # and one between rows 79 and 80 (along it: no occlusion)
    dark = ImageNoise(ImageNoiseParams(depth_dark_dropout=0.5), seed=0).depth(depth, rgb, 60.0)
    assert (dark[:, :50] == 0).mean() == pytest.approx(0.5, abs=0.05)
    assert (dark[:, 50:] == 0).mean() == 0.0
    edge = ImageNoise(ImageNoiseParams(depth_edge_dropout=1.0), seed=0).depth(depth, rgb, 60.0)
    missing = edge == 0
    assert sorted(set(np.nonzero(missing)[1])) == [69, 70]
    assert missing[:80, 69:71].all() and not missing[80:].any()


def test_color_lookup_table_equals_albumentations():
    import albumentations as A

    from sim.randomization.image_noise import ImageNoise, ImageNoiseParams

    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for b, c, g in ((0.08, 1.15, 0.85), (-0.1, 0.8, 1.2), (0.0, 1.0, 1.1)):
        ours = ImageNoise(ImageNoiseParams(brightness=b, contrast=c, gamma=g), seed=0).color(rgb)
        ref = A.RandomBrightnessContrast().apply(rgb, alpha=c, beta=b * 255.0)
        ref = A.RandomGamma().apply(ref, gamma=g)
        np.testing.assert_array_equal(ours, ref)


def test_depth_noise_follows_the_d435_model_and_stays_positive():
    """RMS error k z^2 with k = scale * subpixel / (f * baseline), unbiased, never negative out to the range."""
    from sim.randomization.image_noise import D435_BASELINE_M, D435_SUBPIXEL, ImageNoise, ImageNoiseParams

    focal, scale = 60.0, 1.5
    k = scale * D435_SUBPIXEL / (focal * D435_BASELINE_M)
    for z in (0.5, 1.0, 2.0):
        noise = ImageNoise(ImageNoiseParams(depth_noise_scale=scale), seed=3, max_depth_m=10.0)
        depth = np.full((200, 200), z, np.float32)
        err = noise.depth(depth, np.zeros((200, 200, 3), np.uint8), focal) - z
        assert err.std() == pytest.approx(k * z**2, rel=0.05)
        assert abs(err.mean()) < 0.05 * k * z**2
    far = ImageNoise(ImageNoiseParams(depth_noise_scale=2.0, depth_unit=0.001), seed=0, max_depth_m=10.0)
    out = far.depth(np.full((200, 200), 10.0, np.float32), np.zeros((200, 200, 3), np.uint8), focal)
    assert out.min() >= 0.0 and (out > 0).mean() > 0.95


def test_image_noise_refuses_a_noise_std_its_bank_would_clip():
    from sim.randomization.image_noise import ImageNoise, ImageNoiseParams

    with pytest.raises(ValueError, match="noise_std"):
        ImageNoise(ImageNoiseParams(noise_std=0.2), seed=0)
    rgb = np.full((64, 64, 3), 128, np.uint8)
    noisy = ImageNoise(ImageNoiseParams(noise_std=0.1), seed=0).color(rgb).astype(float)
    assert noisy.std() == pytest.approx(0.1 * 255, rel=0.05)


@pytest.mark.parametrize("task", ["s2r/Grasp-v0", "s2r/Navigate-v0"])
def test_a_stale_camera_frame_is_the_view_of_earlier_in_the_step(task):
    """``camera.frame_age`` of one control period shows the frame taken at the step's start: what a fresh camera
    showed one step earlier, while proprioception stays fresh."""
    fresh = gym.make(task, obs_mode="rgbd", randomization="none")
    stale = gym.make(task, obs_mode="rgbd", randomization="none")
    period = fresh.unwrapped.config.control_period
    obs_f, _ = fresh.reset(seed=3)
    obs_s, _ = stale.reset(seed=3, options={"params": {"camera.frame_age": period}})
    action = np.ones(fresh.action_space.shape, np.float32) * 0.8
    previous = obs_f["rgb"]
    moved = 0
    for _ in range(4):
        obs_f, *_ = fresh.step(action)
        obs_s, *_ = stale.step(action)
        np.testing.assert_array_equal(obs_s["rgb"], previous)  # the stale env sees the fresh env's last frame
        np.testing.assert_array_equal(obs_s["proprio"], obs_f["proprio"])  # the joints are read fresh in both
        moved += int(np.any(obs_f["rgb"] != previous))
        previous = obs_f["rgb"]
    assert moved >= 3  # the view changed from step to step, so equality above is not trivial
    fresh.close()
    stale.close()


@pytest.mark.parametrize("task", ["s2r/Grasp-v0", "s2r/Navigate-v0"])
def test_a_frame_two_periods_old_is_the_view_of_the_step_before_and_leaves_the_physics_alone(task):
    """``camera.frame_age`` of two control periods reaches into the previous period (rendered in a saved state):
    the frame a fresh camera showed two steps earlier (the reset's view at the first step). Saving and restoring
    the state to render changes nothing in the simulation: proprioception stays equal to the fresh env's."""
    fresh = gym.make(task, obs_mode="rgbd", randomization="none")
    stale = gym.make(task, obs_mode="rgbd", randomization="none")
    period = fresh.unwrapped.config.control_period
    obs_f, _ = fresh.reset(seed=4)
    obs_s, _ = stale.reset(seed=4, options={"params": {"camera.frame_age": 2 * period}})
    action = np.ones(fresh.action_space.shape, np.float32) * 0.8
    views = [obs_f["rgb"], obs_f["rgb"]]  # before the first step, the reset's view stands for both

    def pixels_apart(a: np.ndarray, b: np.ndarray) -> int:
        return int(np.any(a != b, axis=2).sum())

    for _ in range(5):
        obs_f, *_ = fresh.step(action)
        obs_s, *_ = stale.step(action)
        # a restored state places the links within float rounding of where they were: an edge pixel may flip
        assert pixels_apart(obs_s["rgb"], views[-2]) <= 4
        assert pixels_apart(obs_s["rgb"], obs_f["rgb"]) > 50  # not the fresh view: the comparison above means it
        np.testing.assert_array_equal(obs_s["proprio"], obs_f["proprio"])
        views.append(obs_f["rgb"])
    fresh.close()
    stale.close()

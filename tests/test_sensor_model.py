"""The mock path applies a reality's sensor terms so that a policy sees the simulation's strengths: camera errors
drawn per cell of the policy's view (mock.sensor_model.CameraSensor), then cropped and reduced by the robot's own
code (robot.frame_reduction.reduce_frame), measured against the simulation's ImageNoise on the reduced image;
encoder noise read through the servo bytes; pushes on the base in both engines."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from mock.sensor_model import CameraSensor, PolicyView, ServoReadingNoise, view_cells
from robot.frame_reduction import reduce_frame
from robot.intrinsics import Intrinsics
from sim.camera_model import RenderedFrame
from sim.randomization.config import load_randomization
from sim.randomization.image_noise import ImageNoise, image_noise_params

#: The grasp student's view: a 448x336 region of the 640x480 stream reduced to 64x64 (cells of 7 x 5.25 px).
VIEW = PolicyView((64, 64), (96, 96, 448, 336))
FOCAL = 615.0


@functools.cache
def _nominal(task: str = "grasp") -> dict:
    """Every param of ``task`` at its nominal value."""
    import gymnasium as gym

    from sim import TASK_IDS

    env = gym.make(TASK_IDS[task], obs_mode="state", randomization="none")
    try:
        return {name: t.nominal for name, t in env.unwrapped.targets.items()}
    finally:
        env.close()


@pytest.fixture(scope="module")
def nominal() -> dict:
    return _nominal()


def _scene(seed: int = 0) -> RenderedFrame:
    """A 640x480 frame: a grey table with a dark band, a box standing on it 8 cm nearer (a depth edge)."""
    color = np.full((480, 640, 3), 128, np.uint8)
    color[:, 300:360] = 20  # dark band
    depth = np.full((480, 640), 0.60, np.float32)
    depth[200:300, 250:330] = 0.52
    return RenderedFrame(color=color, depth=depth)


def _policy(frame: RenderedFrame) -> tuple[np.ndarray, np.ndarray]:
    rgb, depth = reduce_frame(frame.color, frame.depth, VIEW.image_size, VIEW.crop)
    return rgb.astype(float), depth[..., 0] if depth.ndim == 3 else depth


def _sim(params: dict, frame: RenderedFrame, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """What the simulation shows: the clean frame reduced, then its ImageNoise at the policy's resolution."""
    rgb, depth = reduce_frame(frame.color, frame.depth, VIEW.image_size, VIEW.crop)
    noise = ImageNoise(image_noise_params(params), seed)
    d = depth[..., 0] if depth.ndim == 3 else depth
    return noise.color(rgb).astype(float), noise.depth(d, rgb, FOCAL)


def _mock(params: dict, frame: RenderedFrame, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    return _policy(CameraSensor(params, seed, VIEW).apply(frame, FOCAL))


def test_cells_follow_the_reduction():
    rows, cols, sx, sy = view_cells(VIEW, 640, 480)
    assert (sx, sy) == (7.0, 5.25)
    inside = cols[96:544] - cols[96]
    assert inside.max() == 63 and np.all(np.bincount(inside) == 7)  # 64 cells of 7 px across the crop
    assert np.all(np.diff(rows) >= 0) and rows[0] == 0
    rows1, cols1, *_ = view_cells(None, 640, 480)
    assert cols1[-1] == 639 and rows1[-1] == 479


def test_nominal_params_leave_frames_untouched(nominal):
    frame = _scene()
    sensor = CameraSensor(nominal, 0, VIEW)
    assert not sensor.changes_frames and sensor.apply(frame, FOCAL) is frame
    k = Intrinsics(640, 480, FOCAL, FOCAL, 319.5, 239.5)
    assert sensor.intrinsics(k) == k


def test_the_lens_error_moves_the_true_intrinsics(nominal):
    sensor = CameraSensor({**nominal, "camera.focal_scale": 1.03, "camera.principal_offset": [6.0, -4.0]}, 0)
    k = sensor.intrinsics(Intrinsics(640, 480, FOCAL, FOCAL, 319.5, 239.5))
    assert k.fx == pytest.approx(FOCAL * 1.03) and (k.cx, k.cy) == (325.5, 235.5) and sensor.changes_frames


def test_colour_noise_reaches_the_policy_at_the_simulations_strength(nominal):
    params = {**nominal, "image.noise_std": 0.03}
    clean, _ = _policy(_scene())
    mock = np.concatenate([_mock(params, _scene(), seed)[0] - clean for seed in range(4)])
    sim = np.concatenate([_sim(params, _scene(), seed)[0] - clean for seed in range(4)])
    grey = clean[..., 0] > 100
    m_std, s_std = mock[np.tile(grey, (4, 1))].std(), sim[np.tile(grey, (4, 1))].std()
    assert s_std == pytest.approx(0.03 * 255, rel=0.1)
    assert m_std == pytest.approx(s_std, rel=0.15), (m_std, s_std)
    # drawn per stream pixel, the reduction would have averaged it to about a sixth (a 7 x 5.25 px cell)
    per_pixel = _policy(CameraSensor(params, 0, None).apply(_scene(), FOCAL))[0] - clean
    assert per_pixel[grey].std() < 0.35 * s_std
    # a dark surface is brightened by clipping at black by what the simulation's clipping does, not more
    dark = np.tile(clean[..., 0] < 30, (4, 1))
    assert abs(mock[dark].mean() - sim[dark].mean()) < 1.0


def test_blur_reaches_the_policy_at_the_simulations_width(nominal):
    params = {**nominal, "image.blur_sigma": 0.8}
    frame = _scene()
    m, s = _mock(params, frame)[0], _sim(params, frame)[0]
    clean, _ = _policy(frame)
    assert np.abs(m - clean).max() > 20  # the band's edges are softened
    assert np.abs(m - s).mean() < 1.0 and np.abs(m - s).max() < 12, (np.abs(m - s).mean(), np.abs(m - s).max())


@pytest.mark.parametrize("term", ["depth.random_dropout", "depth.dark_dropout", "depth.edge_dropout"])
def test_depth_dropout_survives_the_robots_hole_filling(nominal, term):
    """A reading dropped per cell stays dropped through the robot's filling of one-pixel holes: the policy loses
    as many readings as the simulation's dropout takes (dark: on the band; edge: beside the box's sides)."""
    params = {**nominal, term: 0.3}
    frame = _scene()
    mock = np.stack([_mock(params, frame, seed)[1] == 0 for seed in range(12)]).mean(0)
    sim = np.stack([_sim(params, frame, seed)[1] == 0 for seed in range(12)]).mean(0)
    assert sim.mean() > 0.004
    assert mock.mean() == pytest.approx(sim.mean(), rel=0.25), (mock.mean(), sim.mean())


def test_depth_noise_is_the_stereo_model_per_reading(nominal):
    params = {**nominal, "depth.noise_scale": 10.0}
    frame = _scene()
    _, clean = _policy(frame)
    m = np.concatenate([(_mock(params, frame, seed)[1] - clean).ravel() for seed in range(4)])
    s = np.concatenate([(_sim(params, frame, seed)[1] - clean).ravel() for seed in range(4)])
    assert m.std() == pytest.approx(s.std(), rel=0.1), (m.std(), s.std())


def _motors(*pairs: tuple[float, str]) -> list:
    """Stand-ins for a config's motors: (joint scale, servo model)."""
    from types import SimpleNamespace

    return [SimpleNamespace(scale=scale, model=model) for scale, model in pairs]


def test_encoder_noise_is_in_each_joints_units():
    class Servo:
        position = velocity = current = 0.0

    servos = [Servo() for _ in range(3)]
    motors = _motors((1.0, "XM430-W350"), (-1.0, "XM430-W350"), (0.01, "XM430-W350"))
    noise = ServoReadingNoise({"proprio.position_noise": 0.003, "proprio.velocity_noise": 0.05}, motors, 0)
    draws = []
    for _ in range(2000):
        for s in servos:
            s.position = s.velocity = 0.0
        noise.perturb(servos)
        draws.append([s.position for s in servos])
    std = np.array(draws).std(0)
    assert std == pytest.approx([0.003, 0.003, 0.3], rel=0.1)  # a joint in m moves its motor by 1/scale rad
    assert all(s.current == 0.0 for s in servos)  # no effort term, no effort change
    assert not ServoReadingNoise({}, motors[:1], 0).active


def test_effort_terms_reach_each_register_in_its_own_units():
    """``proprio.effort_noise`` (N*m of the servo's torque) becomes each register's units as the driver converts back:
    A of Present Current at 4.1 / 2.3 N*m per A for an XM430, a fraction of the 1.5 N*m stall for an XL430's Present
    Load; ``proprio.effort_scale`` multiplies what the plant wrote. Position and velocity draws are the same with
    or without the effort terms."""

    class Servo:
        position = velocity = current = load = 0.0

    motors = _motors((1.0, "XM430-W350"), (1.0, "XL430-W250"))
    params = {"proprio.position_noise": 0.002, "proprio.effort_noise": 0.05, "proprio.effort_scale": 1.1}
    with_effort, without = (
        ServoReadingNoise(params, motors, 3),
        ServoReadingNoise({"proprio.position_noise": 0.002}, motors, 3),
    )
    currents, loads = [], []
    for _ in range(3000):
        a, b = [Servo() for _ in motors], [Servo() for _ in motors]
        for s in a:
            s.current = s.load = 0.5
        with_effort.perturb(a)
        without.perturb(b)
        assert [s.position for s in a] == [s.position for s in b]
        currents.append(a[0].current)
        loads.append(a[1].load)
        assert a[0].load == 0.5 and a[1].current == 0.5  # each model's own register only
    assert np.mean(currents) == pytest.approx(0.55, abs=0.002) and np.mean(loads) == pytest.approx(0.55, abs=0.002)
    assert np.std(currents) == pytest.approx(0.05 / (4.1 / 2.3), rel=0.08)
    assert np.std(loads) == pytest.approx(0.05 / 1.5, rel=0.08)


def test_proprio_noise_reaches_the_host_through_the_servo_bytes():
    """Present Position read by the real driver from the emulated servos scatters by the reality's noise (the arm
    held still with torque off on the table-less rest pose), and so does the effort from Present Current."""
    from mock.hardware import MockHardware
    from real.motor_buses import motor_driver, open_bus
    from robot.config_file import load_hardware_config

    config = load_hardware_config("mock/openmanipulator_x")
    spreads, effort_std = [], []
    for noise in (0.0, 0.006):
        hw = MockHardware(config, {"proprio_position_noise": noise, "proprio_effort_noise": 5 * noise}, seed=5)
        try:
            bus = open_bus(config)
            try:
                driver = motor_driver(config, bus)
                states = [driver.read() for _ in range(150)]
                reads = np.array([js.position for js in states])
                effort_std.append(np.std([js.effort[:4] for js in states], axis=0))
            finally:
                bus.close()
        finally:
            hw.close()
        # second differences: a sagging arm's smooth motion cancels, noise of std s leaves 1.65 s at the median
        spreads.append(np.median(np.abs(np.diff(reads[:, :4], n=2, axis=0)), axis=0))
    quiet, noisy = spreads
    assert np.all(quiet <= 0.0031)  # within two ticks
    # quantized to 1.5 mrad ticks, and a sagging arm adds a little: each joint within reach of 9.9 mrad
    assert np.all((noisy > 0.006) & (noisy < 0.018)) and 0.007 < np.median(noisy) < 0.014, noisy
    # torque off: no effort but the noise, 0.03 N*m, in 4.8 mN*m steps of Present Current
    assert np.all(effort_std[0] < 0.003) and np.all(np.abs(effort_std[1] - 0.03) < 0.006), effort_std


def test_every_sensor_and_push_term_is_applied_on_the_mock_path():
    """Each term of the default randomizations that the world does not carry is taken up by a sensor or the push
    schedule when pinned off nominal: none is refused or dropped on the PyBullet path any more."""
    from mock.base_push import PushSchedule
    from mock.reality import check_reality_domain

    for task in ("grasp", "navigate"):
        base = _nominal(task)
        for term in load_randomization("default", task).terms:
            sensing = ("image.", "depth.", "proprio.", "camera.focal", "camera.principal", "base.push")
            if not term.target.startswith(sensing):
                continue
            check_reality_domain(task, {term.name: 0.5 if term.size is None else [0.5] * term.size})
            value = [2.0] * term.size if term.size else (2.0 if term.operation != "set" else 0.3)
            if term.target == "image.jpeg_quality":
                value = 60
            params = {**base, term.target: value}
            sensor = CameraSensor(params, 0, VIEW)
            encoder = ServoReadingNoise(params, _motors((1.0, "XM430-W350")), 0)
            pushes = PushSchedule.of_reality(task, params, 0.1)
            assert sensor.changes_frames or encoder.active or pushes.active, term.name


@pytest.mark.parametrize("engine", ["pybullet", "mujoco"])
def test_a_pinned_push_moves_the_base_when_the_simulation_pushes(engine):
    """base_push in a reality: the force acts for one control period after every 30 (the term's own interval), as
    the navigate env applies it; the unpowered base rolls from it in either engine and stays put without it."""
    if engine == "mujoco":
        pytest.importorskip("mock.mujoco_scene", reason="the MuJoCo reality needs the mujoco wheel (.[mujoco])")
    from mock.hardware import REALITIES
    from mock.servo_emulators import emulator_for_config
    from robot.config_file import load_hardware_config

    config = load_hardware_config("mock/turtlebot3_burger")
    moved = []
    for push in ([0.0, 0.0], [6.0, 0.0]):
        reality = REALITIES[engine].build(config, {"base_push": push}, 3, None)
        try:
            servos = emulator_for_config(config, reality).servos
            goals = []
            for step in range(340):  # 3.4 s in 10 ms steps; the push acts from 3.0 to 3.1 s
                reality.step(0.01, servos)
                if step in (289, 339):
                    goals.append(np.asarray(reality.goal(), dtype=float))
            moved.append(float(np.linalg.norm(goals[1] - goals[0])))
        finally:
            reality.close()
    still, pushed = moved
    assert still < 0.003 and pushed > 0.02, moved


@pytest.mark.realsense
def test_a_noisy_reality_reaches_the_policy_through_librealsense():
    """The mock arm's camera in a reality with depth dropout and colour noise, read by the real RealSense code and
    reduced by the robot's own code to the grasp student's view: the policy loses the simulation's share of depth
    readings, and its colour scatters frame to frame by about the simulation's noise."""
    from mock.hardware import MockHardware
    from robot.config_file import load_hardware_config

    config = load_hardware_config("mock/openmanipulator_x")
    shown = {}
    for name, domain in (("nominal", {}), ("noisy", {"depth_random_dropout": 0.3, "image_noise_std": 0.03})):
        hw = MockHardware(config, domain, seed=11)
        camera = hw.camera("table", VIEW.image_size, VIEW.crop)
        try:
            with camera:
                frames = [camera.read(timeout=5.0) for _ in range(4)]
        finally:
            hw.close()
        shown[name] = [reduce_frame(f.color, f.depth, VIEW.image_size, VIEW.crop) for f in frames[1:]]
    zeros = {n: np.mean([(d == 0).mean() for _, d in v]) for n, v in shown.items()}
    assert zeros["nominal"] < 0.02 and 0.24 < zeros["noisy"] - zeros["nominal"] < 0.36, zeros
    scatter = {n: np.std(v[1][0].astype(float) - v[2][0].astype(float)) / np.sqrt(2) for n, v in shown.items()}
    assert scatter["nominal"] < 2.0 and 0.8 * 7.65 < scatter["noisy"] < 1.3 * 7.65, scatter

"""RealSense capture through the real librealsense code: frames rendered by PyBullet enter through
``rs.software_device``, are synced, aligned and converted by RealSenseCamera exactly as on a device, and
librealsense's own recorder writes the recordings that the playback tests read back."""

from __future__ import annotations

import shutil
import sqlite3
import time

import numpy as np
import pybullet as p
import pytest

pytestmark = pytest.mark.realsense

from mock.simulated_realsense import (  # noqa: E402
    SimulatedRealSense,
    pybullet_renderer,
    static_pose,
)
from real.cameras import CameraError, EndOfStream, FrameTimeout, StaleFrame  # noqa: E402
from real.cameras.realsense import RealSenseCamera, SoftwareSource, import_pyrealsense2, list_devices  # noqa: E402
from robot.description import Camera  # noqa: E402
from robot.intrinsics import d435_color_intrinsics, d435_depth_intrinsics  # noqa: E402

UNIT = 0.001


def _config(**extra) -> Camera:
    settings = {"warmup_frames": 2, **extra}
    return Camera(
        name="test",
        model="D435",
        color={"width": 424, "height": 240, "fps": 30},
        depth={"width": 424, "height": 240, "fps": 30},
        mount={"xyz": [0.0, 0.0, 0.5], "rpy": [0.0, 0.6, 0.0]},
        **settings,
    )


@pytest.fixture
def scene():
    """A floor, a box on it and a wall 1.5 m in front of a camera at the origin looking along +x (for the wall)."""
    client = p.connect(p.DIRECT)
    floor = p.createCollisionShape(p.GEOM_BOX, halfExtents=[2, 2, 0.01], physicsClientId=client)
    p.createMultiBody(0, floor, basePosition=[0, 0, -0.01], physicsClientId=client)
    box = p.createCollisionShape(p.GEOM_BOX, halfExtents=[0.08, 0.08, 0.08], physicsClientId=client)
    body = p.createMultiBody(0, box, basePosition=[0.55, 0.05, 0.08], physicsClientId=client)
    p.changeVisualShape(body, -1, rgbaColor=[0.9, 0.2, 0.1, 1], physicsClientId=client)
    yield client
    p.disconnect(client)


def _camera(client: int, cfg: Camera | None = None, **sim_kwargs) -> tuple[RealSenseCamera, SimulatedRealSense]:
    cfg = cfg or _config()
    renderer = pybullet_renderer(client, static_pose(cfg.mount.xyz, cfg.mount.rpy))
    sim = SimulatedRealSense(cfg, renderer, **sim_kwargs)
    return RealSenseCamera(cfg, SoftwareSource(sim), grab_timeout_s=0.2), sim


WALL_X = 1.2345


@pytest.mark.parametrize("depth_view", ["color", "imager"])
def test_depth_arrives_in_metres_within_the_depth_unit(scene, depth_view):
    """A wall facing the camera at 1.2345 m reads 1.2345 m +- half a depth unit at every pixel, whichever
    viewpoint the depth was rendered from (alignment moves it, the distance to a facing wall stays)."""
    wall = p.createCollisionShape(p.GEOM_BOX, halfExtents=[0.01, 4, 4], physicsClientId=scene)
    p.createMultiBody(0, wall, basePosition=[WALL_X + 0.01, 0, 0.5], physicsClientId=scene)
    cfg = _config().model_copy(update={"mount": _config().mount.model_copy(update={"rpy": (0.0, 0.0, 0.0)})})
    cam, _ = _camera(scene, cfg, depth_view=depth_view)
    with cam:
        frame = cam.read(timeout=3.0)
    assert frame.depth.shape == (240, 424) and frame.depth.dtype == np.float32
    valid = frame.depth > 0
    assert valid.mean() > 0.9  # rs.align leaves a few holes where its pixel-footprint rounding misses
    np.testing.assert_array_less(np.abs(frame.depth[valid] - WALL_X), UNIT / 2 + 1e-6)


def test_a_depth_pixel_without_reading_arrives_as_zero_not_as_65_metres(scene):
    """Z16 65535 (what real D435 recordings carry where there is no depth) is no reading, like 0: the right half
    of the image is pushed beyond the Z16 range and must read 0, never 65.5 m."""
    from sim.camera_model import RenderedFrame

    def renderer(intrinsics, offset):
        depth = np.full((intrinsics.height, intrinsics.width), 1.0, np.float32)
        depth[:, intrinsics.width // 2 :] = 100.0  # clipped to the raw maximum, 65535
        return RenderedFrame(np.full((intrinsics.height, intrinsics.width, 3), 128, np.uint8), depth)

    cfg = _config()
    cam = RealSenseCamera(
        cfg, SoftwareSource(SimulatedRealSense(cfg, renderer, depth_view="color")), grab_timeout_s=0.2
    )
    with cam:
        frame = cam.read(timeout=3.0)
    half = frame.depth.shape[1] // 2
    assert frame.depth.max() < 1.01 and np.all(frame.depth[:, half + 8 :] == 0)
    assert np.abs(frame.depth[:, : half - 8][frame.depth[:, : half - 8] > 0] - 1.0).max() < UNIT


def test_color_arrives_as_rgb(scene):
    cam, _ = _camera(scene, depth_view="color")
    with cam:
        frame = cam.read(timeout=3.0)
    assert frame.color.shape == (240, 424, 3) and frame.color.dtype == np.uint8
    red = frame.color[:, :, 0].astype(int) - frame.color[:, :, 2]
    assert (red > 80).sum() > 200, "the red box is in view and arrives as RGB, not BGR"


def _neighbourhood_error(aligned: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|aligned - truth| at each pixel, taking the best of the 3x3 neighbourhood in truth: rs.align paints each
    depth pixel's footprint, which its rounding may shift by one pixel."""
    padded = np.pad(truth, 1, mode="edge")
    h, w = truth.shape
    stack = [padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]
    return np.min(np.abs(np.stack(stack) - aligned[None]), axis=0)


def test_intrinsics_and_depth_scale_read_back_from_librealsense(scene):
    cam, _ = _camera(scene)
    with cam:
        k = cam.intrinsics
        kd = cam.depth_intrinsics
        assert cam.depth_scale == pytest.approx(UNIT)
    want = d435_color_intrinsics(424, 240)
    assert (k.width, k.height) == (424, 240)
    np.testing.assert_allclose([k.fx, k.fy, k.cx, k.cy], [want.fx, want.fy, want.cx, want.cy], rtol=1e-6)
    assert k.distortion_model == "brown_conrady" and k.distortion == (0.0,) * 5
    np.testing.assert_allclose(k.K, want.K, rtol=1e-6)
    want_d = d435_depth_intrinsics(424, 240)
    np.testing.assert_allclose([kd.fx, kd.cx], [want_d.fx, want_d.cx], rtol=1e-6)
    assert kd.fx < k.fx, "the depth imager sees wider than the color camera"


def test_depth_from_the_imager_is_aligned_to_color(scene):
    """Depth rendered 15 mm away with another field of view, reprojected by rs.align into the color image."""
    cam, sim = _camera(scene, depth_view="imager")
    truth = sim.renderer(sim.color_intrinsics, np.zeros(3)).depth
    with cam:
        frame = cam.read(timeout=3.0)
    both = (frame.depth > 0) & (truth > 0)
    assert both.mean() > 0.85
    # within 1 % of the distance (a depth pixel is 1.3 color pixels wide: on the floor seen at a grazing angle its
    # footprint spans several mm of depth); what is left is the box's occlusion edges, seen 15 mm apart
    close = _neighbourhood_error(frame.depth, truth)[both] < 0.01 * truth[both]
    assert close.mean() > 0.95, f"only {close.mean():.3f} of aligned pixels within 1 %"
    # without alignment the images disagree: the raw depth image has another field of view
    raw = sim.renderer(sim.depth_intrinsics, sim._depth_offset).depth
    raw_close = _neighbourhood_error(raw, truth)[both] < 0.01 * truth[both]
    assert raw_close.mean() < 0.3


def test_frames_carry_numbers_and_timestamps(scene):
    cam, _ = _camera(scene, depth_view="color")
    with cam:
        frames = [cam.read(timeout=3.0) for _ in range(4)]
        stats = cam.stats
    numbers = [f.frame_number for f in frames]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    stamps = [f.device_time_ms for f in frames]
    assert stamps == sorted(stamps)
    hosts = [f.host_time_ns for f in frames]
    assert hosts == sorted(hosts) and hosts[-1] <= time.monotonic_ns()
    # the simulated D435 stamps in host time, as a real one with global time does: the capture precedes the arrival
    # by the render and the SDK's hand-over (tens of ms, well under a second)
    for f in frames:
        assert f.capture_time_ns is not None
        assert 0 <= f.host_time_ns - f.capture_time_ns < 1e9
    assert stats.frames >= 4 and stats.fps > 0


def test_warmup_frames_are_discarded_and_a_slow_reader_sees_drops(scene):
    cam, _ = _camera(scene, _config(warmup_frames=5), depth_view="color")
    with cam:
        first = cam.read(timeout=3.0)
        assert first.frame_number > 5
        time.sleep(0.4)  # a reader that falls behind: the camera keeps the newest frame, older ones are dropped
        later = cam.read(timeout=3.0)
        assert later.frame_number - first.frame_number >= 3  # 12 at 30 fps; fewer when the CPU is saturated
        assert cam.stats.dropped >= later.frame_number - first.frame_number - 2


def test_read_latest_raises_on_a_stale_frame_and_recovers(scene):
    cam, sim = _camera(scene, depth_view="color")
    with cam:
        cam.read(timeout=3.0)
        assert cam.read_latest(max_age=0.5).depth is not None
        sim.pause()
        time.sleep(0.4)
        with pytest.raises(StaleFrame, match="ms old"):
            cam.read_latest(max_age=0.1)
        sim.resume()
        cam.read(timeout=3.0)
        assert cam.read_latest(max_age=0.5).frame_number > 0


def test_read_latest_before_any_frame(scene):
    cam, sim = _camera(scene, depth_view="color")
    sim.pause()
    with cam:
        with pytest.raises(StaleFrame, match="no frame"):
            cam.read_latest(max_age=1.0)


def test_capture_thread_survives_timeouts_and_reports_them(scene):
    cam, sim = _camera(scene, depth_view="color")
    cam.reconnect_after = 1000
    with cam:
        cam.read(timeout=3.0)
        sim.pause()
        time.sleep(0.3)
        cam.read_latest(max_age=10.0)  # marks the frames captured before the pause as read
        with pytest.raises(FrameTimeout, match="no new frame"):
            cam.read(timeout=0.8)
        assert cam.stats.timeouts >= 2
        sim.resume()
        assert cam.read(timeout=3.0).depth is not None
        assert cam._thread.is_alive()


def test_silent_camera_is_restarted(scene):
    cam, sim = _camera(scene, depth_view="color")
    cam.reconnect_after = 2
    with cam:
        cam.read(timeout=3.0)
        sim.pause()
        deadline = time.monotonic() + 5
        while cam.stats.reconnects == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cam.stats.reconnects >= 1
        sim.resume()
        assert cam.read(timeout=3.0).depth is not None


def test_filters_and_read_before_connect(scene):
    cam, _ = _camera(scene, _config(filters=["decimation", "spatial", "temporal", "hole_filling"]), depth_view="color")
    with pytest.raises(CameraError, match="not connected"):
        cam.read(timeout=0.1)
    with cam:
        frame = cam.read(timeout=3.0)
    # decimation halves the depth resolution, alignment brings it back to the color image
    assert frame.depth.shape == (240, 424)
    assert (frame.depth > 0).mean() > 0.9


# -- recordings ------------------------------------------------------------------------------------------------


@pytest.fixture
def recording(scene, tmp_path):
    """A .db3 written by librealsense's recorder from the simulated device; returns (path, frames pushed)."""
    path = tmp_path / "take.db3"
    cam, sim = _camera(scene, depth_view="color", record_to=path)
    with cam:
        for _ in range(6):
            cam.read(timeout=3.0)
    return path, sim.frames_pushed


def _pairs_in_file(path) -> int:
    """Color and depth pairs librealsense's recorder wrote to a .db3 (a ROS 2 SQLite bag: the fewer of the two
    streams' images), read without librealsense."""
    query = "SELECT COUNT(*) FROM messages JOIN topics ON messages.topic_id = topics.id WHERE topics.name LIKE ?"
    with sqlite3.connect(path) as db:
        counts = [db.execute(query, (f"%/{stream}_0/image/data/%",)).fetchone()[0] for stream in ("Color", "Depth")]
    return int(min(counts))


def test_recording_plays_every_frame_then_ends(recording):
    path, pushed = recording
    recorded = _pairs_in_file(path)
    # the recorder's side, read from the file itself: every pushed pair but the last may be written
    assert pushed - 2 <= recorded <= pushed, f"the recorder wrote {recorded} of {pushed} frames"
    cam = RealSenseCamera.from_recording(path, grab_timeout_s=0.5)
    frames = []
    with cam:
        assert cam.intrinsics.width == 424 and cam.depth_scale == pytest.approx(UNIT)
        while True:
            try:
                frames.append(cam.read(timeout=5.0))
            except EndOfStream as end:
                assert end.frames == len(frames)
                break
        assert cam.stats.dropped == 0
        with pytest.raises(EndOfStream, match="end of recording"):
            cam.read(timeout=0.1)
    # every frame, in order and without gaps. Known weakness: on a loaded machine librealsense's pipeline
    # sometimes does not deliver a recording's first frame (the same file played twice gave frames 1-11 once and
    # 2-11 the next time), and the last pair may be cut when the sensors close in the middle of it.
    assert recorded - 1 <= len(frames) <= recorded, f"playback gave {len(frames)} of the {recorded} frames recorded"
    first = frames[0].frame_number
    assert first <= 2
    assert [f.frame_number for f in frames] == list(range(first, first + len(frames)))
    assert all(f.depth is not None and (f.depth > 0).mean() > 0.9 for f in frames)


def test_recording_error_paths(recording, tmp_path):
    path, _ = recording
    truncated = tmp_path / "truncated.db3"
    shutil.copy(path, truncated)
    with open(truncated, "r+b") as f:
        f.truncate(path.stat().st_size // 3)
    with pytest.raises(CameraError, match="truncated, unindexed"):
        RealSenseCamera.from_recording(truncated).connect()
    empty = tmp_path / "empty.db3"
    empty.touch()
    with pytest.raises(CameraError, match="is empty"):
        RealSenseCamera.from_recording(empty).connect()
    with pytest.raises(CameraError, match="does not exist"):
        RealSenseCamera.from_recording(tmp_path / "missing.bag").connect()
    garbage = tmp_path / "garbage.bag"
    garbage.write_bytes(b"#ROSBAG V2.0\n" + bytes(range(256)) * 8)
    with pytest.raises(CameraError, match="cannot be played"):
        RealSenseCamera.from_recording(garbage).connect()
    with pytest.raises(CameraError, match=r"\.bag or \.db3"):
        RealSenseCamera.from_recording(tmp_path / "take.mp4").connect()


def test_recording_without_frames(scene, tmp_path):
    path = tmp_path / "nothing.db3"
    cam, sim = _camera(scene, depth_view="color", record_to=path)
    sim.pause()
    with cam:
        time.sleep(0.2)
    with pytest.raises(CameraError, match="holds no frames"):
        RealSenseCamera.from_recording(path).connect()


# -- live devices and the library ------------------------------------------------------------------------------


def test_no_device_gives_a_clear_error():
    if list_devices():
        pytest.skip("a RealSense is connected")
    with pytest.raises(CameraError, match="no RealSense device found"):
        RealSenseCamera(_config()).connect()


def test_missing_library_message(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    with pytest.raises(CameraError, match=r"libusb-1.0") as raised:
        import_pyrealsense2()
    assert "sim2real-pipeline[realsense]" in str(raised.value)  # names the extra to install


def test_aligned_depth_holes_are_filled_before_a_policy_sees_them(scene):
    """``rs.align`` leaves one-pixel holes in a valid surface (a wall facing the camera, through the real
    librealsense code): the policy's reduced depth has none of them, and every filled reading is a neighbour's."""
    from robot.frame_reduction import fill_pixel_holes, reduce_frame

    wall = p.createCollisionShape(p.GEOM_BOX, halfExtents=[0.01, 4, 4], physicsClientId=scene)
    p.createMultiBody(0, wall, basePosition=[WALL_X + 0.01, 0, 0.5], physicsClientId=scene)
    cfg = Camera(  # the mock arm's streams: 640x480 color and depth, depth rendered from the color view
        name="test",
        model="D435",
        color={"width": 640, "height": 480, "fps": 15},
        depth={"width": 640, "height": 480, "fps": 15},
        mount={"xyz": [0.0, 0.0, 0.5], "rpy": [0.0, 0.0, 0.0]},
        warmup_frames=2,
    )
    cam, _ = _camera(scene, cfg, depth_view="color")
    with cam:
        frame = cam.read(timeout=3.0)
    holes = frame.depth == 0
    assert 0 < holes.mean() < 0.1  # the aligner's holes are there in the raw frame
    filled = fill_pixel_holes(frame.depth)
    np.testing.assert_array_less(np.abs(filled[filled > 0] - WALL_X), UNIT / 2 + 1e-6)  # neighbours' readings
    assert (filled == 0).mean() < holes.mean() / 10
    _, reduced = reduce_frame(frame.color, frame.depth, (64, 64))
    assert (reduced == 0).mean() < 0.01

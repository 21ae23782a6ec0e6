"""Camera model: rendered images follow the pinhole K, and depth comes back metric along the optical axis."""

from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

from robot.intrinsics import Intrinsics, d435_color_intrinsics
from sim.camera_model import render, rotation_from_rpy


@pytest.fixture
def client():
    c = p.connect(p.DIRECT)
    yield c
    p.disconnect(c)


def _ball(client, position, radius=0.01, color=(1, 0, 0, 1)):
    vis = p.createVisualShape(p.GEOM_SPHERE, radius=radius, rgbaColor=color, physicsClientId=client)
    return p.createMultiBody(0, -1, vis, position, physicsClientId=client)


def _wall(client, distance, half=5.0):
    vis = p.createVisualShape(
        p.GEOM_BOX, halfExtents=[0.01, half, half], rgbaColor=[0.5, 0.5, 0.5, 1], physicsClientId=client
    )
    return p.createMultiBody(0, -1, vis, [distance + 0.01, 0, 0], physicsClientId=client)


def test_d435_nominal_intrinsics():
    k = d435_color_intrinsics(640, 480)
    # Typical factory calibrations of D435 color at 640x480 report fx ~ 605-620 px.
    assert 600 < k.fx < 625 and k.fx == k.fy
    assert (k.cx, k.cy) == (319.5, 239.5)
    hfov_1080 = 2 * math.degrees(math.atan(960 / d435_color_intrinsics(1920, 1080).fx))
    assert hfov_1080 == pytest.approx(69.4)


def test_scaled_intrinsics_keep_the_field_of_view():
    k = d435_color_intrinsics(640, 480)
    s = k.scaled(64, 48)
    assert s.fx == pytest.approx(k.fx / 10) and s.fy == pytest.approx(k.fy / 10)
    assert (s.cx, s.cy) == pytest.approx((31.5, 23.5))


@pytest.mark.parametrize(
    "point_cam", [(1.0, 0.0, 0.0), (1.0, 0.15, -0.08), (0.8, -0.2, 0.12), (1.0, 0.3, 0.2), (1.0, -0.3, -0.2)]
)
def test_rendered_point_lands_where_K_projects_it(client, point_cam):
    """A small red ball at a known point in the camera frame appears at K's projection (< 0.5 px)."""
    intr = Intrinsics(160, 120, fx=150.0, fy=140.0, cx=85.3, cy=55.8)  # off-centre principal point
    cam_pos = np.array([0.3, -0.2, 0.5])
    R = rotation_from_rpy([0.1, 0.2, 0.3])
    x, y, z = point_cam  # camera_link: x forward, y left, z up
    _ball(client, (cam_pos + R @ np.array(point_cam)).tolist(), radius=0.02)
    frame = render(client, intr, cam_pos, R)
    mask = frame.depth > 0  # the ball is the only thing in range; depth is unaffected by shading
    assert mask.sum() > 10
    assert np.all(frame.color[mask][:, 0] > frame.color[mask][:, 1])  # and it is the red ball
    vs, us = np.nonzero(mask)
    # Optical frame: u right = -y, v down = -z, depth = x.
    u_expected = intr.fx * (-y) / x + intr.cx
    v_expected = intr.fy * (-z) / x + intr.cy
    assert us.mean() == pytest.approx(u_expected, abs=0.2)
    assert vs.mean() == pytest.approx(v_expected, abs=0.2)


def test_depth_is_metric_z_not_range(client):
    """A wall 1.5 m ahead reads 1.5 m at every pixel (z along the optical axis, as a RealSense reports)."""
    _wall(client, 1.5)
    frame = render(client, d435_color_intrinsics(640, 480).scaled(80, 60), np.zeros(3), np.eye(3))
    assert frame.depth.dtype == np.float32 and frame.depth.shape == (60, 80)
    np.testing.assert_allclose(frame.depth, 1.5, atol=1e-3)


def test_depth_outside_the_sensor_range_reads_zero(client):
    _wall(client, 11.0, half=20)
    far = render(client, d435_color_intrinsics(640, 480).scaled(32, 24), np.zeros(3), np.eye(3), far=15.0)
    assert np.all(far.depth == 0.0)
    p.resetSimulation(physicsClientId=client)
    _wall(client, 0.05)
    near = render(client, d435_color_intrinsics(640, 480).scaled(32, 24), np.zeros(3), np.eye(3))
    assert np.all(near.depth == 0.0)


def test_a_coarse_render_keeps_the_stream_size_and_where_things_are(client):
    """The PyBullet mock camera draws at half resolution (mock.hardware.PYBULLET_RENDER_DIVISOR): the stream keeps
    its size, a ball still lands where the full-size K projects it, and the 64x48 view a policy takes (area
    averaging) differs from the full render's by little."""
    from mock.simulated_realsense import coarse_renderer
    from robot.frame_reduction import reduce_frame

    intr = Intrinsics(320, 240, fx=300.0, fy=300.0, cx=159.5, cy=119.5)
    _wall(client, 1.5)
    _ball(client, [1.0, -0.15, 0.08], radius=0.03)

    def full(intrinsics, offset):
        return render(client, intrinsics, np.asarray(offset), np.eye(3))

    coarse = coarse_renderer(full, 2)(intr, np.zeros(3))
    fine = full(intr, np.zeros(3))
    assert coarse.color.shape == (240, 320, 3) and coarse.depth.shape == (240, 320)
    assert coarse.color.dtype == np.uint8 and coarse.depth.dtype == np.float32
    assert np.array_equal(coarse.color[0::2, 0::2], coarse.color[1::2, 1::2])  # each render pixel covers 2x2
    ball = coarse.depth < 1.2
    vs, us = np.nonzero(ball)
    assert us.mean() == pytest.approx(intr.fx * 0.15 / 1.0 + intr.cx, abs=0.25)
    assert vs.mean() == pytest.approx(intr.fy * -0.08 / 1.0 + intr.cy, abs=0.25)
    small_coarse, _ = reduce_frame(coarse.color, coarse.depth, (64, 48))
    small_fine, _ = reduce_frame(fine.color, fine.depth, (64, 48))
    assert np.abs(small_coarse.astype(int) - small_fine).mean() < 0.5  # grey levels
    assert coarse_renderer(full, 1) is full
    with pytest.raises(ValueError, match="positive integer"):
        coarse_renderer(full, 0)
    with pytest.raises(ValueError, match="does not divide"):
        coarse_renderer(full, 3)(intr.scaled(160, 121), np.zeros(3))

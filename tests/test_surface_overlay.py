"""The table's mask in rendered frames and the surface repainting a camera student is trained with
(:mod:`policies.surface_overlay`, ``s2r distill --surface-overlay``)."""

from __future__ import annotations

import numpy as np
import pybullet as p
import pytest

from policies.distill_data import Dataset, TrainingAugmentation, dark_dropout_range, record_surfaces
from policies.surface_overlay import SurfaceOverlay, drop_dark_depth, repaint_surface
from sim.envs.factory import task_env
from sim.randomization.config import load_randomization
from sim.randomization.image_noise import DARK_GRAY_LEVEL

CAMERA = {"supersample": 4, "crop": [96, 96, 448, 336]}  # the shipped grasp student's view


def test_the_surface_mask_is_where_the_table_shows():
    """Checked against the picture, not the segmentation: the pixels that change when only the table's colour
    changes are the ones the mask marks (edge pixels, shared with the object or the arm, aside)."""
    env = record_surfaces(task_env("grasp", "none", obs_mode="rgbd", image_size=(64, 64), **CAMERA))
    try:
        env.reset(seed=3)
        u = env.unwrapped
        before = u.camera_observation()["rgb"].astype(int)
        mask = u.surface_mask
        p.changeVisualShape(u.table_id, -1, rgbaColor=[0.1, 0.9, 0.2, 1], physicsClientId=u.client)
        after = u.camera_observation()["rgb"].astype(int)
    finally:
        env.close()
    changed = np.abs(after - before).sum(axis=2) > 30
    full, none = mask == 255, mask == 0
    assert 0.5 < full.mean() < 0.99 and none.mean() > 0.005  # the table fills most of the view, not all of it
    assert changed[full].mean() > 0.99
    assert changed[none].mean() < 0.01


def test_a_plain_env_renders_no_mask():
    env = task_env("grasp", "none", obs_mode="rgbd", image_size=(32, 32))
    try:
        env.reset(seed=0)
        assert env.unwrapped.surface_mask is None
    finally:
        env.close()


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    surface = np.zeros((24, 32), np.uint8)
    surface[8:, :] = 255
    surface[7, :] = 128  # an edge pixel row: half table
    surface[14:18, 10:14] = 0  # the object
    return image, surface


def test_repainting_changes_the_surface_and_nothing_else():
    rng = np.random.default_rng(0)
    image, surface = _scene(rng)
    changed_somewhere = 0
    for _ in range(20):
        out = repaint_surface(image, surface, rng)
        assert out.dtype == np.uint8 and out.shape == image.shape
        np.testing.assert_array_equal(out[surface == 0], image[surface == 0])  # object and background untouched
        changed_somewhere += int(np.any(out[surface == 255] != image[surface == 255]))
    assert changed_somewhere == 20
    np.testing.assert_array_equal(repaint_surface(image, np.zeros_like(surface), rng), image)


def test_the_overlay_is_seeded_and_repaints_its_share():
    rng = np.random.default_rng(1)
    images = np.stack([_scene(rng)[0] for _ in range(200)])
    surfaces = np.stack([_scene(rng)[1] for _ in range(200)])
    depths = np.full((*surfaces.shape, 1), 0.5, np.float32)
    a, da = SurfaceOverlay(0.5, seed=7, dark_dropout=(0.0, 0.5))(images, depths, surfaces)
    b, db = SurfaceOverlay(0.5, seed=7, dark_dropout=(0.0, 0.5))(images, depths, surfaces)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(da, db)
    repainted = np.any(a != images, axis=(1, 2, 3)).mean()
    assert 0.38 < repainted < 0.62
    same, same_depth = SurfaceOverlay(0.0, seed=7)(images, depths, surfaces)
    np.testing.assert_array_equal(same, images)
    np.testing.assert_array_equal(same_depth, depths)
    with pytest.raises(ValueError, match="probability"):
        SurfaceOverlay(1.5, seed=0)
    with pytest.raises(ValueError, match="dark_dropout"):
        SurfaceOverlay(0.5, seed=0, dark_dropout=(0.4, 0.2))
    with pytest.raises(ValueError, match="do not match"):
        SurfaceOverlay(0.5, seed=0)(images, depths, surfaces[:, :10])
    only_overlay, _ = TrainingAugmentation(colour=False, surface_share=1.0, seed=3)(images, depths, surfaces)
    np.testing.assert_array_equal(only_overlay[:, surfaces[0] == 0], images[:, surfaces[0] == 0])


def test_new_dark_paint_loses_its_depth_as_the_simulated_camera_does():
    """Where the paint is dark (gray under the simulator's dark level) on the surface, depth goes missing with the
    given probability; bright paint, and pixels off the surface, keep theirs. The range comes from the run's
    randomization (the grasp default: 0-0.5)."""
    rng = np.random.default_rng(4)
    image = np.full((40, 40, 3), 200, np.uint8)
    image[:, :20] = DARK_GRAY_LEVEL // 2  # a dark half
    surface = np.full((40, 40), 255, np.uint8)
    surface[:, 30:] = 0  # not surface
    depth = np.full((40, 40, 1), 0.6, np.float32)
    out = drop_dark_depth(depth, image, surface, 0.5, rng)
    assert 0.4 < (out[:, :20] == 0).mean() < 0.6
    assert np.all(out[:, 20:] == 0.6)
    assert np.all(drop_dark_depth(depth, image, surface, 0.0, rng) == 0.6)
    image[:, 30:] = 0  # dark, but not surface: its depth stays
    assert np.all(drop_dark_depth(depth, image, surface, 1.0, rng)[:, 30:] == 0.6)
    assert dark_dropout_range(load_randomization("default", "grasp")) == (0.0, 0.5)


def test_samples_keep_their_masks_through_a_file(tmp_path):
    """A sample file keeps each sample's mask; one written before masks were kept loads with zero masks."""
    rng = np.random.default_rng(2)
    data = Dataset()
    for _ in range(3):
        image, surface = _scene(rng)
        obs = {"rgb": image, "depth": np.ones((24, 32, 1), np.float32), "proprio": np.zeros(4, np.float32)}
        data.add(obs, np.zeros(2, np.float32), np.zeros(5, np.float32), surface)
    data.add(obs, np.zeros(2, np.float32), np.zeros(5, np.float32))  # no mask: zeros
    data.save(tmp_path / "s.npz")
    again = Dataset()
    assert again.load(tmp_path / "s.npz") == 4
    np.testing.assert_array_equal(again.surfaces(), data.surfaces())
    assert again.surfaces()[0].max() == 255 and again.surfaces()[3].max() == 0
    with np.load(tmp_path / "s.npz") as f:
        old = {k: f[k] for k in Dataset.FIELDS}
    np.savez(tmp_path / "old.npz", **old)
    older = Dataset()
    assert older.load(tmp_path / "old.npz") == 4
    assert older.surfaces().shape == (4, 24, 32) and older.surfaces().max() == 0

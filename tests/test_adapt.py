"""``s2r adapt``: target frames read from hardware logs as the student sees them, the gradient reversal, the domain
gap probe, and an adaptation run end to end on a shifted domain (issue 29)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from policies.adapt import (
    GradientReversal,
    domain_gap,
    read_target_frames,
    reversal_weight,
)
from policies.student import RGBDStudent
from real.hardware_log import HardwareLog
from robot.frame_reduction import reduce_frame


def test_the_reversal_passes_forward_and_flips_the_gradient_scaled():
    x = torch.arange(4.0, requires_grad=True)
    y = GradientReversal.apply(x, 0.3)
    assert torch.equal(y, x.detach())
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.3, -0.6, -0.9, -1.2]))


def test_the_reversal_weight_ramps_from_zero_to_its_value():
    assert reversal_weight(0.0, 0.5) == 0.0
    assert reversal_weight(0.1, 0.5) == pytest.approx(0.5 * (2 / (1 + np.exp(-1)) - 1))
    assert reversal_weight(1.0, 0.5) == pytest.approx(0.5, abs=1e-4)


def _policy_log(path, rgb, depth):
    with HardwareLog(path) as log:
        for r, d in zip(rgb, depth, strict=True):
            log.write("/policy/observation", {"proprio": [0.0]})
            log.write_lossless("/policy/observation/rgb", r)
            log.write_lossless("/policy/observation/depth", d)


def test_target_frames_are_the_policys_frames_or_the_cameras_reduced(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 16, 20, 3), dtype=np.uint8)
    depth = rng.uniform(0.2, 1.0, (7, 16, 20, 1)).astype(np.float32)
    _policy_log(tmp_path / "a.mcap", rgb, depth)
    color = rng.integers(0, 256, (3, 120, 160, 3), dtype=np.uint8)
    far = rng.uniform(0.3, 2.0, (3, 120, 160)).astype(np.float32)
    with HardwareLog(tmp_path / "b.mcap") as log:  # a deploy with --log-cameras of another policy
        for c, d in zip(color, far, strict=True):
            log.write_color("/camera/color", c, 1)
            log.write_depth("/camera/depth", d, 1)
            log.write_lossless("/policy/observation/rgb", c[:8, :8].copy())  # another view: not the student's
    frames = read_target_frames([str(tmp_path / "a.mcap")], (20, 16), None, 100, 0)
    assert np.array_equal(frames.rgb, rgb) and np.array_equal(frames.depth, depth)  # exact: written losslessly
    crop = (40, 20, 80, 64)
    frames = read_target_frames([str(tmp_path / "b.mcap")], (20, 16), crop, 100, 0)
    assert frames.sources[0]["topics"] == ["/camera/color", "/camera/depth"]
    assert frames.rgb.shape == (3, 16, 20, 3) and frames.depth.shape == (3, 16, 20, 1)
    _, depth_reduced = reduce_frame(color[1], np.round(far[1] * 1000) / 1000, (20, 16), crop)  # depth: whole mm
    assert np.allclose(frames.depth[1], depth_reduced, atol=1e-6)
    rgb_reduced, _ = reduce_frame(color[1], far[1], (20, 16), crop)
    assert np.abs(frames.rgb[1].astype(int) - rgb_reduced).mean() < 12  # through JPEG: near, not equal
    both = read_target_frames([str(tmp_path / "*.mcap")], (20, 16), crop, 5, 0)
    assert len(both.rgb) == 5 and sum(s["used"] for s in both.sources) == 5
    assert [s["frames"] for s in both.sources] == [7, 3] and all(len(s["sha256"]) == 64 for s in both.sources)
    again = read_target_frames([str(tmp_path / "*.mcap")], (20, 16), crop, 5, 0)
    assert np.array_equal(again.rgb, both.rgb)  # the draw is seeded


def test_logs_without_usable_frames_are_refused_by_name(tmp_path):
    with HardwareLog(tmp_path / "state.mcap") as log:
        log.write("/joint_states", {"position": [0.0]})
    with pytest.raises(ValueError, match="--log-cameras"):
        read_target_frames([str(tmp_path / "state.mcap")], (20, 16), None, 10, 0)
    with pytest.raises(FileNotFoundError, match="nothing"):
        read_target_frames([str(tmp_path / "nothing*.mcap")], (20, 16), None, 10, 0)


def test_the_domain_gap_probe_tells_shifted_frames_from_the_same_ones():
    torch.manual_seed(0)
    student = RGBDStudent((32, 32), 3, 2, channels=(8, 8))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (400, 32, 32, 3), dtype=np.uint8)
    depth = rng.uniform(0.3, 1.0, (400, 32, 32, 1)).astype(np.float32)
    sim = (rgb[:200], depth[:200])
    from policies.adapt import TargetFrames

    same = TargetFrames(rgb[200:], depth[200:], [])
    shifted = TargetFrames((rgb[200:] // 3).astype(np.uint8), depth[200:] + 0.5, [])
    assert domain_gap(student, sim, shifted, 0) > 0.9
    assert domain_gap(student, sim, same, 0) < 0.7


@pytest.mark.slow
def test_an_adapted_student_records_its_frames_and_drives(tmp_path):
    """A short DANN run of the shipped grasp student on frames of a shifted domain (the simulator's frames with
    their colour channels reversed, as a log of the student's view holds them): the bundle loads and runs,
    records the log it saw, and the run reports the feature gap before and after."""
    from policies.adapt import adapt
    from policies.adapt_config import AdaptConfig
    from policies.evaluate import evaluate
    from sim.envs.factory import task_env

    meta = yaml.safe_load(open("policies/bundles/grasp_rgbd/bundle.yaml"))
    env = task_env("grasp", "default", obs_mode="rgbd", image_size=(64, 64), **meta["camera"])
    rgb, depth = [], []
    for seed in range(12):
        obs, _ = env.reset(seed=9_000_000 + seed)
        rgb.append(obs["rgb"][:, :, ::-1].copy())
        depth.append(obs["depth"].astype(np.float32))
    env.close()
    _policy_log(tmp_path / "target.mcap", rgb, depth)
    config = AdaptConfig(
        student="grasp_rgbd",
        frames=(str(tmp_path / "target.mcap"),),
        out=str(tmp_path / "run"),
        scenes=48,
        epochs=1,
        batch_size=16,
        eval_episodes=1,
        workers=1,
    )
    report = adapt(config, progress=False)
    assert 0.0 <= report["domain_gap_before"] <= 1.0 and 0.0 <= report["domain_gap_after"] <= 1.0
    assert report["fit"]["domain_accuracy"] > 0 and report["simulation"]["episodes"] == 1
    bundle = yaml.safe_load(open(tmp_path / "run" / "bundle" / "bundle.yaml"))
    record = bundle["training"]["adaptation"]
    assert record["method"] == "dann" and record["frames_used"] == 12
    assert record["frames"][0]["path"].endswith("target.mcap") and record["frames"][0]["used"] == 12
    assert bundle["camera"] == meta["camera"] and bundle["observation"] == meta["observation"]
    summary = evaluate(str(tmp_path / "run" / "bundle"), "grasp", 1, 5_000_000, progress=False)
    assert summary.episodes == 1
    with pytest.raises(FileExistsError):
        adapt(config, progress=False)


def test_a_student_whose_recorded_teacher_is_gone_asks_for_one(tmp_path):
    """The shipped navigation student was distilled from a run folder that is not shipped: the error says so and
    names --teacher, before anything is collected."""
    from policies.adapt import adapt
    from policies.adapt_config import AdaptConfig
    from robot.spec import BundleError

    config = AdaptConfig(student="navigate_rgbd", frames=("unused.mcap",), out=str(tmp_path / "run"), workers=1)
    with pytest.raises(BundleError, match="recorded teacher runs/navigate_ppo cannot be loaded.*--teacher"):
        adapt(config, progress=False)
    assert not (tmp_path / "run" / "report.json").exists()

"""The example bundles shipped in policies/bundles/ (made by `make bundles`) load against the robots in
hardware_configs/ and do their task on held-out seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.evaluate import evaluate
from policies.loader import load
from robot.config_file import load_hardware_config

BUNDLES = Path(__file__).resolve().parents[1] / "policies" / "bundles"
# name -> (task, robot, episodes, minimum success on held-out seeds); the full figures are in the bundles' training
# reports (the grasp camera student is below its target, 69-83 % on unseen seeds against the teacher's 97 %: issue 6)
EXAMPLES = {
    "grasp_state": ("grasp", "openmanipulator_x", 20, 0.8),
    "grasp_rgbd": ("grasp", "openmanipulator_x", 20, 0.5),
    "navigate_state": ("navigate", "turtlebot3_burger", 10, 0.8),
    "navigate_rgbd": ("navigate", "turtlebot3_burger", 10, 0.6),
    "so101_grasp_state": ("grasp", "so101", 20, 0.8),
    "so101_grasp_rgbd": ("grasp", "so101", 20, 0.5),  # 75 % on 60 seeds from 6,000,000, 68 % on 100 from 6,100,000
}

# The grasp students pretrained on scenes from 3,000,000 (policies.distill_data.PRETRAIN_SEED): score them elsewhere.
HELD_OUT_SEEDS = {"grasp_rgbd": 6_000_000, "so101_grasp_rgbd": 6_000_000}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_bundle_succeeds_on_held_out_seeds(name):
    task, robot, episodes, minimum = EXAMPLES[name]
    path = BUNDLES / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make bundles`")
    policy = load(path, robot=load_hardware_config(robot))
    assert policy.task == task
    seed = HELD_OUT_SEEDS.get(name, 3_000_000)
    summary = evaluate(str(path), task, episodes, seed=seed, randomization="default", progress=False)
    assert summary.success_rate >= minimum, f"{name}: {summary.success_rate:.2f} on {episodes} held-out episodes"


def test_the_grasp_student_grasps_on_a_dark_striped_table():
    """Issue 22's corner of the visual range: a dark, low-saturation table with near-black stripes, every value
    inside the training ranges, on which the simulated D435 loses depth in the stripes. The shipped student: 79 % on
    100 seeds from 7,100,000 (seeds no training run was chosen on; the student before the surface-overlay runs 58 %);
    here the first 20 of them."""
    domain = Path(__file__).resolve().parents[1] / "docs/robustness/grasp_dark_striped_table.yaml"
    summary = evaluate(
        str(BUNDLES / "grasp_rgbd"), "grasp", 20, seed=7_100_000, randomization="default", domain=domain, progress=False
    )
    assert summary.success_rate >= 0.65, f"{summary.success_rate:.2f} on the dark striped table"

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
    "so101_grasp_rgbd": ("grasp", "so101", 20, 0.25),  # 46.7 % on 60 held-out seeds from 6,000,000
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

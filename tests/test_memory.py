"""Policies with memory (``s2r train --history N``): the window the training env shows is the one the deployed
policy keeps itself, from the same readings and its own actions; it is logged on the robot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import policies
from policies.cli import main as s2r
from policies.memory import MemoryPolicy
from policies.sb3_actor import FlattenKeys
from policies.train import TrainConfig, TrainingRun, state_spec, train
from robot.spec import BundleError
from sim.envs.factory import task_env


def _memory_bundle(folder, horizon: int = 3):
    """An untrained PPO policy with ``horizon`` steps of memory, written the way s2r train writes it."""
    run = TrainingRun(TrainConfig(task="grasp", out=str(folder / "run"), n_envs=1, history=horizon))
    env = task_env("grasp", "default", history=horizon)
    run.spec = state_spec(env)
    rng = np.random.default_rng(0)  # a normalization that moves every input, so the window's values matter
    run.normalization = {
        "mean": rng.normal(0, 0.1, run.spec.size).astype(np.float32),
        "std": rng.uniform(0.05, 0.5, run.spec.size).astype(np.float32),
    }
    env.close()
    model = run._new_model(DummyVecEnv([lambda: FlattenKeys(task_env("grasp", "default", history=horizon), run.spec)]))
    run.write_bundle(model, folder / "memory", step=0)
    return folder / "memory"


def test_the_deployed_window_is_the_one_the_training_env_showed(tmp_path):
    """The policy run on the plain env (keeping its own window) acts exactly as its network on the training env's
    observation with ``history``, step after step, across an episode boundary."""
    bundle = _memory_bundle(tmp_path)
    policy = policies.load(bundle)
    assert isinstance(policy, MemoryPolicy)
    assert policy.obs_spec.keys == ("proprio", "privileged", "effort") and policy.obs_spec.shapes["effort"] == (5,)
    assert policy.network_spec.shapes["history"] == (3 * (14 + 5 + 4),)
    wrapped, plain = task_env("grasp", "default", history=3), task_env("grasp", "default")
    compared = 0
    for seed in (7, 8):
        obs_w, _ = wrapped.reset(seed=seed)
        obs_p, _ = plain.reset(seed=seed)
        policy.reset()
        for _ in range(6):
            action = policy.act(obs_p)
            np.testing.assert_array_equal(policy.memory, obs_w["history"])
            np.testing.assert_array_equal(action, policy.act_flat(policy.network_spec.flatten(obs_w)))
            obs_w, *_ = wrapped.step(action)
            obs_p, *_ = plain.step(action)
            compared += 1
        # the window's newest reading is this step's proprioception and efforts, the action before it the last sent
        np.testing.assert_array_equal(obs_w["history"][-23:-4], np.concatenate([obs_p["proprio"], obs_p["effort"]]))
        np.testing.assert_array_equal(obs_w["history"][-4:], action)
    assert compared == 12
    obs_p.pop("effort")
    with pytest.raises(BundleError, match="effort"):
        policy.act(obs_p)
    wrapped.close()
    plain.close()


def test_train_with_history_writes_a_memory_bundle(tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(
        task="grasp", out=str(out), history=2, steps=256, bc_demos=4, bc_epochs=2, n_envs=1, eval_every=256
    )
    cfg.eval_episodes = 2
    report = train(cfg)
    policy = policies.load(out)
    assert isinstance(policy, MemoryPolicy) and policy.meta["memory"] == {
        "horizon": 2,
        "readings": ["proprio", "effort"],
    }
    assert report["demonstrations"]["samples"] > 0
    result = tmp_path / "eval.json"
    assert s2r(["eval", "--policy", str(out), "--task", "grasp", "--episodes", "2", "--json", str(result)]) == 0
    evaluated = json.loads(result.read_text())
    assert evaluated["episodes"] == 2 and len(evaluated["per_episode"]) == 2
    with pytest.raises(ValueError, match="--demos with --history"):
        TrainingRun(TrainConfig(task="grasp", out=str(tmp_path / "x"), history=2, demos=["a.mcap"]))


@pytest.mark.slow
def test_a_memory_policy_deploys_on_the_mock_arm_with_its_window_logged(tmp_path):
    from policies.deploy import DeployConfig, deploy
    from real.log_reader import read_log

    bundle = _memory_bundle(tmp_path, horizon=2)
    log = tmp_path / "memory.mcap"
    summary = deploy(
        DeployConfig(robot="mock/openmanipulator_x", policy=str(bundle), max_steps=8, log=str(log), status=False)
    )
    assert summary.ended == "completed"
    windows = [np.asarray(m.data["window"]) for m in read_log(log, topics=["/policy/memory"])]
    observations = [m.data for m in read_log(log, topics=["/policy/observation"])]
    actions = [np.asarray(m.data["action"]) for m in read_log(log, topics=["/policy/action"])]
    assert len(windows) == len(observations) == len(actions) == summary.episodes[0].steps == 8
    for k, (window, obs) in enumerate(zip(windows, observations, strict=True)):
        newest = np.concatenate([obs["proprio"], obs["effort"]])
        np.testing.assert_allclose(window[-23:-4], newest, rtol=1e-6, atol=1e-6)
        if k > 0:  # the action before the newest reading is the one the policy sent the cycle before
            np.testing.assert_allclose(window[-4:], actions[k - 1], atol=1e-6)
    from policies.replay_check import check_policy

    assert check_policy(log, bundle)["matches"]  # the window rebuilt from the logged observations, exactly
    # joint 2 holds the arm up: about -0.35 N*m at the start pose, as in the simulation, read from Present Current
    assert all(-0.5 < w[-23 + 14 + 1] < -0.2 for w in windows)


def test_a_bases_memory_holds_its_scans():
    """The base's window holds each step's scan beside its odometry and wheel efforts: how far the room moved in
    the laser's view, against how far the wheels say they went, is what can show a wheel's true radius."""
    env = task_env("navigate", "default", history=2)
    obs, _ = env.reset(seed=3)
    assert obs["history"].shape == (2 * (7 + 2 + 16 + 2),)
    step = np.concatenate([obs["proprio"], obs["effort"], obs["scan"], np.zeros(2)])
    np.testing.assert_array_equal(obs["history"], np.concatenate([step, step]))
    env.close()


@pytest.mark.parametrize(
    ("memory", "message"),
    [
        ({"horizon": 2, "readings": ["joy"]}, "memory.readings"),
        ({"horizon": 0}, "memory.horizon"),
        ({"horizon": 2}, "come together"),
    ],
)
def test_a_broken_memory_entry_is_refused_by_name(memory, message, tmp_path):
    import shutil

    import yaml

    bundle = tmp_path / "b"
    shutil.copytree("policies/bundles/grasp_state", bundle)
    meta = yaml.safe_load((bundle / "bundle.yaml").read_text())
    meta["memory"] = memory
    (bundle / "bundle.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    with pytest.raises(BundleError, match=message):
        policies.load(bundle)


def test_a_memory_bundle_is_refused_without_its_entry_or_with_an_estimator(tmp_path):
    import yaml

    bundle = _memory_bundle(tmp_path)
    meta = yaml.safe_load((bundle / "bundle.yaml").read_text())
    for edit, message in (
        (lambda m: m.pop("memory"), "come together"),
        (
            lambda m: m.update(osi={"history": 2, "proprio_dim": 14, "inputs": 36, "hidden": [8]}),
            "without an estimator",
        ),
    ):
        changed = yaml.safe_load(yaml.safe_dump(meta))
        edit(changed)
        (bundle / "bundle.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
        with pytest.raises(BundleError, match=message):
            policies.load(bundle)
    with pytest.raises(ValueError, match="--history with --universal"):
        TrainingRun(TrainConfig(task="grasp", out=str(tmp_path / "x"), history=2, universal=True))


def test_a_memory_policy_continues_from_its_own_bundle(tmp_path):
    """--init takes a memory bundle whose network input (history included) is the run's."""
    bundle = _memory_bundle(tmp_path, horizon=3)
    run = TrainingRun(TrainConfig(task="grasp", out=str(tmp_path / "r"), history=3, init=str(bundle), n_envs=1))
    run.spec = state_spec(task_env("grasp", "default", history=3))
    assert isinstance(run._initial_policy(), MemoryPolicy)
    run = TrainingRun(TrainConfig(task="grasp", out=str(tmp_path / "r2"), history=2, init=str(bundle), n_envs=1))
    run.spec = state_spec(task_env("grasp", "default", history=2))
    with pytest.raises(BundleError, match="observation"):
        run._initial_policy()

"""Training runs, policy bundles and evaluation: small runs on the real envs and stable-baselines3 models."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from stable_baselines3.common.vec_env import DummyVecEnv
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import policies
from policies.cli import main as s2r
from policies.loader import load
from policies.sb3_actor import FlattenKeys, behaviour_clone, model_actor
from policies.train import (
    EVAL_SEED,
    StateEnv,
    TrainConfig,
    TrainingRun,
    collect_demonstrations,
    evaluate_actor,
    state_spec,
    train,
)
from robot.config_file import load_hardware_config
from robot.spec import BundleError, robot_signature
from sim import TASK_IDS
from sim.envs.factory import task_env


def _fresh_model(tmp_path, algo: str, task: str = "grasp"):
    """An untrained SB3 model as TrainingRun builds it (fixed normalization inside), and its run."""
    run = TrainingRun(TrainConfig(task=task, algo=algo, out=str(tmp_path / algo), n_envs=1))
    env = task_env(task, "default")
    run.spec = state_spec(env)
    rng = np.random.default_rng(0)
    run.normalization = {
        "mean": rng.normal(0, 0.1, run.spec.size).astype(np.float32),
        "std": rng.uniform(0.5, 2.0, run.spec.size).astype(np.float32),
    }
    venv = DummyVecEnv([lambda: FlattenKeys(task_env(task, "default"), run.spec)])
    return run, run._new_model(venv), env


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_bundle_acts_exactly_like_the_trained_model(tmp_path, algo):
    run, model, env = _fresh_model(tmp_path, algo)
    run.write_bundle(model, tmp_path / "bundle", step=0)
    policy = policies.load(tmp_path / "bundle", robot=env.unwrapped.config, observation_space=env.observation_space)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        flat = run.spec.flatten(obs)
        want, _ = model.predict(flat, deterministic=True)
        np.testing.assert_allclose(policy.act(obs), np.clip(want, -1, 1), atol=1e-5)
    meta = yaml.safe_load((tmp_path / "bundle" / "bundle.yaml").read_text())
    assert meta["task"] == "grasp" and meta["observation"]["keys"] == ["proprio", "privileged"]
    assert meta["robot"]["signature"]["joints"] == env.unwrapped.config.joint_names
    assert meta["randomization"]["source"] == "default" and meta["randomization"]["config"]["terms"]
    assert {"command", "seed", "steps", "code_version"} <= set(meta["training"])


def test_bundle_refuses_another_robot_and_other_observations(tmp_path):
    run, model, env = _fresh_model(tmp_path, "ppo")
    run.write_bundle(model, tmp_path / "bundle", step=0)
    base = load_hardware_config("turtlebot3_burger")
    with pytest.raises(BundleError, match="joints: bundle expects"):
        load(tmp_path / "bundle", robot=base)
    arm = load_hardware_config("openmanipulator_x")
    other = arm.model_copy(update={"arm": arm.arm.model_copy(update={"gripper_closed": 0.0})})
    with pytest.raises(BundleError, match=r"arm\.gripper"):
        load(tmp_path / "bundle", robot=other)
    # the port may change: it is not part of what a policy depends on
    moved = arm.model_copy(update={"bus": arm.bus.model_copy(update={"port": "/dev/ttyACM3"})})
    assert robot_signature(moved) == robot_signature(arm)
    load(tmp_path / "bundle", robot=moved)

    policy = load(tmp_path / "bundle")
    obs, _ = env.reset(seed=0)
    with pytest.raises(BundleError, match="lacks"):
        policy.act({"proprio": obs["proprio"]})
    with pytest.raises(BundleError, match=r"'privileged' has shape \(12,\)"):
        policy.act({**obs, "privileged": obs["privileged"][:12]})
    rgbd = gym.make(TASK_IDS["grasp"], obs_mode="rgbd")
    with pytest.raises(BundleError, match="lacks 'privileged'"):
        policy.check_observation_space(rgbd.observation_space)
    with pytest.raises(BundleError, match="not a policy bundle"):
        load(tmp_path / "ppo")


def test_behaviour_cloning_from_the_expert_works(tmp_path):
    """60 expert episodes under default randomization make an actor that grasps on held-out seeds."""
    demos = collect_demonstrations(StateEnv("grasp"), 60, 500_000, progress=False)
    assert demos.successes >= 50 and len(demos.obs) == len(demos.actions) == len(demos.returns)
    run, _, _ = _fresh_model(tmp_path, "ppo")
    run.normalization = {"mean": demos.obs.mean(0), "std": np.maximum(demos.obs.std(0), 1e-3)}  # as train() does
    model = run._new_model(DummyVecEnv([lambda: FlattenKeys(task_env("grasp", "default"), run.spec)]))
    before = evaluate_actor(model_actor(model), StateEnv("grasp"), 20, EVAL_SEED)
    losses = behaviour_clone(model, demos, epochs=40, seed=0)
    after = evaluate_actor(model_actor(model), StateEnv("grasp"), 20, EVAL_SEED)
    assert losses["bc_action_mse"] < 0.15
    assert before["success_rate"] <= 0.1
    assert after["success_rate"] >= 0.7, after


def test_training_run_writes_everything_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    cfg = TrainConfig(
        task="grasp",
        steps=512,
        out=str(out),
        n_envs=1,
        bc_demos=8,
        bc_epochs=5,
        eval_every=256,
        eval_episodes=3,
        checkpoint_every=256,
    )
    report = train(cfg)
    assert report["demonstrations"]["episodes"] == 8
    for name in (
        "run.yaml",
        "eval.json",
        "report.json",
        "bundle/bundle.yaml",
        "bundle/weights.pt",
        "checkpoints/last.zip",
        "checkpoints/state.json",
    ):
        assert (out / name).exists(), name
    assert any((out / "tb").rglob("events.out.tfevents.*")), "TensorBoard logs"
    scalars: set[str] = set()
    for events in (out / "tb").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        scalars |= set(accumulator.Tags()["scalars"])
    assert {"rollout/ep_rew_mean", "rollout/ep_len_mean", "rollout/success_rate"} <= scalars, scalars
    history = json.loads((out / "eval.json").read_text())["history"]
    assert history[0]["step"] == 0 and history[-1]["step"] >= 512  # after BC, then during / after RL
    with pytest.raises(FileExistsError, match="--resume"):
        train(TrainConfig(task="grasp", steps=512, out=str(out), n_envs=1))
    first_steps = json.loads((out / "checkpoints" / "state.json").read_text())["num_timesteps"]
    report = train(TrainConfig(task="grasp", steps=first_steps + 256, out=str(out), n_envs=1), resume=True)
    assert report["resumed_from"] == first_steps
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["num_timesteps"] > first_steps
    assert len(state["history"]) > len(history)

    # the bundle evaluates through the CLI, alone and in a sweep
    result = tmp_path / "eval.json"
    assert s2r(["eval", "--policy", str(out), "--task", "grasp", "--episodes", "2", "--json", str(result)]) == 0
    data = json.loads(result.read_text())
    assert data["episodes"] == 2 and len(data["per_episode"]) == 2 and "object_mass" in data["per_episode"][0]["domain"]
    plot = tmp_path / "sweep.png"
    code = s2r(
        [
            "eval",
            "--policy",
            str(out),
            "expert",
            "--task",
            "grasp",
            "--episodes",
            "2",
            "--sweep",
            "object_mass=0.05:0.2:2",
            "--plot",
            str(plot),
            "--json",
            str(result),
        ]
    )
    assert code == 0 and plot.stat().st_size > 5000
    sweep = json.loads(result.read_text())
    assert sweep["values"] == [0.05, 0.2] and set(sweep["curves"]) == {str(out), "expert"}
    assert sweep["unit"] == "kg"  # the plot's x-axis reads "object_mass (kg)"
    assert s2r(["eval", "--policy", str(out), "--task", "navigate", "--episodes", "1"]) == 2
    assert "not a 'navigate' one" in capsys.readouterr().err


def test_a_run_continues_a_shipped_bundle(tmp_path, capsys):
    """`s2r train --init BUNDLE` (the real-to-sim-to-real loop's fine-tune): the run starts from the bundle's actor
    and normalization exactly (its step-0 evaluation is the bundle's own), its critic is fitted to the bundle's own
    episodes, failures included, and the bundle it writes says what it continued."""
    shipped = load("policies/bundles/grasp_state")
    out = tmp_path / "tuned"
    cfg = TrainConfig(
        task="grasp", steps=256, out=str(out), n_envs=1, init="policies/bundles/grasp_state", bc_demos=3, bc_epochs=2
    )
    cfg.eval_every, cfg.eval_episodes = 10_000, 4
    run = TrainingRun(cfg)
    report = run.run(progress=False)
    assert report["demonstrations"]["by"] == "policies/bundles/grasp_state"
    assert report["demonstrations"]["samples"] > 3 * 5  # every episode's steps, not only the successful ones
    assert np.isfinite(report["behaviour_cloning"]["bc_value_mse"])  # the critic was fitted to those returns
    saved = yaml.safe_load((out / "run.yaml").read_text())["normalization"]
    np.testing.assert_array_equal(np.asarray(saved["mean"], np.float32), shipped.normalization[0])
    first = run.history[0]

    def shipped_flat(flat: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.clip(shipped.network(torch.from_numpy(shipped.normalize(flat))[None])[0].numpy(), -1, 1)

    baseline = evaluate_actor(shipped_flat, StateEnv("grasp"), 4, EVAL_SEED)
    assert first["step"] == 0 and first["success_rate"] == baseline["success_rate"]
    assert first["mean_return"] == pytest.approx(baseline["mean_return"], abs=1e-4)
    meta = yaml.safe_load((out / "bundle" / "bundle.yaml").read_text())
    assert meta["training"]["continued_from"] == "policies/bundles/grasp_state"

    for bad, words in [
        ({"task": "navigate"}, "its task is grasp, this run's navigate; its observation"),
        ({"hidden": [64, 64]}, "is not an MLP [64, 64]"),
        ({"algo": "sac"}, "activation tanh is not sac's relu"),
    ]:
        other = dataclasses.replace(cfg, out=str(tmp_path / "bad"), **bad)
        with pytest.raises(BundleError, match=words.replace("[", r"\[").replace("]", r"\]")):
            TrainingRun(other).run(progress=False)
        assert not (tmp_path / "bad").exists()  # refused before anything was written


def test_distillation_makes_an_rgbd_bundle(tmp_path):
    """Two small DAgger iterations from the expert: the data aggregates, the student drives in iteration 1, and the
    bundle loads as a camera policy that refuses state observations."""
    from policies.distill import DistillConfig, distill

    out = tmp_path / "student"
    report = distill(
        DistillConfig(
            teacher="expert",
            task="grasp",
            out=str(out),
            steps=200,
            iterations=2,
            epochs=1,
            eval_episodes=2,
            encoder="keypoints",  # the example navigate_rgbd bundle covers the flattened encoder
        ),
        progress=False,
    )
    h = report["history"]
    assert [r["beta"] for r in h] == [1.0, 0.5]
    assert h[0]["samples"] >= 100 and h[1]["samples"] >= h[0]["samples"] + 100
    policy = load(out, robot=load_hardware_config("openmanipulator_x"))
    assert policy.meta["network"]["type"] == "cnn" and policy.meta["training"]["teacher"] == "expert"
    assert policy.meta["network"]["encoder"] == "keypoints"
    np.testing.assert_allclose(  # the student in the bundle is the one that was trained
        policy.network.encoder[0].weight.detach().numpy(),
        torch.load(out / "bundle" / "weights.pt", weights_only=True)["encoder.0.weight"].numpy(),
    )
    env = gym.make(TASK_IDS["grasp"], obs_mode="rgbd")
    obs, _ = env.reset(seed=3)
    action = policy.act(obs)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1)
    state_env = gym.make(TASK_IDS["grasp"], obs_mode="state")
    with pytest.raises(BundleError, match="lacks 'rgb'"):
        policy.check_observation_space(state_env.observation_space)
    with pytest.raises(FileExistsError):
        distill(DistillConfig(teacher="expert", task="grasp", out=str(out), steps=10, iterations=1), progress=False)


def test_a_student_is_distilled_on_its_teachers_robot(tmp_path):
    """The SO-101's state teacher: its scenes (collected in a worker process too), DAgger and held-out episodes
    are the SO-101's grasp, and the student's bundle is for the SO-101 (6 joints), refused by the other arm."""
    from policies.distill import Distillation, DistillConfig

    config = DistillConfig(
        teacher="so101_grasp_state",
        out=str(tmp_path / "student"),
        workers=2,
        steps=20,
        iterations=1,
        epochs=1,
        eval_episodes=1,
        channels=(8, 8, 8),
        pretrain_scenes=4,
        pretrain_epochs=1,
    )
    run = Distillation(config)
    assert run.env.unwrapped.config.name == "so101" and run.robot == "so101"
    assert run.collect_scenes(4, progress=False, chunk=2)["samples"] == 4
    assert {len(p) for p in run.data.proprio} == {run.env.observation_space["proprio"].shape[0]}
    run.run(progress=False)
    student = load(tmp_path / "student", robot=load_hardware_config("so101"))
    assert student.meta["robot"]["name"] == "so101"
    with pytest.raises(BundleError):
        load(tmp_path / "student", robot=load_hardware_config("openmanipulator_x"))


def test_distillation_pretrains_on_scenes_with_a_coordinate_encoder(tmp_path):
    """--pretrain-scenes: one early teacher-labelled frame per new scene, fitted before DAgger; the CoordConv
    student round-trips through the bundle (the loaded network gives the trained network's action). With
    --supersample and --crop the bundle records them and evaluations render the camera the same way."""
    from policies.distill import Distillation, DistillConfig
    from policies.evaluate import policy_factory

    config = DistillConfig(
        teacher="expert",
        task="grasp",
        out=str(tmp_path / "student"),
        workers=2,
        steps=60,
        iterations=1,
        epochs=1,
        eval_episodes=1,
        channels=(8, 8, 8),
        coordinates=True,
        pretrain_scenes=12,
        pretrain_epochs=2,
        supersample=2,
        crop=(96, 96, 448, 336),
        surface_overlay=0.5,
    )
    run = Distillation(config)
    scenes = run.collect_scenes(12, progress=False, chunk=6)
    assert scenes == {"scenes": 12, "samples": 12, "from_cache": 0}
    positions = np.stack(run.data.privileged)[:, :3]
    assert len(np.unique(positions.round(4), axis=0)) == 12  # twelve scenes, not one scene twelve times
    serial = Distillation(dataclasses.replace(config, workers=1))
    serial.collect_scenes(12, progress=False, chunk=6)  # the same frames in one process
    np.testing.assert_array_equal(np.stack(serial.data.rgb), np.stack(run.data.rgb))
    np.testing.assert_array_equal(np.stack(serial.data.action), np.stack(run.data.action))
    assert run.data.surfaces().max() == 255  # each scene with its table's mask (for --surface-overlay)
    np.testing.assert_array_equal(serial.data.surfaces(), run.data.surfaces())
    # --scene-cache: a second run reads the chunks the first wrote, the same frames; another seed does not
    cached = dataclasses.replace(config, workers=1, scene_cache=str(tmp_path / "cache"))
    first = Distillation(cached)
    assert first.collect_scenes(12, progress=False, chunk=6)["from_cache"] == 0
    again = Distillation(cached)
    assert again.collect_scenes(18, progress=False, chunk=6) == {"scenes": 18, "samples": 18, "from_cache": 12}
    np.testing.assert_array_equal(np.stack(again.data.rgb)[:12], np.stack(run.data.rgb))
    np.testing.assert_array_equal(again.data.surfaces()[:12], run.data.surfaces())
    assert len(np.unique(np.stack(again.data.privileged)[:, :3].round(4), axis=0)) == 18
    other = Distillation(dataclasses.replace(cached, seed=1))
    assert other.collect_scenes(6, progress=False, chunk=6)["from_cache"] == 0
    direct = Distillation(dataclasses.replace(cached, supersample=1, crop=None))
    assert direct.collect_scenes(6, progress=False, chunk=6)["from_cache"] == 0
    assert not np.array_equal(np.stack(direct.data.rgb), np.stack(run.data.rgb)[:6])  # same scenes, other frames
    np.testing.assert_array_equal(np.stack(direct.data.action), np.stack(run.data.action)[:6])
    assert len(list((tmp_path / "cache").iterdir())) == 3  # one folder per setting
    trained = Distillation(config)
    report = trained.run(progress=False)
    assert report["pretraining"]["samples"] == 12 and np.isfinite(report["pretraining"]["loss"])
    pretrained = load(tmp_path / "student" / "pretrained")  # kept before DAgger: --init can start from it
    assert pretrained.meta["training"]["iterations_done"] == 0
    assert pretrained.meta["training"]["held_out_success"] is None
    assert report["history"][0]["samples"] >= 12 + 60
    assert all(mask.max() == 255 for mask in trained.data.surface[12:])  # DAgger's samples carry masks too
    # the auxiliary head's reading of the object position on the held-out first frames, in metres
    located = report["history"][0]["object_position_error_at_reset_m"]
    assert 0 < located["median"] < 1.0 and len(report["history"][0]["aux_mae_at_reset"]) == trained.priv_dim
    policy = load(tmp_path / "student", robot=load_hardware_config("openmanipulator_x"))
    assert policy.meta["network"]["coordinates"] is True
    assert policy.network.encoder[0].in_channels == 6
    camera = {"supersample": 2, "crop": [96, 96, 448, 336]}
    assert policy.meta["camera"] == camera and policy_factory(str(tmp_path / "student"), "grasp").camera == camera
    env = gym.make(TASK_IDS["grasp"], obs_mode="rgbd", **camera)
    obs, _ = env.reset(seed=4)
    np.testing.assert_allclose(policy.act(obs), trained.student_act(obs), atol=1e-6)


def test_distillation_continues_a_student_bundle(tmp_path, monkeypatch):
    """--init: the run starts from the bundle's network and normalization (it acts as the bundle does), counts
    DAgger iterations on from the bundle's, adds pretraining scenes without refitting on them, keeps every
    iteration's bundle, and refuses a bundle that does not fit the run. Bundles record the code version the run
    started from, not the checkout's at the time they are written."""
    import policies.bundle
    import policies.distill
    from policies.distill import Distillation, DistillConfig

    base = DistillConfig(
        teacher="expert", task="grasp", out="", steps=40, iterations=1, epochs=1, eval_episodes=1, channels=(8, 8, 8)
    )
    distill_first = Distillation(dataclasses.replace(base, out=str(tmp_path / "first")))
    distill_first.run(progress=False)
    first = load(tmp_path / "first")
    config = dataclasses.replace(
        base, out=str(tmp_path / "more"), init=str(tmp_path / "first"), lr_decay=True, pretrain_scenes=4, workers=1
    )
    monkeypatch.setattr(policies.distill, "code_version", lambda: "v-start")
    more = Distillation(config)
    monkeypatch.setattr(policies.distill, "code_version", lambda: "v-later")
    monkeypatch.setattr(policies.bundle, "code_version", lambda: "v-later")
    env = gym.make(TASK_IDS["grasp"], obs_mode="rgbd")
    obs, _ = env.reset(seed=5)
    np.testing.assert_allclose(more.student_act(obs), first.act(obs), atol=1e-6)
    report = more.run(progress=False)
    assert [(h["iteration"], h["beta"]) for h in report["history"]] == [(1, 0.5)]
    assert report["pretraining"]["samples"] == 4 and "loss" not in report["pretraining"]
    # the first run's DAgger samples, kept in its folder, join the data after the scenes, as DAgger aggregates
    first_files = [str(tmp_path / "first" / "samples" / "iteration-0.npz")]
    assert first.meta["training"]["dagger_samples"] == first_files
    n_first = len(distill_first.data)
    assert n_first >= 40 and report["history"][0]["samples"] >= 4 + n_first + 40
    for field in ("rgb", "depth", "action", "privileged"):
        np.testing.assert_array_equal(
            np.stack(getattr(more.data, field))[4 : 4 + n_first], np.stack(getattr(distill_first.data, field))
        )
    np.testing.assert_array_equal(more.proprio_mean, first.normalization[0])  # the network's input scale is kept
    continued = load(tmp_path / "more" / "iterations" / "1")
    assert continued.meta["training"]["iterations_done"] == 2
    assert continued.meta["training"]["continued_from"] == str(tmp_path / "first")
    assert continued.meta["training"]["code_version"] == "v-start"
    more_files = [str(tmp_path / "more" / "samples" / "iteration-1.npz")]
    assert continued.meta["training"]["dagger_samples"] == first_files + more_files
    assert not np.allclose(continued.act(obs), first.act(obs), atol=1e-4)  # and it was trained further
    with pytest.raises(BundleError, match="its camera is"):
        Distillation(dataclasses.replace(config, out=str(tmp_path / "x"), supersample=2))
    with pytest.raises(BundleError, match="lacks .privileged"):
        Distillation(dataclasses.replace(config, out=str(tmp_path / "x"), init="policies/bundles/grasp_state"))
    # a continued run says so when the earlier samples are gone, or were never recorded, and goes on without them
    Path(first_files[0]).rename(tmp_path / "moved.npz")
    with pytest.warns(UserWarning, match="1 of its 1 DAgger sample files are missing"):
        assert Distillation(dataclasses.replace(config, out=str(tmp_path / "x"))).sample_files == []
    meta_file = tmp_path / "first" / "bundle" / "bundle.yaml"
    meta = yaml.safe_load(meta_file.read_text())
    del meta["training"]["dagger_samples"]
    meta_file.write_text(yaml.safe_dump(meta))
    with pytest.warns(UserWarning, match="records no DAgger samples"):
        Distillation(dataclasses.replace(config, out=str(tmp_path / "x")))


def test_detours_show_the_student_states_off_the_teacher_path(tmp_path):
    """--detours: scenes and DAgger episodes that begin with a random excursion reach tool positions the teacher's
    own path never visits, labelled by the teacher with the way back (toward the object); without detours the
    frames, and the scene cache they are kept in, are those of a run made before detours existed."""
    from policies.distill import Distillation, DistillConfig
    from policies.distill_data import Detour

    rng = np.random.default_rng(0)
    detours = [Detour(rng, 1.0, 10, 4) for _ in range(50)]
    assert {d.steps for d in detours} <= set(range(1, 11)) and len({d.steps for d in detours}) > 5
    assert all(np.all(np.abs(d.action) <= 1) and d.drive(d.steps - 1) is d.action for d in detours)
    assert all(d.drive(d.steps) is None for d in detours)
    state = np.random.default_rng(1).bit_generator.state
    no_detour = np.random.default_rng(1)
    assert Detour(no_detour, 0.0, 10, 4).steps == 0 and no_detour.bit_generator.state == state  # draws nothing

    base = DistillConfig(teacher="expert", task="grasp", out="", workers=1, scene_cache=str(tmp_path / "cache"))
    plain = Distillation(dataclasses.replace(base, out=str(tmp_path / "plain")))
    detoured = Distillation(dataclasses.replace(base, out=str(tmp_path / "detoured"), detours=1.0, detour_steps=12))
    default = Distillation(DistillConfig(teacher="expert", task="grasp", out="", scene_cache=str(tmp_path / "cache")))
    assert plain._scene_cache_folder() == default._scene_cache_folder() != detoured._scene_cache_folder()

    def offsets(run: Distillation) -> np.ndarray:  # object minus tool (m) of each sample
        return np.stack(run.data.privileged)[:, 7:10]

    for run in (plain, detoured):
        run.collect_scenes(16, progress=False, chunk=8)
    plain_d, detoured_d = (np.linalg.norm(offsets(r), axis=1) for r in (plain, detoured))
    assert detoured_d.max() > 1.5 * plain_d.max() and detoured_d.mean() > 1.4 * plain_d.mean()  # 20 vs 9.5 cm
    # DAgger with the teacher driving after the detour: far from the object the labels lead back toward it
    detoured.collect(150, beta=1.0, progress=False)
    off = offsets(detoured)[16:]
    far = np.linalg.norm(off[:, :2], axis=1) > 0.08  # 8 cm or more aside of the object
    assert far.sum() >= 10
    labels = np.stack(detoured.data.action)[16:][far, :2]
    assert np.mean(np.sum(labels * off[far, :2], axis=1) > 0) > 0.9  # horizontally toward it


def test_pretraining_frames_can_cover_the_whole_teacher_episode(tmp_path):
    """--pretrain-steps K: a scene's frame comes after 0..K teacher steps, so with K about an episode's length the
    scenes show grasp and lift too (objects in the air), not only the approach (objects on the table, centres
    below 2.5 cm); the default keeps the frames and the scene cache of runs made before the option existed."""
    from policies.distill import Distillation, DistillConfig

    base = DistillConfig(teacher="expert", task="grasp", out="", workers=1, scene_cache=str(tmp_path / "cache"))
    approach = Distillation(base)
    whole = Distillation(dataclasses.replace(base, pretrain_steps=40))
    default = Distillation(DistillConfig(teacher="expert", task="grasp", out="", scene_cache=str(tmp_path / "cache")))
    assert approach._scene_cache_folder() == default._scene_cache_folder() != whole._scene_cache_folder()
    for run in (approach, whole):
        run.collect_scenes(16, progress=False, chunk=8)
    object_z = [np.stack(run.data.privileged)[:, 2] for run in (approach, whole)]
    assert object_z[0].max() < 0.025 and np.sum(object_z[1] > 0.04) >= 3  # lifted 2-6 cm in 6 of 16 frames
    tool_to_object = [np.linalg.norm(np.stack(run.data.privileged)[:, 7:10], axis=1) for run in (approach, whole)]
    assert np.median(tool_to_object[1]) < 0.5 * np.median(tool_to_object[0])  # 1 cm vs 7 cm
    with pytest.raises(ValueError, match="pretrain_steps"):
        Distillation(dataclasses.replace(base, pretrain_steps=-1))


def test_coordinate_channels_hold_pixel_positions():
    from policies.student import with_coordinates

    x = with_coordinates(torch.zeros(2, 4, 3, 5))
    assert x.shape == (2, 6, 3, 5)
    np.testing.assert_allclose(x[0, 4, 0].numpy(), np.linspace(-1, 1, 5))  # x varies along a row
    np.testing.assert_allclose(x[1, 5, :, 0].numpy(), np.linspace(-1, 1, 3))  # y down a column


def test_epopt_keeps_only_the_worst_episodes(tmp_path):
    from stable_baselines3.common.logger import configure

    from policies.train_callbacks import EPOptFilter

    run, model, _ = _fresh_model(tmp_path, "ppo")
    assert model.normalize_advantage  # plain PPO normalizes its own batches
    model.set_logger(configure(None, []))
    buf = model.rollout_buffer
    n = buf.buffer_size  # one env: four episodes of n/4 steps with returns 4, 1, 3, 2 (x n/4)
    quarter = n // 4
    buf.episode_starts[:] = 0
    for k, r in enumerate([4.0, 1.0, 3.0, 2.0]):
        buf.episode_starts[k * quarter] = 1
        buf.rewards[k * quarter : (k + 1) * quarter] = r
    buf.advantages[:] = np.random.default_rng(0).normal(3.0, 2.0, buf.advantages.shape)
    cb = EPOptFilter(0.5)
    cb.init_callback(model)
    cb.on_rollout_end()
    kept = buf.advantages[:, 0] != 0
    assert kept.sum() == 2 * quarter
    assert kept[quarter : 2 * quarter].all() and kept[3 * quarter :].all()  # the episodes with returns 1 and 2
    np.testing.assert_allclose([buf.advantages[kept].mean(), buf.advantages[kept].std()], [0, 1], atol=1e-4)
    assert cb.kept_fraction == [0.5]
    with pytest.raises(ValueError, match="use --algo ppo"):
        TrainingRun(TrainConfig(task="grasp", algo="sac", epopt_epsilon=0.2))
    epopt_run = TrainingRun(TrainConfig(task="grasp", epopt_epsilon=0.2, out=str(tmp_path / "e"), n_envs=1))
    epopt_run.spec, epopt_run.normalization = run.spec, run.normalization
    venv = DummyVecEnv([lambda: FlattenKeys(task_env("grasp", "default"), run.spec)])
    assert not epopt_run._new_model(venv).normalize_advantage
    assert isinstance(epopt_run._callbacks()[0], EPOptFilter)

"""Online system identification: the dynamics parameters mu, the history window, the estimator, the adaptive
bundle and its evaluation modes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

import policies
from policies.cli import main as s2r
from policies.osi import AdaptivePolicy, History, OSIConfig, estimation_errors, fit_osi, train_osi
from policies.sb3_actor import FlattenKeys
from policies.train import TrainConfig, TrainingRun, state_spec
from robot.spec import BundleError
from sim.envs.factory import task_env, universal_terms
from sim.randomization.config import RandomizationConfig, load_randomization
from sim.randomization.dynamics import DynamicsObservation, DynamicsSpec


def test_mu_reads_pinned_values_back_and_extrapolates_outside_the_ranges():
    env = task_env("grasp", "default", universal=True)
    spec = env.dynamics
    assert spec.names == list(universal_terms("grasp"))
    pins = {"object_mass": 0.2, "latency_s": 0.0, "servo_strength": 1.0, "joint_damping_scale": 2.0}
    obs, _ = env.reset(seed=3, options={"domain": pins})
    mu = dict(zip(spec.names, obs["dynamics"], strict=True))
    assert mu["object_mass"] == pytest.approx(1.0, abs=1e-5)  # the top of the log-uniform range 0.015-0.2 kg
    assert mu["latency_s"] == pytest.approx(-1.0, abs=1e-5)  # the bottom of 0-40 ms
    assert mu["servo_strength"] == pytest.approx(0.0, abs=1e-5)  # the middle of 0.8-1.2
    assert mu["joint_damping_scale"] == pytest.approx(np.log(2.0 / 0.2) / np.log(100.0) * 2 - 1, abs=1e-5)
    physical = spec.denormalize(obs["dynamics"])
    assert dict(zip(spec.names, physical, strict=True))["object_mass"] == pytest.approx(0.2, rel=1e-5)
    # outside the training range: mass x3 of the top reads beyond +1 instead of being clipped
    obs, _ = env.reset(seed=3, options={"domain": {"object_mass": 0.6, "latency_s": 0.06}})
    mu = dict(zip(spec.names, obs["dynamics"], strict=True))
    assert mu["object_mass"] > 1.5 and mu["latency_s"] == pytest.approx(2.0, abs=1e-5)
    env.close()

    nav = task_env("navigate", "default", universal=True)
    obs, _ = nav.reset(seed=0, options={"domain": {"wheel_radius_scale": 1.04, "track_scale": 0.96}})
    mu = dict(zip(nav.dynamics.names, obs["dynamics"], strict=True))
    assert mu["wheel_radius_scale"] == pytest.approx(1.0, abs=1e-5) and mu["track_scale"] == pytest.approx(-1.0)
    nav.close()


def test_mu_needs_a_range_for_every_parameter():
    config = load_randomization("default", "grasp")
    without_latency = RandomizationConfig(terms=[t for t in config.terms if t.name != "latency_s"])
    with pytest.raises(ValueError, match="latency_s"):
        DynamicsSpec.for_task("grasp", without_latency, universal_terms("grasp"))
    # "none" keeps the default terms at strength 0: mu has its ranges, and reads the nominal domain
    env = task_env("grasp", "none", universal=True)
    obs, _ = env.reset(seed=0)
    nominal = dict(zip(env.dynamics.names, env.dynamics.denormalize(obs["dynamics"]), strict=True))
    assert nominal["servo_strength"] == pytest.approx(1.0) and nominal["latency_s"] == pytest.approx(0.0, abs=1e-9)
    env.close()


def test_history_window_pairs_each_reading_with_the_action_before_it():
    h = History(3, reading_dim=2, action_dim=1)
    h.push_reading(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(h.window(), [1, 2, 0] * 3)
    h.push_action(np.array([0.5]))
    h.push_reading(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(h.window(), [1, 2, 0, 1, 2, 0, 3, 4, 0.5])
    with pytest.raises(ValueError, match="3 values"):
        h.push_reading(np.zeros(3))
    h.reset()
    h.push_reading(np.array([7.0, 8.0]))
    np.testing.assert_array_equal(h.window(), [7, 8, 0] * 3)


def test_estimator_recovers_a_gain_from_history_and_longer_histories_help():
    """x' = x + g a + noise with g drawn per episode: g is identifiable from (x, a) pairs once a few have been seen;
    a one-step window holds no action that moved the state, so it can only guess."""
    rng = np.random.default_rng(0)
    spec = DynamicsSpec.from_dict(
        {"task": "toy", "params": [{"name": "g", "target": "g", "operation": "set", "low": 0.5, "high": 2.0}]}
    )
    data: dict[int, list[np.ndarray]] = {1: [], 8: []}
    targets, steps = [], []
    for _ in range(400):
        g = rng.uniform(0.5, 2.0)
        hist = {k: History(k, 1, 1) for k in data}
        x = rng.normal()
        for t in range(12):
            for k, hh in hist.items():
                hh.push_reading(np.array([x]))
                data[k].append(hh.window())
            targets.append(spec.normalize(np.array([g])))
            steps.append(t)
            a = rng.uniform(-1, 1)
            for hh in hist.values():
                hh.push_action(np.array([a]))
            x = x + g * a + rng.normal(0, 0.05)
    y = np.asarray(targets, np.float32)
    later = np.asarray(steps)[4000:] >= 4  # held-out windows with at least 4 past actions
    errors = {}
    for k, windows in data.items():
        w = np.asarray(windows, np.float32)
        net = fit_osi(w[:4000], y[:4000], (64, 64), epochs=30, seed=0)
        errors[k] = estimation_errors(net, w[4000:][later], y[4000:][later], spec)["rmse_normalized"]["g"]
    centre = float(np.sqrt((y[4000:][later] ** 2).mean()))
    assert errors[8] < 0.5 * centre  # measured 0.20 against 0.57
    assert errors[1] > 0.9 * centre


def test_early_stopping_on_held_out_episodes_keeps_an_estimator_from_remembering_episodes():
    """g is drawn per episode and nothing in the windows shows it, but each episode's windows share a fingerprint
    (as a scene does): trained to the end, the estimator maps fingerprints to g and answers new episodes worse
    than the range's centre; stopped on held-out episodes it stays near the centre."""
    rng = np.random.default_rng(0)

    def episodes(n: int, per: int = 12) -> tuple[np.ndarray, np.ndarray]:
        fingerprint, g = rng.normal(size=(n, 8)), rng.uniform(-1, 1, (n, 1))
        x = np.repeat(fingerprint, per, 0) + rng.normal(0, 0.3, (n * per, 8))
        return x.astype(np.float32), np.repeat(g, per, 0).astype(np.float32)

    x, y = episodes(300)
    x_new, y_new = episodes(100)
    centre = float(np.sqrt((y_new**2).mean()))
    errors = {}
    for name, groups in {"to the end": None, "stopped early": np.repeat(np.arange(300), 12)}.items():
        net = fit_osi(x, y, (64, 64), epochs=40, seed=0, episodes=groups)
        with torch.no_grad():
            errors[name] = float(np.sqrt(((net(torch.from_numpy(x_new)).numpy() - y_new) ** 2).mean()))
    assert errors["to the end"] > 1.15 * centre  # measured 0.75 against 0.60
    assert errors["stopped early"] < 1.1 * centre and errors["stopped early"] < 0.9 * errors["to the end"]


@pytest.fixture(scope="module")
def universal_bundle(tmp_path_factory):
    """An (untrained) universal grasp policy written the way s2r train --universal writes it."""
    folder = tmp_path_factory.mktemp("up")
    run = TrainingRun(TrainConfig(task="grasp", out=str(folder / "run"), n_envs=1, universal=True))
    env = task_env("grasp", "default", universal=True)
    run.spec, run.dynamics = state_spec(env), env.dynamics
    run.normalization = {"mean": np.zeros(run.spec.size, np.float32), "std": np.ones(run.spec.size, np.float32)}
    torch.manual_seed(0)
    model = run._new_model(DummyVecEnv([lambda: FlattenKeys(task_env("grasp", "default", universal=True), run.spec)]))
    run.write_bundle(model, folder / "up", step=0)
    env.close()
    return folder / "up"


def test_universal_bundle_records_mu_and_needs_it(universal_bundle):
    up = policies.load(universal_bundle)
    assert up.obs_spec.keys == ("proprio", "privileged", "dynamics")
    assert [p["name"] for p in up.meta["dynamics"]["params"]] == list(universal_terms("grasp"))
    env = task_env("grasp", "default")
    obs, _ = env.reset(seed=0)
    with pytest.raises(BundleError, match="dynamics"):
        up.act(obs)
    env.close()


def test_train_osi_writes_an_adaptive_bundle_that_acts_like_its_universal_policy(universal_bundle, tmp_path):
    cfg = OSIConfig(
        policy=str(universal_bundle),
        out=str(tmp_path / "osi"),
        steps=300,
        history=4,
        compare_histories=[1, 4],
        epochs=2,
        eval_episodes=2,
    )
    report = train_osi(cfg, progress=False)
    assert set(report["error_by_history"]) == {"1", "4"}
    errors = report["final_error_on_estimate_driven_rollouts"]
    assert set(errors["rmse_normalized"]) == set(universal_terms("grasp"))
    with pytest.raises(FileExistsError):
        train_osi(cfg, progress=False)

    adaptive = policies.load(tmp_path / "osi")
    up = policies.load(universal_bundle)
    assert isinstance(adaptive, AdaptivePolicy) and adaptive.obs_spec.keys == ("proprio", "privileged")
    env = task_env("grasp", "default", universal=True)
    obs, _ = env.reset(seed=5)
    state = {k: obs[k] for k in ("proprio", "privileged")}
    # adapt: the universal policy fed the estimator's output
    adaptive.reset()
    action = adaptive.act(state)
    estimate = adaptive.estimate_normalized.copy()
    np.testing.assert_allclose(action, up.act({**state, "dynamics": estimate}), atol=1e-6)
    assert set(adaptive.estimate) == set(universal_terms("grasp"))
    # the estimate changes as the history fills with new readings and actions
    obs, *_ = env.step(action)
    adaptive.act({k: obs[k] for k in ("proprio", "privileged")})
    assert not np.allclose(adaptive.estimate_normalized, estimate)
    # oracle: exactly the universal policy on the true mu, which it then requires
    adaptive.set_mode("oracle").reset()
    np.testing.assert_allclose(adaptive.act(obs), up.act(obs), atol=1e-6)
    with pytest.raises(BundleError, match="dynamics"):
        adaptive.act({k: obs[k] for k in ("proprio", "privileged")})
    env.close()

    # s2r eval runs it both ways on the same seeds and draws the estimates
    out, plot = tmp_path / "eval.json", tmp_path / "estimates.png"
    argv = ["eval", "--policy", str(tmp_path / "osi"), "--task", "grasp", "--episodes", "2", "--adapt", "--oracle"]
    assert s2r([*argv, "--json", str(out), "--plot", str(plot), "--plot-episodes", "2"]) == 0
    results = json.loads(out.read_text())
    assert set(results) == {f"{tmp_path / 'osi'} (adapt)", f"{tmp_path / 'osi'} (oracle)"}
    traces = results[f"{tmp_path / 'osi'} (adapt)"]["estimate_traces"]
    assert len(traces) == 2 and len(traces[0]["estimates"]) >= 1
    assert plot.stat().st_size > 10_000
    with pytest.raises(SystemExit, match="estimator"):
        s2r(["eval", "--policy", str(universal_bundle), "--task", "grasp", "--episodes", "1", "--adapt"])


def test_an_estimator_reading_efforts_takes_them_from_the_observation(universal_bundle, tmp_path):
    """``--effort``: the estimator's windows hold the proprioception and the joint efforts of every step; the bundle
    records how many, and the adaptive policy then requires ``effort`` beside its state observation."""
    cfg = OSIConfig(
        policy=str(universal_bundle),
        out=str(tmp_path / "osi"),
        steps=200,
        history=2,
        compare_histories=[2],
        epochs=1,
        eval_episodes=1,
        effort=True,
    )
    train_osi(cfg, progress=False)
    adaptive = policies.load(tmp_path / "osi")
    up = policies.load(universal_bundle)
    n = up.obs_spec.shapes["proprio"][0] + 5 + up.action_dim
    assert adaptive.meta["osi"]["effort_dim"] == 5 and adaptive.osi.mlp[0].in_features == 2 * n
    assert adaptive.obs_spec.keys == ("proprio", "privileged", "effort")
    env = task_env("grasp", "default", universal=True)
    obs, _ = env.reset(seed=5)
    with pytest.raises(BundleError, match="effort"):
        adaptive.act({k: obs[k] for k in ("proprio", "privileged")})
    adaptive.reset()
    adaptive.act({k: obs[k] for k in ("proprio", "privileged", "effort")})
    window = adaptive.history.window()
    np.testing.assert_array_equal(window[n - 5 - up.action_dim : n - up.action_dim], obs["effort"])
    first = adaptive.estimate_normalized.copy()
    adaptive.reset()
    adaptive.act({**{k: obs[k] for k in ("proprio", "privileged")}, "effort": obs["effort"] + 1.0})
    assert not np.allclose(adaptive.estimate_normalized, first)  # the estimate reads the efforts
    env.close()


def test_train_osi_refuses_a_policy_without_mu(tmp_path):
    with pytest.raises(BundleError, match="universal"):
        train_osi(OSIConfig(policy="policies/bundles/grasp_state", out=str(tmp_path / "x"), steps=10), progress=False)


def test_observability_tells_terms_that_move_the_readings_from_those_that_do_not(universal_bundle):
    """The servo gain sets how the arm follows its targets from the first step; the object's friction cannot
    show in the arm's readings before the fingers touch it (an untrained policy does not get there)."""
    from policies.osi import observability

    up = policies.load(universal_bundle)
    env = task_env("grasp", "default", universal=True)
    report = observability(env, up, env.dynamics, episodes=2)
    env.close()
    effect = report["effect"]
    assert set(effect) == set(universal_terms("grasp")) and report["episodes"] == 2
    print(report)
    assert effect["servo_position_gain_scale"] > 1.0 > effect["object_friction"]
    # the readings: the proprioception, then the five joint efforts, each with noise of its own
    assert len(report["noise_rms"]) == up.obs_spec.shapes["proprio"][0] + 5 and min(report["noise_rms"][-5:]) > 0
    for term in effect:  # the whole is between its parts
        parts = sorted([report["effect_proprio"][term], report["effect_effort"][term]])
        assert parts[0] - 1e-3 <= effect[term] <= parts[1] + 1e-3


def test_rollouts_over_workers_give_the_data_of_one_process(universal_bundle):
    """The estimator's training data from 130 steps of rollouts (whole episodes, cut where one process stops), on
    the true mu and on an estimator's output: over two local processes the same windows, targets and episodes."""
    from policies.adaptive import OSINet
    from policies.cluster import Executor
    from policies.osi import collect

    up = policies.load(universal_bundle)
    spec = DynamicsSpec.from_dict(up.meta["dynamics"])
    env = DynamicsObservation(task_env("grasp", "default"), spec)
    torch.manual_seed(0)
    width = 4 * (up.obs_spec.shapes["proprio"][0] + up.action_dim)
    for osi in (None, OSINet(width, len(spec.names), (16,)).eval()):
        alone = collect(env, up, 130, 3_600_000, [2, 4], osi, progress=False)
        spread = collect(env, up, 130, 3_600_000, [2, 4], osi, progress=False, executor=Executor(workers=2))
        for h in (2, 4):
            np.testing.assert_array_equal(spread[0][h], alone[0][h])
        np.testing.assert_array_equal(spread[1], alone[1])
        np.testing.assert_array_equal(spread[2], alone[2])
        assert spread[3] == alone[3] and alone[3]["episodes"] >= 3 and len(alone[1]) >= 130
    env.close()

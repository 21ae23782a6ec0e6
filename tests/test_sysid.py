"""System identification: the voltage servo model's physics, fits that find known parameters, the real XL330
pendulum logs, and robot fits from mock-arm MCAP logs recorded in a reality with known servo parameters."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import sim  # noqa: F401  (registers the envs)
from calibration import robot_sysid, servo_sysid, servo_torque_off, servo_validation, sysid
from calibration.servo_firmware import held_index
from calibration.servo_sysid import ServoLog, SysidError
from policies.cli import main
from sim.voltage_servo import (
    DEFAULT_DT,
    FRICTION_LAW,
    GRAVITY,
    PendulumLoad,
    VoltageServoParams,
    duty_per_rad,
    friction_budget,
    params_from_record,
    params_record,
    simulate,
)

DATA = Path(__file__).parent / "data"
SOFT_REALITY = Path(__file__).resolve().parents[1] / "hardware_configs/mock/realities/arm_soft_servos.yaml"
LOAD = PendulumLoad(0.49, 0.1)


def _run(params: VoltageServoParams, goal: np.ndarray, q0: float, enable: bool = True, kp: float = 400) -> np.ndarray:
    steps = len(goal)
    return simulate(
        params.vector()[:, None],
        goal[:, None],
        np.full((steps, 1), enable),
        q0=np.array([q0]),
        kp=np.array([kp]),
        vin=np.array([7.4]),
        load_inertia=np.array([LOAD.inertia]),
        load_gravity=np.array([LOAD.gravity_torque]),
    )[:, 0]


def test_holding_against_gravity_settles_where_motor_torque_equals_the_load():
    params = VoltageServoParams(coulomb=0.0, viscous=0.01)
    goal = np.full(3000, 0.8)
    q = _run(params, goal, q0=0.8)[-1]
    # Equilibrium: kt/R * vin * duty_per_rad * (goal - q) = m g l sin(q)
    stiffness = params.kt / params.R * 7.4 * duty_per_rad(400, params.gain_scale)
    assert stiffness * (0.8 - q) == pytest.approx(LOAD.gravity_torque * np.sin(q), rel=1e-3)
    assert 0.6 < q < 0.8


def test_unpowered_pendulum_swings_at_its_natural_period_and_friction_holds_it():
    light = VoltageServoParams(armature=1e-6, coulomb=0.0, viscous=0.0)
    q = _run(light, np.zeros(2000), q0=0.05, enable=False)
    crossings = np.flatnonzero(np.diff(np.sign(q)) > 0) * DEFAULT_DT
    period = np.diff(crossings).mean()
    assert period == pytest.approx(2 * np.pi * np.sqrt(LOAD.length / GRAVITY), rel=0.01)
    # Coulomb friction above the gravity torque at 0.3 rad: it does not move at all.
    sticky = VoltageServoParams(coulomb=LOAD.gravity_torque * np.sin(0.3) * 1.1)
    assert np.all(_run(sticky, np.zeros(500), q0=0.3, enable=False) == 0.3)


def test_gearbox_friction_acts_with_torque_off_and_stops_a_free_swing():
    """Friction that follows the gearbox's load (BAM): with torque off, gravity alone loads the gearbox, so a
    released pendulum settles within a few swings; Coulomb friction alone (the same constant) lets it swing on."""
    loaded = VoltageServoParams(coulomb=0.01, viscous=0.0, load_friction=0.3)
    budget = friction_budget(loaded.vector(), np.array(0.0), np.array(-0.4), np.array(1.0))
    assert budget == pytest.approx(0.01 + 0.3 * 0.4)  # no motor torque, yet the load costs friction
    steps = int(3.0 / DEFAULT_DT)
    free = _run(loaded, np.zeros(steps), q0=1.2, enable=False)
    coulomb_only = _run(VoltageServoParams(coulomb=0.01, viscous=0.0), np.zeros(steps), q0=1.2, enable=False)
    late = slice(int(2.0 / DEFAULT_DT), None)  # the third second
    assert np.max(np.abs(free[late])) < 0.25 * 1.2
    assert np.max(np.abs(coulomb_only[late])) > 0.7 * 1.2
    # Stribeck: more friction at standstill, fading with speed.
    sticky = VoltageServoParams(coulomb=0.01, stribeck=0.05, stribeck_speed=0.2)
    still, moving = (friction_budget(sticky.vector(), 0.0, 0.0, w) for w in (0.0, 1.0))
    assert still == pytest.approx(0.06) and moving == pytest.approx(0.01, abs=1e-6)
    # the quadratic load term: the share of the load lost grows with the load (0.2 + 0.1 * load per N*m)
    quadratic = VoltageServoParams(coulomb=0.0, load_friction=0.2, load_quadratic=0.1)
    shares = [friction_budget(quadratic.vector(), np.array(m), np.array(0.0), np.array(1.0)) / m for m in (0.5, 1.0)]
    assert shares == pytest.approx([0.25, 0.3])


def test_the_current_limit_stalls_a_lift_at_one_angle_whatever_the_gain():
    """The firmware caps the current (XL330 Current Limit): two P gains whose duty differs stall a slow lift at
    the same angle, where kt * max_current balances gravity and the gearbox friction, as the real logs do (kp 400
    and 800 both stop at 0.87-0.88 rad); without the cap the stiffer loop lifts higher."""
    params = VoltageServoParams(coulomb=0.0, viscous=0.01, load_friction=0.2, max_current=1.2)
    goal = np.linspace(0.0, 1.5, 1500)
    stalls = [_run(params, goal, q0=0.0, kp=kp)[-1] for kp in (800, 1600)]
    assert stalls[0] == pytest.approx(stalls[1], abs=0.01)
    torque = params.kt * params.max_current
    # a lift stops where the capped torque no longer beats gravity and its gearbox friction
    g = LOAD.gravity_torque * np.sin(stalls[0])
    assert torque - g == pytest.approx(0.2 * (torque + g), abs=0.02)
    uncapped = VoltageServoParams(coulomb=0.0, viscous=0.01, load_friction=0.2, max_current=100.0)
    assert _run(uncapped, goal, q0=0.0, kp=1600)[-1] > stalls[0] + 0.1


def _pwm_log(name: str, gain_scale: float, limit: float, kp: float = 400, lag: float = 0.0) -> ServoLog:
    """A log whose Present PWM follows a P law with ``gain_scale`` on the goal ``lag`` s old, clipped at ``limit``
    (fraction of full)."""
    t = np.arange(0.0, 2.0, 0.005)
    goal = 1.5 * np.sin(2 * np.pi * 0.5 * t)
    position = 0.6 * np.sin(2 * np.pi * 0.5 * t - 0.4)
    seen = goal[held_index(t, t, lag)]  # the goal held between samples, as the simulation holds it
    pwm = np.clip(duty_per_rad(kp, gain_scale) * (seen - position), -limit, limit)
    return ServoLog(name, t, position, goal, np.ones_like(t, dtype=bool), kp, 7.4, LOAD, "x", np.round(pwm * 885) / 885)


def test_the_firmware_law_is_read_from_present_pwm(shared_data):
    """The real XL330 logs' raw register is Present PWM: exactly 0.5 times the e-manual's P formula on each
    sample's own goal (latency under one sample), reaching its full scale; a synthetic law and its delay are read
    back (to within the sampling: the delays that hold the same goals at the sample times are one); a goal that
    never moves pins no delay; a register that is no P law on the error, or a missing one, pins nothing."""
    from calibration.servo_firmware import firmware_law, pwm_from_register

    folder = shared_data / "real_logs" / "xl330_pendulum"
    logs = [servo_sysid.load_servo_log(p) for p in sorted(folder.glob("*.json"))]
    law = firmware_law(logs)
    assert law.gain_scale == pytest.approx(0.5, abs=0.003) and law.max_duty == 1.0 and law.saturated
    assert law.residual < 0.005 and law.latency == 0.0
    synthetic = firmware_law([_pwm_log("a", 0.62, 0.7, lag=0.012), _pwm_log("b", 0.62, 0.7, kp=100, lag=0.012)])
    assert synthetic.gain_scale == pytest.approx(0.62, abs=0.005)
    assert synthetic.latency == pytest.approx(0.012, abs=0.0025)  # half the 5 ms sampling
    assert firmware_law([_pwm_log("a", 0.62, 0.7)]).latency == 0.0
    still = _pwm_log("s", 0.62, 0.7)
    still.goal = np.full_like(still.goal, 0.3)
    still.pwm = np.clip(duty_per_rad(400, 0.62) * (still.goal - still.position), -0.7, 0.7)
    assert firmware_law([still]).latency is None  # every delay explains it: the fit keeps the latency free
    assert synthetic.max_duty == pytest.approx(0.7, abs=1 / 885)
    unsaturated = firmware_law([_pwm_log("c", 0.62, 1.0, kp=100)])
    assert unsaturated.max_duty == 1.0 and not unsaturated.saturated
    noise = _pwm_log("d", 0.62, 0.7)
    noise.pwm = np.random.default_rng(0).uniform(-0.5, 0.5, len(noise.t))
    assert firmware_law([noise]) is None
    assert firmware_law([_pwm_log("e", 0.62, 0.7), dataclasses.replace(noise, pwm=None)]) is None
    assert pwm_from_register([0, 885, 64651]).tolist() == pytest.approx([0.0, 1.0, -1.0])
    assert pwm_from_register([0, 1000]) is None  # beyond a PWM register's full scale: something else


def test_a_fit_pins_the_firmware_and_reports_its_error_without_the_priors():
    """Logs with Present PWM: gain_scale, max_duty and the latency are read, not searched (the latency as the
    simulation means it: the register follows the goal the motor acts on); kt and R stay the datasheet's; the
    reported error is the logs' (the priors' penalty is not in it)."""
    truth = VoltageServoParams(
        armature=0.002, viscous=0.02, gain_scale=0.6, max_duty=0.9, max_current=1.5, latency=0.012
    )
    logs = []
    for name, kp in (("a", 200), ("b", 800)):
        log = _synthetic_log(name, truth, kp)
        err = log.goal[held_index(log.t, log.t, truth.latency)] - log.position
        log.pwm = np.clip(duty_per_rad(kp, 0.6) * err, -0.9, 0.9)
        logs.append(log)
    result = servo_sysid.fit(logs, model="coulomb_viscous", iterations=30, seed=0, progress=False)
    assert result.firmware is not None and not set(servo_sysid.FIRMWARE) & set(result.free)
    # read to within half the 5.3 ms sampling: the delays that hold the same goals at the sample times are one
    assert result.params.latency == result.firmware.latency == pytest.approx(0.012, abs=0.0027)
    assert result.params.gain_scale == pytest.approx(0.6, abs=0.005)
    assert result.params.max_duty == result.firmware.max_duty  # (these logs never reach the limit: 1)
    assert (result.params.kt, result.params.R) == (VoltageServoParams.kt, VoltageServoParams.R)
    assert result.mae_rad == pytest.approx(servo_sysid.score(result.params, logs)["mae_rad"], rel=1e-6)
    assert result.mae_rad < 0.01


def test_a_current_limit_no_log_reaches_keeps_its_register_default(shared_data, tmp_path, capsys):
    """Logs whose duty never asks for the limit's current cannot pin it: it is not fitted (a fit would spend it as
    friction); one log that asks for more makes it a fitted parameter again. Without Present PWM the demand is the
    P law's at the largest gain the fit may choose."""
    folder = shared_data / "real_logs" / "xl330_pendulum"
    logs = [servo_sysid.load_servo_log(p) for p in sorted(folder.glob("*.json"))]
    low = [log for log in logs if log.kp <= 200]
    assert servo_sysid.peak_current_demand(low, servo_sysid.firmware_law(low)) < VoltageServoParams.max_current
    result = servo_sysid.fit(low, model="load", iterations=3, seed=0, progress=False)
    assert "max_current" not in result.free and result.params.max_current == VoltageServoParams.max_current
    assert 1.2 < result.current_demand_a < 1.5  # kp 200 asks 0.6 of full duty: 0.6 * 7.3 V / 3.4 ohm
    high = [log for log in logs if log.kp == 800]
    assert servo_sysid.peak_current_demand(high, servo_sysid.firmware_law(high)) > VoltageServoParams.max_current
    assert "max_current" in servo_sysid.fit(high, model="load", iterations=3, seed=0, progress=False).free
    quiet = dataclasses.replace(low[0], pwm=None)  # kp 100 without the register: the P law's duty, gain at most 2
    err = np.abs(quiet.goal - quiet.position).max()
    expected = quiet.vin * min(duty_per_rad(100, servo_sysid.BOUNDS["gain_scale"][1]) * err, 1.0) / VoltageServoParams.R
    assert servo_sysid.peak_current_demand([quiet]) == pytest.approx(expected)
    # a register that does not follow the P law is not read as the duty: the P law's bound decides (here: fitted)
    odd = dataclasses.replace(high[0], pwm=np.full(len(high[0].t), 0.4))
    assert servo_sysid.firmware_law([odd]) is None
    assert servo_sysid.peak_current_demand([odd]) > VoltageServoParams.max_current
    assert "max_current" in servo_sysid.fit([odd], model="load", iterations=2, seed=0, progress=False).free
    kp100 = str(folder / "2026-01-15_10h28m[12]*.json")
    out = str(tmp_path / "p.yaml")
    assert main(["sysid", "--logs", kp100, "--model", "load", "--iterations", "3", "--out", out]) == 0
    assert "current limit not fitted: the logs ask at most" in capsys.readouterr().out


def test_a_parameters_file_validated_by_family_alone_still_prints_its_validation(shared_data, tmp_path, capsys):
    """Files written before validation had kinds: ``splits`` a list of family splits, no ``kinds`` per model."""
    folder = shared_data / "real_logs" / "xl330_pendulum"
    old = params_record(VoltageServoParams(load_friction=0.1), "load") | {
        "validation": {
            "chosen_by": "lowest validation MAE",
            "splits": ["leave out sin_sin", "leave out up_and_down"],
            "models": {"load": {"n_params": 5, "train_mae_rad": 0.0266, "val_mae_rad": 0.0431, "folds": []}},
        }
    }
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(old))
    assert main(["sysid", "--params", str(path), "--eval", str(folder / "2026-01-15_10h28m10.json")]) == 0
    out = capsys.readouterr().out
    assert "validation (family: leave out sin_sin, leave out up_and_down)" in out
    assert "load (5 params): validation 43.1, train 26.6" in out


def test_a_parameters_file_from_before_the_current_limit_keeps_its_behaviour(tmp_path):
    """Files written before the current limit and the quadratic load term: no limit, no quadratic term."""
    from sim.voltage_servo import NO_CURRENT_LIMIT, params_from_record, params_record

    record = params_record(VoltageServoParams(load_friction=0.2))
    del record["params"]["max_current"], record["params"]["load_quadratic"]
    old = params_from_record(record, "old.yaml")
    assert old.max_current == NO_CURRENT_LIMIT and old.load_quadratic == 0.0


def test_error_is_weighted_by_time_not_by_samples():
    """A phase logged ten times faster must not count ten times more: the time-weighted MAE stays, the per-sample
    one moves."""
    t = np.concatenate([np.arange(0.0, 1.0, 0.01), np.arange(1.0, 2.0, 0.001)])
    err = np.where(t < 1.0, 0.1, 0.0)  # 0.1 rad off for the first second, exact for the second
    log = ServoLog("x", t, err, np.zeros_like(t), np.ones_like(t, dtype=bool), 400, 7.4, LOAD)
    scores = servo_sysid.perfect_tracking_score([log])
    assert scores["mae_rad"] == pytest.approx(0.05, rel=0.01)
    assert scores["mae_per_sample_rad"] == pytest.approx(0.1 * 100 / 1100, rel=0.01)


def test_validation_splits_by_every_condition_the_logs_vary_and_picks_by_validation_error():
    a = ServoLog("a", np.arange(3.0), np.zeros(3), np.zeros(3), np.ones(3, dtype=bool), 100, 7.4, LOAD, "sin_sin")
    logs = [
        a,
        *(
            ServoLog(n, a.t, a.t, a.t, a.torque_enable, kp, 7.4, LOAD, f)
            for n, kp, f in (("b", 100, "up_and_down"), ("c", 800, "sin_sin"), ("d", 800, "lift_and_drop"))
        ),
    ]
    kinds = servo_validation.split_kinds(logs)
    assert list(kinds) == ["family", "gain"]  # one load: no load split
    assert [name for name, _, _ in kinds["family"]] == [
        "leave out lift_and_drop",
        "leave out sin_sin",
        "leave out up_and_down",
    ]
    assert [name for name, _, _ in kinds["gain"]] == ["leave out kp 100", "leave out kp 800"]
    for splits in kinds.values():
        assert sorted(i for _, _, val in splits for i in val) == [0, 1, 2, 3]  # each log validated once per kind
        assert all(not set(train) & set(val) for _, train, val in splits)
    assert kinds["gain"][0][2] == [0, 1]
    unnamed = [ServoLog(n, a.t, a.t, a.t, a.torque_enable, 1, 7.4, LOAD) for n in "pqrst"]
    k_fold = servo_validation.split_kinds(unnamed)
    assert list(k_fold) == ["k-fold"]
    assert len(k_fold["k-fold"]) == 4 and sorted(i for _, _, val in k_fold["k-fold"] for i in val) == [0, 1, 2, 3, 4]
    with pytest.raises(SysidError, match="at least two logs"):
        servo_validation.split_kinds(unnamed[:1])

    def v(model: str, n: int, *kinds: tuple[float, float]) -> servo_validation.Validation:
        scores = {f"k{j}": servo_validation.KindScore(tr, va, va, []) for j, (tr, va) in enumerate(kinds)}
        return servo_validation.Validation(model, n, scores)

    small, big = v("load", 9, (0.03, 0.050)), v("directional", 13, (0.02, 0.0495))
    assert servo_validation.choose([small, big]).model == "load"  # 1 % better is not worth four more parameters
    assert servo_validation.choose([small, v("stribeck", 10, (0.02, 0.030))]).model == "stribeck"
    # the mean over the kinds decides: a model good on one kind and poor on the other loses to one good on both
    lopsided, even = (
        v("quadratic", 6, (0.02, 0.030), (0.02, 0.100)),
        v("stribeck_quadratic", 9, (0.02, 0.04), (0.02, 0.04)),
    )
    assert servo_validation.choose([lopsided, even]).model == "stribeck_quadratic"
    assert lopsided.overfit_kinds() == ["k1"] and small.overfit_kinds() == ["k0"]
    assert v("x", 8, (0.04, 0.05)).overfit_kinds() == []


def test_validation_fits_give_the_same_figures_in_one_process_or_several():
    truth = VoltageServoParams(armature=0.004, coulomb=0.02)
    logs = [_synthetic_log(n, truth, kp, seconds=1.0) for n, kp in (("a", 200), ("b", 800), ("c", 400))]
    for log, family in zip(logs, ("sin_sin", "up_and_down", "sin_sin"), strict=True):
        log.trajectory = family
    models = ["coulomb_viscous", "load"]
    one = servo_validation.cross_validate(logs, models, iterations=2, seed=3, progress=False, workers=1)
    two = servo_validation.cross_validate(logs, models, iterations=2, seed=3, progress=False, workers=2)
    alone = [
        servo_validation.cross_validate(logs, [m], iterations=2, seed=3, progress=False, workers=1)[0] for m in models
    ]
    for v in one + two + alone:
        for k in v.kinds.values():
            for fold in k.folds:
                fold.pop("wall_s")  # the time differs, nothing else
    assert [v.model for v in one] == models and one == two == alone
    splits = servo_validation.split_kinds(logs)
    for v in one:
        assert list(v.kinds) == ["family", "gain"] and len(v.kinds["gain"].folds) == 3
        for kind, k in v.kinds.items():
            assert [(f["model"], f["split"]) for f in k.folds] == [(v.model, name) for name, _, _ in splits[kind]]
    # one family recorded at one gain, the other at another: the gain split is the family split, fitted once
    twins = [dataclasses.replace(log, kp=100 if log.trajectory == "sin_sin" else 800) for log in logs]
    assert list(servo_validation.split_kinds(twins)) == ["family"]


def _synthetic_log(name: str, params: VoltageServoParams, kp: float, seconds: float = 3.0) -> ServoLog:
    t = np.arange(0.0, seconds, 1 / 190)
    goal = 1.2 * np.sin(2 * np.pi * 0.5 * t) * np.sin(2 * np.pi * 0.13 * t + 0.3)
    log = ServoLog(name, t, np.zeros_like(t), goal, np.ones_like(t, dtype=bool), kp, 7.4, LOAD, "synthetic")
    log.position = servo_sysid.simulate_logs(params.vector(), [log])[0][0]
    return log


def test_fit_recovers_a_known_servo_from_synthetic_logs():
    truth = VoltageServoParams(kt=0.4, R=2.5, armature=0.004, coulomb=0.02, viscous=0.01, latency=0.02, gain_scale=0.6)
    fit_logs = [_synthetic_log("a", truth, 200), _synthetic_log("b", truth, 800)]
    held_out = _synthetic_log("c", truth, 400)
    default = servo_sysid.score(VoltageServoParams(), [held_out])["mae_rad"]
    result = servo_sysid.fit(fit_logs, model="coulomb_viscous", iterations=40, seed=1, progress=False)
    fitted = servo_sysid.score(result.params, [held_out])["mae_rad"]
    assert fitted < 0.01 and fitted < default / 10, (fitted, default)
    assert result.params.latency == pytest.approx(0.02, abs=0.006)
    # Same seed, same fit.
    again = servo_sysid.fit(fit_logs, model="coulomb_viscous", iterations=40, seed=1, progress=False)
    assert again.params == result.params


@pytest.mark.slow
def test_real_xl330_pendulum_fit_on_one_trajectory_predicts_the_other(shared_data, tmp_path):
    """Fitted on one family, the other predicted within the bounds below (measured with 60 generations, the load
    model: sin_sin 31 -> up_and_down 37 mrad, up_and_down 22 -> sin_sin 47; perfect tracking 539 mrad over all
    eight)."""
    folder = shared_data / "real_logs" / "xl330_pendulum"
    logs = [servo_sysid.load_servo_log(p) for p in sorted(folder.glob("*.json"))]
    assert len(logs) == 8
    assert servo_sysid.perfect_tracking_score(logs)["mae_rad"] == pytest.approx(0.539, abs=0.001)
    fit_logs = [log for log in logs if log.trajectory == "sin_sin"]
    held_out = [log for log in logs if log.trajectory == "up_and_down"]
    result = servo_sysid.fit(fit_logs, iterations=60, seed=0, progress=False)
    score = servo_sysid.score(result.params, held_out)
    assert score["mae_rad"] < 0.042 and score["mae_rad"] < 1.3 * result.mae_rad, (score, result.mae_rad)
    assert score["mae_rad"] < servo_sysid.score(VoltageServoParams(), held_out)["mae_rad"] / 5
    assert set(score["logs"]) == {log.name for log in held_out}
    other_way = servo_sysid.fit(held_out, iterations=60, seed=0, progress=False)
    predicted = servo_sysid.score(other_way.params, fit_logs)["mae_rad"]
    assert predicted < 0.055 and predicted < 2.5 * other_way.mae_rad, (predicted, other_way.mae_rad)
    # the two families agree on the friction law's coefficient and the current limit (they did not with kt, R and
    # the firmware gain free: 0.30 vs 0.47)
    assert abs(result.params.load_friction - other_way.params.load_friction) < 0.05
    assert abs(result.params.max_current - other_way.params.max_current) < 0.2


def test_cli_scores_saved_parameters_and_plots(shared_data, tmp_path, capsys):
    folder = shared_data / "real_logs" / "xl330_pendulum"
    params = tmp_path / "xl330.yaml"
    fitted = VoltageServoParams(  # an early `s2r sysid` fit (the load model, kt, R and the firmware fitted)
        kt=0.213,
        R=2.41,
        armature=0.0029,
        coulomb=0.0042,
        viscous=0.0,
        load_friction=0.272,
        latency=0.0094,
        gain_scale=0.655,
        max_duty=0.987,
    )
    # its fit block as written before the latency was read from Present PWM: the summary still prints
    law = {"gain_scale": 0.5, "max_duty": 1.0, "residual": 0.003, "samples": 7690, "saturated": True}
    fit = {"generations": 90, "stopped": "converged", "wall_s": 12.0, "simulated_s": 3e5, "firmware_from_pwm": law}
    record = {
        "kind": "voltage_servo",
        "friction_law": FRICTION_LAW,
        "model": "load",
        "params": vars(fitted),
        "fit": fit,
    }
    params.write_text(yaml.safe_dump(record))
    out = tmp_path / "report.json"
    plot = tmp_path / "plot.png"
    code = main(
        ["sysid", "--params", str(params), "--eval", str(folder / "*10h29m29.json"), "--json", str(out)]
        + ["--plot", str(plot)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    scores = report["eval_logs"]
    assert scores["fitted"]["mae_rad"] < scores["default"]["mae_rad"] < scores["perfect_tracking"]["mae_rad"]
    assert plot.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "eval logs (1)" in printed and "latency not read (fitted)" in printed


def test_a_lift_and_drop_log_is_scored_with_torque_off_where_it_says_so(tmp_path, capsys):
    """BAM's lift-and-drop protocol (a cubic lift to -pi/2 over 2 s, then torque off for 4 s) in the shared logs'
    JSON format: the parameters that made it predict it through the torque-off swing; the same log read as if torque
    stayed on does not fit them, so the flag is read and applied."""
    params = VoltageServoParams(gain_scale=0.5, load_friction=0.12, load_quadratic=0.12, max_current=1.75)
    t = np.arange(0.0, 6.0, 1 / 190)
    s = np.clip(t / 2.0, 0.0, 1.0)
    goal = -np.pi / 2 * (3 * s**2 - 2 * s**3)
    enable = t < 2.0
    log = ServoLog("drop", t, np.zeros_like(t), goal, enable, 400, 7.4, LOAD, "lift_and_drop")
    q = servo_sysid.simulate_logs(params.vector(), [log])[0][0]
    assert np.ptp(q[t > 2.5]) > 0.3  # it swings after the release
    record = params_record(params, "quadratic")
    (tmp_path / "servo.yaml").write_text(yaml.safe_dump(record))
    scores, reports = {}, {}
    for name, flags in (("off_after_2s", enable), ("always_on", np.ones_like(enable))):
        entries = [
            {"timestamp": float(a), "position": float(b), "goal_position": float(c), "torque_enable": bool(d)}
            for a, b, c, d in zip(t, q, goal, flags, strict=True)
        ]
        meta = {"mass": LOAD.mass, "length": LOAD.length, "kp": 400, "vin": 7.4, "trajectory": "lift_and_drop"}
        (tmp_path / f"{name}.json").write_text(json.dumps(meta | {"entries": entries}))
        out = tmp_path / f"{name}_report.json"
        assert (
            main(
                ["sysid", "--params", str(tmp_path / "servo.yaml"), "--eval", str(tmp_path / f"{name}.json")]
                + ["--json", str(out)]
            )
            == 0
        )
        reports[name] = json.loads(out.read_text())
        scores[name] = reports[name]["mae_mrad"]
    assert scores["off_after_2s"] < 1.0 and scores["always_on"] > 100.0
    # the two phases apart, per log and at the top; a log with torque on throughout has no phases
    off = reports["off_after_2s"]
    assert off["mae_torque_on_mrad"] < 1.0 and off["mae_torque_off_mrad"] < 1.0
    per_log = off["eval_logs"]["fitted"]["logs"]["off_after_2s"]
    assert per_log["torque_off_s"] == pytest.approx(4.0, abs=0.01) and per_log["torque_on_s"] == pytest.approx(
        t[-1] - 4.0, abs=0.01
    )
    assert "mae_torque_off_mrad" not in reports["always_on"]
    wrong = reports["always_on"]["eval_logs"]["fitted"]["logs"]["always_on"]
    assert "torque_off_s" not in wrong
    printed = capsys.readouterr().out
    assert "eval logs (1)" in printed and "torque off 0." in printed


def _write_json_log(path: Path, log: ServoLog) -> Path:
    """``log`` in the shared logs' JSON format (no Present PWM: the firmware law is then fitted)."""
    entries = [
        {"timestamp": float(a), "position": float(b), "goal_position": float(c), "torque_enable": bool(d)}
        for a, b, c, d in zip(log.t, log.position, log.goal, log.torque_enable, strict=True)
    ]
    meta = {"mass": log.load.mass, "length": log.load.length, "kp": log.kp, "vin": log.vin}
    path.write_text(json.dumps(meta | {"trajectory": log.trajectory, "entries": entries}))
    return path


def test_a_released_pendulum_shows_the_torque_off_friction_a_model_implies():
    """The figure the report gives for a load released from horizontal with torque off: without friction it swings
    on at its natural period; gearbox-load friction brings it to rest, sooner the larger its share."""
    free = servo_torque_off.released_pendulum(VoltageServoParams(armature=1e-6, coulomb=0.0, viscous=0.0), LOAD)
    # from horizontal the period is 1.18x the small-swing one (the complete elliptic integral at 90 degrees)
    half_period = 1.18 * np.pi * np.sqrt(LOAD.length / GRAVITY)
    assert free["rest_s"] is None and abs(free["crossings"] - 6.0 / half_period) <= 1
    rests = [
        servo_torque_off.released_pendulum(VoltageServoParams(coulomb=0.0, viscous=0.0, load_friction=f), LOAD)
        for f in (0.3, 0.4)
    ]
    assert all(r["rest_s"] is not None and abs(r["rest_rad"]) < 0.05 for r in rests)
    assert rests[1]["rest_s"] < rests[0]["rest_s"] and rests[1]["crossings"] < rests[0]["crossings"] < free["crossings"]
    # at rest is a property of the motion, not of where the simulation ends
    longer = servo_torque_off.released_pendulum(
        VoltageServoParams(coulomb=0.0, viscous=0.0, load_friction=0.3), LOAD, duration=11.0
    )
    assert longer["rest_s"] == rests[0]["rest_s"]
    # held off the bottom by friction, it is at rest where it sticks; a diverging simulation is said to diverge
    stuck = servo_torque_off.released_pendulum(VoltageServoParams(coulomb=0.3), LOAD)
    assert stuck["crossings"] == 0 and stuck["rest_rad"] < -0.1 and stuck["rest_s"] < 1.0
    diverged = servo_torque_off.released_pendulum(VoltageServoParams(armature=1e-6, viscous=5.0), LOAD)
    assert diverged["diverged"] and diverged["rest_s"] is None and diverged["crossings"] is None


def test_a_log_that_turns_torque_off_is_scored_per_phase():
    """Each phase's MAE over its own samples and seconds; pooled over logs by their seconds in that phase, a log
    with torque on throughout counting as on; a phase with no time has no MAE (None, not 0)."""
    t = np.arange(0.0, 4.0 + 1e-9, 0.01)
    off = t >= 3.0
    log = ServoLog("half", t, np.zeros_like(t), np.zeros_like(t), ~off, 400, 7.4, LOAD)
    errors = servo_sysid._errors(np.where(off, 1.0, 0.0), log)
    assert errors["mae_torque_on_rad"] == pytest.approx(0.0, abs=0.002)
    assert errors["mae_torque_off_rad"] == pytest.approx(1.0, abs=0.002)
    assert errors["torque_on_s"] == pytest.approx(3.0, abs=0.01) and errors["torque_off_s"] == pytest.approx(
        1.0, abs=0.01
    )
    on_only = ServoLog("on", t, np.zeros_like(t), np.zeros_like(t), np.ones_like(off), 400, 7.4, LOAD)
    all_off = ServoLog("off", t, np.zeros_like(t), np.zeros_like(t), np.zeros_like(off), 400, 7.4, LOAD)
    pooled = servo_sysid.pooled(
        {"half": errors, "on": servo_sysid._errors(np.full_like(t, 0.5), on_only)}
    )  # on: 3 s at 0 and 4 s at 0.5; off: 1 s at 1
    assert pooled["mae_torque_on_rad"] == pytest.approx(2.0 / 7.0, abs=0.002)
    assert pooled["mae_torque_off_rad"] == pytest.approx(1.0, abs=0.002)
    only_off = servo_sysid._errors(np.full_like(t, 0.2), all_off)
    assert only_off["mae_torque_on_rad"] is None and only_off["mae_torque_off_rad"] == pytest.approx(0.2)
    assert servo_sysid.pooled({"off": only_off})["mae_torque_on_rad"] is None


def test_the_report_says_when_no_fit_log_had_torque_off(tmp_path):
    """Logs with torque on throughout cannot show the friction of an unpowered gearbox: the report warns, with what
    the fitted model then predicts for the load released with torque off; a lift-and-drop log among the fit logs
    (torque off after 2 s) identifies it and silences the warning."""
    truth = VoltageServoParams(gain_scale=0.5, load_friction=0.12, load_quadratic=0.12)
    lift = _write_json_log(tmp_path / "lift.json", _synthetic_log("lift", truth, 400))
    t = np.arange(0.0, 6.0, 1 / 190)
    s = np.clip(t / 2.0, 0.0, 1.0)
    drop = ServoLog("drop", t, np.zeros_like(t), -np.pi / 2 * (3 * s**2 - 2 * s**3), t < 2.0, 400, 7.4, LOAD, "drop")
    drop.position = servo_sysid.simulate_logs(truth.vector(), [drop])[0][0]
    drop_path = _write_json_log(tmp_path / "drop.json", drop)
    reports = {}
    for name, logs in (("on_only", [lift]), ("with_drop", [lift, drop_path])):
        out = tmp_path / f"{name}.json"
        args = [
            "sysid",
            "--model",
            "load",
            "--iterations",
            "3",
            "--json",
            str(out),
            "--out",
            str(tmp_path / f"{name}.yaml"),
        ]
        assert main(args + [a for log in logs for a in ("--logs", str(log))]) == 0
        reports[name] = json.loads(out.read_text())
    on_only, with_drop = reports["on_only"], reports["with_drop"]
    load_name = f"{LOAD.mass} kg at {LOAD.length} m"
    released = on_only["fit"]["released_pendulum"][load_name]
    assert on_only["fit"]["torque_off_s"] == 0 and released["crossings"] >= 0
    fitted = params_from_record(yaml.safe_load((tmp_path / "on_only.yaml").read_text()), "on_only.yaml")
    assert released == servo_torque_off.released_pendulum(fitted, LOAD)  # the figure is the saved parameters'
    warning = next(w for w in on_only["warnings"] if w.startswith("the fit logs swing with torque off for 0.0 s"))
    assert load_name in warning and f"{released['crossings']} swings through the bottom" in warning
    assert with_drop["fit"]["torque_off_s"] == pytest.approx(4.0, abs=0.01)
    assert with_drop["fit"]["torque_off_swinging_s"] == pytest.approx(4.0, abs=0.01)
    assert not any("torque off" in w for w in with_drop["warnings"])
    # torque off too briefly, or on a pendulum hanging still, identifies nothing: the warning stays
    brief = dataclasses.replace(drop, torque_enable=(drop.t < 2.0) | (drop.t > 2.5))
    still = dataclasses.replace(drop, position=np.zeros_like(drop.t), goal=np.zeros_like(drop.t))
    for logs, swinging in (([brief], 0.5), ([still], 0.0)):
        off_s, swinging_s, _, warning = servo_torque_off.coverage(truth, logs)
        assert swinging_s == pytest.approx(swinging, abs=0.01) and warning and "swing with torque off" in warning


class _ClosedPipe:
    def write(self, _text: str) -> int:
        raise BrokenPipeError

    def flush(self) -> None:  # nothing written, nothing to lose
        pass


def test_auto_cross_validates_every_model_and_writes_the_report_first(shared_data, tmp_path, monkeypatch):
    """`s2r sysid` (auto) on one log of each family: every friction model validated on the family it did not see,
    the chosen one the lowest on validation (or a smaller one within the margin), overall figures at the top of
    the JSON, which is written before anything is printed (a closed pipe loses nothing)."""
    folder = shared_data / "real_logs" / "xl330_pendulum"
    out, report_path = tmp_path / "p.yaml", tmp_path / "report.json"
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    try:
        main(
            ["sysid", "--logs", str(folder / "*10h28m10.json"), "--logs", str(folder / "*10h28m24.json")]
            + ["--iterations", "3", "--out", str(out), "--json", str(report_path)]
        )
    except BrokenPipeError:
        pass
    monkeypatch.undo()
    report = json.loads(report_path.read_text())
    models = report["validation"]["models"]
    assert set(models) == set(servo_sysid.MODELS)
    assert report["validation"]["splits"] == {"family": ["leave out sin_sin", "leave out up_and_down"]}  # one gain
    best = min(v["val_mae_rad"] for v in models.values())
    chosen = models[report["model"]]
    assert chosen["val_mae_rad"] <= best * (1 + servo_validation.PARSIMONY_MARGIN)
    for v in models.values():
        folds = v["kinds"]["family"]["folds"]
        assert [f["val_logs"] for f in folds] == [["2026-01-15_10h28m10"], ["2026-01-15_10h28m24"]]
        assert v["val_mae_rad"] == pytest.approx(v["kinds"]["family"]["val_mae_rad"], abs=1e-6)
    assert report["evaluated_on"] == "fit_logs"
    assert report["mae_mrad"] == pytest.approx(1000 * report["fit_logs"]["fitted"]["mae_rad"], abs=1e-3)
    assert report["rmse_mrad"] > report["mae_mrad"] > 0
    assert report["fit"]["stopped"] == "generation cap" and report["fit"]["simulated_s"] > 0
    assert any("generation cap" in w for w in report["warnings"])
    assert yaml.safe_load(out.read_text())["model"] == report["model"]


def test_bad_inputs_fail_with_clear_messages(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"mass": 0.5, "length": 0.1, "kp": 100, "vin": 7.4}))
    with pytest.raises(SysidError, match="missing key 'entries'"):
        servo_sysid.load_servo_log(broken)
    with pytest.raises(SysidError, match="no file matches"):
        sysid.run([str(tmp_path / "nothing*.json")], None, out=str(tmp_path / "p.yaml"))
    with pytest.raises(SysidError, match="all .json"):
        sysid.log_kind(["a.json", "b.mcap"])
    assert main(["sysid", "--logs", str(broken), "--out", str(tmp_path / "p.yaml")]) == 2
    assert "missing key 'entries'" in capsys.readouterr().err
    ok = tmp_path / "ok.json"
    entries = [{"timestamp": i / 100, "position": 0.0, "goal_position": 0.0, "torque_enable": True} for i in range(20)]
    ok.write_text(json.dumps({"mass": 0.5, "length": 0.1, "kp": 100, "vin": 7.4, "entries": entries}))
    with pytest.raises(SysidError, match="need a robot fit"):
        sysid.run([str(ok)], None, out=str(tmp_path / "p.yaml"), emit_domain=str(tmp_path / "d.yaml"))
    params = tmp_path / "robot.yaml"
    params.write_text(yaml.safe_dump({"kind": "sim_servo", "robot": "x", "targets": {}}))
    with pytest.raises(SysidError, match="kind 'sim_servo', but these logs need voltage_servo"):
        sysid.run(None, [str(ok)], params=str(params))
    # A model fitted under the older friction law (load friction on the motor torque) is refused, not reread.
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"kind": "voltage_servo", "params": {"load_friction": 0.5}}))
    with pytest.raises(SysidError, match="friction law .* fit it again"):
        sysid.run(None, [str(ok)], params=str(old))
    # two logs with one name (from two folders) would share one line of the report: refused, both named
    (tmp_path / "other").mkdir()
    twin = tmp_path / "other" / "ok.json"
    twin.write_text(ok.read_text())
    with pytest.raises(SysidError, match="two logs named 'ok'"):
        sysid.run([str(ok), str(twin)], None, out=str(tmp_path / "p.yaml"))


def test_domain_and_centred_ranges_pin_and_move_the_envs_servos(tmp_path):
    targets = {"servo.position_gain": 0.15, "servo.strength": 0.9, "joint.damping": 0.05, "servo.latency": 0.03}
    domain = robot_sysid.domain_from_targets("grasp", targets)
    assert domain == pytest.approx(
        {"servo_position_gain_scale": 0.5, "servo_strength": 0.9, "joint_damping_scale": 5.0, "latency_s": 0.03}
    )
    path = robot_sysid.write_yaml(domain, tmp_path / "domain.yaml")
    env = gym.make("s2r/Grasp-v0", domain=str(path))
    env.reset(seed=3)
    servo = env.unwrapped.robot.params
    arm = slice(0, 4)
    assert servo.latency == pytest.approx(0.03)
    assert np.allclose(servo.position_gain[arm], 0.15) and np.allclose(servo.damping, 0.05)
    env.close()
    ranges = robot_sysid.centred_ranges("grasp", domain)
    terms = {t["name"]: t["distribution"] for t in ranges["terms"]}
    assert terms["latency_s"]["low"] == pytest.approx(0.01) and terms["latency_s"]["high"] == pytest.approx(0.05)
    gain = terms["servo_position_gain_scale"]
    assert np.sqrt(gain["low"] * gain["high"]) == pytest.approx(0.5)
    path = robot_sysid.write_yaml(ranges, tmp_path / "ranges.yaml")
    env = gym.make("s2r/Grasp-v0", randomization=str(path))
    latencies = []
    for seed in range(5):
        _, info = env.reset(seed=seed)
        latencies.append(info["domain"]["latency_s"])
    env.close()
    assert min(latencies) >= 0.01 and max(latencies) <= 0.05


@pytest.mark.slow
def test_robot_fit_finds_the_mock_realitys_servos_from_its_logs(tmp_path, capsys):
    """The logs were recorded by `s2r deploy` on the mock arm in hardware_configs/mock/realities/arm_soft_servos.yaml
    (half gain, 30 ms latency); the fit on one log finds them and predicts the other log."""
    truth = yaml.safe_load(SOFT_REALITY.read_text())
    out, domain_file = tmp_path / "arm.yaml", tmp_path / "domain.yaml"
    code = main(
        [
            "sysid",
            "--logs",
            str(DATA / "mock_arm_soft_servos_0.mcap"),
            "--eval",
            str(DATA / "mock_arm_soft_servos_1.mcap"),
        ]
        + [
            "--out",
            str(out),
            "--emit-domain",
            str(domain_file),
            "--iterations",
            "8",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    held_out = report["eval_logs"]
    assert held_out["fitted"]["mae_rad"] < held_out["default"]["mae_rad"] / 2, held_out
    domain = yaml.safe_load(domain_file.read_text())
    assert domain["latency_s"] == pytest.approx(truth["latency_s"], abs=0.01)
    assert domain["servo_position_gain_scale"] == pytest.approx(truth["servo_position_gain_scale"], rel=0.25)
    # Strength and damping barely show in these logs (the arm seldom reaches its torque limits); not checked.
    # The parameters file scores the same on the held-out log later.
    assert main(["sysid", "--params", str(out), "--eval", str(DATA / "mock_arm_soft_servos_1.mcap")]) == 0
    assert f"fitted {1000 * held_out['fitted']['mae_rad']:.1f}" in capsys.readouterr().out


def _synthetic_robot_log(name: str, source: Path, config, voltage: VoltageServoParams) -> robot_sysid.RobotLog:
    """The commands of a real mock-arm log, with the joint readings the arm would give with ``voltage``."""
    from calibration.sim_replay import sim_replay_errors
    from real.replay import log_cycles

    cycles = log_cycles(source)
    error = sim_replay_errors(cycles, config, robot_sysid.servo_for(config, {}, voltage))
    for c, e in zip(cycles, error, strict=False):
        c["joints"] = {**c["joints"], "position": (np.asarray(c["joints"]["position"]) + e).tolist()}
    return robot_sysid.RobotLog(name, cycles[: len(error)])


@pytest.mark.slow
def test_robot_voltage_fit_predicts_a_held_out_log():
    """A voltage servo model fitted through the arm's replay (`s2r sysid --model coulomb_viscous` on MCAP logs)
    predicts another log of the same arm far better than the datasheet default."""
    config, _ = robot_sysid.load_robot_logs([DATA / "mock_arm_soft_servos_0.mcap"])
    truth = VoltageServoParams(kt=1.2, R=4.0, armature=0.02, coulomb=0.08, viscous=0.1, latency=0.02, gain_scale=0.4)
    fit_log = _synthetic_robot_log("a", DATA / "mock_arm_soft_servos_0.mcap", config, truth)
    held_out = _synthetic_robot_log("b", DATA / "mock_arm_soft_servos_1.mcap", config, truth)
    default = robot_sysid.score(config, [held_out], {}, VoltageServoParams())["mae_rad"]
    fitted, _ = robot_sysid.fit_voltage(config, [fit_log], "coulomb_viscous", iterations=10, seed=0, progress=False)
    score = robot_sysid.score(config, [held_out], {}, fitted)["mae_rad"]
    assert score < default / 4, (score, default)  # measured: 5.3 vs 33 mrad


def test_base_logs_fit_the_wheels_and_pin_the_navigate_domain(tmp_path, capsys):
    domain_file = tmp_path / "domain.yaml"
    argv = ["sysid", "--logs", str(DATA / "mock_base_navigate.mcap"), "--out", str(tmp_path / "base.yaml")]
    assert main([*argv, "--iterations", "3", "--emit-domain", str(domain_file)]) == 0
    assert "MAE mrad/s" in capsys.readouterr().out  # wheel velocities
    domain = yaml.safe_load(domain_file.read_text())
    assert set(domain) == {"servo_strength", "latency_s"}
    env = gym.make("s2r/Navigate-v0", domain=str(domain_file))
    _, info = env.reset(seed=0)
    env.close()
    assert info["domain"]["latency_s"] == pytest.approx(domain["latency_s"])

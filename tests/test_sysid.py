"""System identification: the voltage servo model's physics, fits that find known parameters, the real XL330
pendulum logs, and robot fits from mock-arm MCAP logs recorded in a reality with known servo parameters."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import sim  # noqa: F401  (registers the envs)
from calibration import robot_sysid, servo_sysid, sysid
from calibration.servo_sysid import ServoLog, SysidError
from policies.cli import main
from sim.voltage_servo import GRAVITY, PendulumLoad, VoltageServoParams, duty_per_rad, simulate

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
    crossings = np.flatnonzero(np.diff(np.sign(q)) > 0) * 0.002
    period = np.diff(crossings).mean()
    assert period == pytest.approx(2 * np.pi * np.sqrt(LOAD.length / GRAVITY), rel=0.01)
    # Coulomb friction above the gravity torque at 0.3 rad: it does not move at all.
    sticky = VoltageServoParams(coulomb=LOAD.gravity_torque * np.sin(0.3) * 1.1)
    assert np.all(_run(sticky, np.zeros(500), q0=0.3, enable=False) == 0.3)


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
    """The issue's target: fitted on the sin_sin logs, under 90 mrad MAE on the up_and_down logs (perfect tracking
    539 mrad over all eight, Rhoban's identified model 93-98 mrad)."""
    folder = shared_data / "real_logs" / "xl330_pendulum"
    logs = [servo_sysid.load_servo_log(p) for p in sorted(folder.glob("*.json"))]
    assert len(logs) == 8
    assert servo_sysid.perfect_tracking_score(logs)["mae_rad"] == pytest.approx(0.539, abs=0.001)
    fit_logs = [log for log in logs if log.trajectory == "sin_sin"]
    held_out = [log for log in logs if log.trajectory == "up_and_down"]
    result = servo_sysid.fit(fit_logs, iterations=60, seed=0, progress=False)
    score = servo_sysid.score(result.params, held_out)
    assert score["mae_rad"] < 0.090, score
    assert score["mae_rad"] < servo_sysid.score(VoltageServoParams(), held_out)["mae_rad"] / 3
    assert set(score["logs"]) == {log.name for log in held_out}


def test_cli_scores_saved_parameters_and_plots(shared_data, tmp_path, capsys):
    folder = shared_data / "real_logs" / "xl330_pendulum"
    params = tmp_path / "xl330.yaml"
    fitted = VoltageServoParams(kt=0.29, R=1.8, armature=0.0024, coulomb=0.0007, viscous=0.0027, load_friction=0.56)
    params.write_text(yaml.safe_dump({"kind": "voltage_servo", "model": "load", "params": vars(fitted)}))
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
    assert "eval logs (1)" in capsys.readouterr().out


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

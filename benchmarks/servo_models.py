"""Cost of the servo models: the simulated arm with PyBullet's position servo vs the fitted voltage model, and the
speed of the vectorized voltage-model integrator that system identification searches with.

- ``arm``: physics ticks per second of the OpenManipulator-X in PyBullet (240 Hz physics, a new random joint goal
  every 24 ticks, as a 10 Hz policy sends them) with its default servos and with a voltage model
  (``sim.servo_model``, an XM430-like parameter set); ``ratio`` = voltage / default time per tick. Both run
  interleaved in rounds, so machine load falls on both alike.
- ``integrator``: simulated seconds per wall second of :func:`sim.voltage_servo.simulate` (its default step) for 1, 8
  and 1000 columns (a column is one parameter set on one log: differential evolution evaluates a population of
  about 100 candidates on 8 logs in one call).

Usage: python benchmarks/servo_models.py [--rounds R] [--json OUT]; prints the JSON too.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pybullet as p
import yaml
from report import emit  # benchmarks/report.py (scripts run from this folder)

from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config
from sim.pybullet_robot import PyBulletRobot
from sim.voltage_servo import DEFAULT_DT, VoltageServoParams, params_record, simulate

XM430 = VoltageServoParams(kt=1.78, R=5.2, armature=0.01, coulomb=0.05, viscous=0.05, load_friction=0.1)
REST = np.array([0.0, -1.0, 0.7, 0.3, 0.019])


def _arm(folder: Path, voltage: bool) -> tuple[int, PyBulletRobot]:
    path = HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml"
    if voltage:
        (folder / "xm430.yaml").write_text(yaml.safe_dump(params_record(XM430)))
        text = path.read_text().replace("  fixed_base: true", "  fixed_base: true\n  servo_model: xm430.yaml")
        path = folder / "arm.yaml"
        path.write_text(text)
    client = p.connect(p.DIRECT)
    p.setGravity(0, 0, -9.81, physicsClientId=client)
    p.setPhysicsEngineParameter(fixedTimeStep=1 / 240, physicsClientId=client)
    robot = PyBulletRobot(client, load_hardware_config(path))
    robot.reset_joints(REST)
    return client, robot


def arm(rounds: int, commands_per_round: int = 20) -> dict:
    rng = np.random.default_rng(0)
    times = {"default": 0.0, "voltage": 0.0}
    ticks = rounds * commands_per_round * 24
    with tempfile.TemporaryDirectory() as tmp:
        arms = {"default": _arm(Path(tmp), False), "voltage": _arm(Path(tmp), True)}
        for _ in range(rounds):
            goals = REST + rng.uniform(-0.3, 0.3, (commands_per_round, 5)) * np.array([1, 1, 1, 1, 0.03])
            for name, (_, robot) in arms.items():
                t0 = time.perf_counter()
                for goal in goals:
                    robot.command(goal)
                    robot.step(24)
                times[name] += time.perf_counter() - t0
        for client, _ in arms.values():
            p.disconnect(client)
    rate = {k: ticks / v for k, v in times.items()}
    return {
        "physics_ticks": ticks,
        "ticks_per_s": {k: round(v, 1) for k, v in rate.items()},
        "us_per_tick": {k: round(1e6 / v, 2) for k, v in rate.items()},
        "ratio_voltage_to_default": round(times["voltage"] / times["default"], 3),
    }


def integrator(seconds: float = 6.0) -> dict:
    steps = int(seconds / DEFAULT_DT)
    out = {}
    for columns in (1, 8, 1000):
        params = np.repeat(XM430.vector()[:, None], columns, axis=1)
        goal = np.sin(np.linspace(0, 10, steps))[:, None].repeat(columns, axis=1)
        args = (np.ones_like(goal), np.zeros(columns), np.full(columns, 400.0), np.full(columns, 7.4))
        t0 = time.perf_counter()
        simulate(params, goal, *args, np.full(columns, 0.0049), np.full(columns, 0.48))
        wall = time.perf_counter() - t0
        out[str(columns)] = {"wall_s": round(wall, 3), "simulated_s_per_wall_s": round(columns * seconds / wall, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds of 20 commands (default 20)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    out = {
        "benchmark": "servo_models",
        "machine": {"cpu": platform.processor() or platform.machine()},
        "arm": arm(args.rounds),
        "integrator": integrator(),
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()

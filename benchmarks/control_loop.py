"""Control-loop timing on the mock arm: cycle time p50 / p99, lateness and overruns at 50 Hz and 100 Hz.

Each cycle does what ``s2r deploy`` does around the policy: read the joints over the real driver code (Fast Sync
Read through the pseudo-terminal to the servo emulator, whose physics is the PyBullet reality), compute a target
(a slow sinusoid on every joint, standing in for the policy), pass it through the safety filter, sync-write it,
and log the reading and the command to an MCAP file. The servo emulator runs in the same process (as in a mock
deployment), so its physics shares the CPU with the loop.

Usage: python benchmarks/control_loop.py [--seconds S] [--rates 50 100] [--json OUT]; prints the JSON too.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from report import emit  # benchmarks/report.py (scripts run from this folder)

from mock.hardware import MockHardware
from real.hardware_log import HardwareLog
from real.robot import Robot
from robot.config_file import load_hardware_config


def run(rate_hz: float, seconds: float) -> dict:
    base = load_hardware_config("mock/openmanipulator_x")
    config = base.model_copy(update={"control": base.control.model_copy(update={"rate_hz": rate_hz})})
    period = 1.0 / rate_hz
    mock = MockHardware(config, None, seed=0)
    cycle_ms, late_ms, work_ms = [], [], []
    overruns = 0
    try:
        with tempfile.TemporaryDirectory() as tmp, HardwareLog(Path(tmp) / "bench.mcap") as log:
            with Robot(config) as robot:
                start_q = robot.configure().position
                robot.activate()
                next_t = t_start = time.monotonic()
                prev = None
                while time.monotonic() - t_start < seconds:
                    now = time.monotonic()
                    late = max(0.0, now - next_t)
                    late_ms.append(late * 1e3)
                    overruns += late > period
                    if prev is not None:
                        cycle_ms.append((now - prev) * 1e3)
                    prev = now
                    joints = robot.read()
                    target = start_q + 0.2 * np.sin(2 * np.pi * 0.5 * (now - t_start)) * np.array([1, 0.5, 0.5, 0.5, 0])
                    sent, _ = robot.write(target, late)
                    log.write("/joint_states", {"position": joints.position, "velocity": joints.velocity})
                    log.write("/command", {"requested": target, "sent": sent})
                    work_ms.append((time.monotonic() - now) * 1e3)
                    next_t += period
                    delay = next_t - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    elif -delay > period:
                        next_t = time.monotonic()
                bus = dict(robot.bus.stats)
    finally:
        mock.close()
    pct = lambda x, q: round(float(np.percentile(x, q)), 3)  # noqa: E731
    return {
        "rate_hz": rate_hz,
        "cycles": len(late_ms),
        "achieved_hz": round(1e3 / float(np.mean(cycle_ms)), 2),
        "cycle_ms_p50": pct(cycle_ms, 50),
        "cycle_ms_p99": pct(cycle_ms, 99),
        "work_ms_p50": pct(work_ms, 50),
        "work_ms_p99": pct(work_ms, 99),
        "late_ms_p99": pct(late_ms, 99),
        "overruns": int(overruns),
        "bus": bus,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration per rate (default 10)")
    parser.add_argument("--rates", type=float, nargs="+", default=[50.0, 100.0])
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    out = {
        "benchmark": "control_loop",
        "machine": {"cpu": platform.processor() or platform.machine()},
        "robot": "mock/openmanipulator_x",
        "results": [run(rate, args.seconds) for rate in args.rates],
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()

"""Silently wrong values under late replies: reads of one servo cycling through four 4-byte registers held at
distinct values, and out-of-range goal writes interleaved with in-range ones, while every reply arrives 25-100 ms
after its request (an FTDI adapter's default 16 ms latency timer plus a busy host). The bus's allowance is its
default 20 ms. Counts reads that returned another register's value, reads that raised, and out-of-range writes
reported as accepted.

Usage: python benchmarks/bus_late_replies.py [--reads N] [--json OUT]; prints the JSON too. Run with PYTHONPATH set
to another checkout to measure that checkout's bus (the script uses only the bus's read and write).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from report import emit  # benchmarks/report.py (scripts run from this folder)

from real.dynamixel.bus import DynamixelBus, DynamixelError, ServoError
from real.dynamixel.control_table import MODELS
from real.dynamixel.emulator import BusEmulator, EmulatedServo, EmulatorThread

R = MODELS["XM430-W350"].registers
HELD = {"present_position": 1111, "goal_position": 2222, "velocity_limit": 333, "profile_velocity": 444}
LATE_S = (0.025, 0.05, 0.1)


def run(late_s: float, reads: int, writes: int) -> dict:
    servo = EmulatedServo(1, "XM430-W350")
    em = BusEmulator({1: servo})
    with tempfile.TemporaryDirectory() as tmp, EmulatorThread(em, Path(tmp) / "tty") as server:
        with DynamixelBus(server.link) as bus:
            bus.write(1, R["max_position_limit"], 3000)
            bus.write(1, R["goal_position"], HELD["goal_position"])
            servo.faults.freeze = {k: v for k, v in HELD.items() if k != "goal_position"}
            servo.faults.delay_s = late_s
            names = list(HELD)
            wrong = errors = 0
            t0 = time.monotonic()
            for k in range(reads):
                name = names[k % len(names)]
                try:
                    wrong += bus.read(1, R[name]) != HELD[name]
                except DynamixelError:
                    errors += 1
            wall = time.monotonic() - t0
            accepted = refused = unanswered = 0
            for _ in range(writes):
                try:
                    bus.write(1, R["goal_position"], 3500)
                    accepted += 1
                except ServoError:
                    refused += 1
                except DynamixelError:
                    unanswered += 1
                try:
                    bus.write(1, R["goal_position"], HELD["goal_position"])
                except DynamixelError:
                    pass
    return {
        "late_ms": late_s * 1e3,
        "reads": reads,
        "wrong_values": wrong,
        "read_errors": errors,
        "reads_per_s": round(reads / wall, 1),
        "out_of_range_writes": writes,
        "accepted": accepted,
        "refused": refused,
        "unanswered": unanswered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1000, help="reads in all, split over the lateness values")
    parser.add_argument("--writes", type=int, default=15, help="out-of-range writes per lateness value")
    parser.add_argument("--json", help="also write the JSON here")
    args = parser.parse_args()
    results = [run(late, args.reads // len(LATE_S), args.writes) for late in LATE_S]
    total = {k: sum(r[k] for r in results) for k in ("reads", "wrong_values", "read_errors", "accepted")}
    emit({"by_lateness": results, "total": total}, args.json)


if __name__ == "__main__":
    main()

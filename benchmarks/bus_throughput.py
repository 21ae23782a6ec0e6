"""Sync reads per second of present position for 5 servos: our bus vs dynamixel-sdk's GroupSyncRead, on the same
emulator (its own process, on a pseudo-terminal), with the CPU seconds each client used. Both clients are measured
with Sync Read and with Fast Sync Read (the one MotorBus uses), interleaved in two halves.

Usage: python benchmarks/bus_throughput.py [--reads N] [--json OUT]; prints the JSON too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dynamixel_sdk as sdk
from report import emit, merge_halves, rate_result  # benchmarks/report.py (scripts run from this folder)

from mock.bus_process import EmulatorProcess
from real.dynamixel.bus import DynamixelBus
from real.dynamixel.control_table import MODELS

IDS = [11, 12, 13, 14, 15]


def configure(link: str) -> None:
    """Return delay 0 on every servo, as MotorBus.configure sets it on a real robot."""
    with DynamixelBus(link) as bus:
        for i in IDS:
            bus.write(i, MODELS["XM430-W350"].register("return_delay_time"), 0)


def ours(link: str, n: int, fast: bool = False) -> dict:
    reg = MODELS["XM430-W350"].register("present_position")
    with DynamixelBus(link, return_delay_s=0.0) as bus:
        read = bus.fast_sync_read if fast else bus.sync_read
        read(IDS, reg)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            read(IDS, reg)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return rate_result("s2r DynamixelBus." + ("fast_sync_read" if fast else "sync_read"), n, wall, cpu)


def vendor(link: str, n: int, fast: bool = False) -> dict:
    port = sdk.PortHandler(link)
    port.openPort()
    port.setBaudRate(1_000_000)
    ph = sdk.PacketHandler(2.0)
    reader = sdk.GroupSyncRead(port, ph, 132, 4)
    for i in IDS:
        reader.addParam(i)
    call = reader.fastSyncRead if fast else reader.txRxPacket
    call()
    failures = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        if call() != sdk.COMM_SUCCESS:
            failures += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    port.closePort()
    name = "dynamixel-sdk GroupSyncRead." + ("fastSyncRead" if fast else "txRxPacket")
    return {**rate_result(name, n, wall, cpu), "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        link = str(Path(tmp) / "ttyDXL")
        with EmulatorProcess("openmanipulator_x", link):
            configure(link)
            # Interleaved halves, so drift in machine load affects both clients alike.
            half = args.reads // 2
            runs = [(ours, False), (vendor, False), (ours, True), (vendor, True)]
            first = [f(link, half, fast) for f, fast in runs]
            second = [f(link, half, fast) for f, fast in runs]
            results = [merge_halves(a, b) for a, b in zip(first, second, strict=True)]
    ours_sync, sdk_sync, ours_fast, sdk_fast = results
    ratio = {
        # The comparison: what MotorBus uses (fast sync read) against the SDK's GroupSyncRead.
        "rate_ours_over_sdk": round(ours_fast["reads_per_s"] / sdk_sync["reads_per_s"], 3),
        "cpu_ours_over_sdk": round(ours_fast["cpu_s"] / max(sdk_sync["cpu_s"], 1e-9), 3),
        "same_instruction_rate_ratio": {
            "sync_read": round(ours_sync["reads_per_s"] / sdk_sync["reads_per_s"], 3),
            "fast_sync_read": round(ours_fast["reads_per_s"] / sdk_fast["reads_per_s"], 3),
        },
    }
    out = {"benchmark": "bus_throughput", "servos": len(IDS), "baudrate": 1_000_000, "results": results, **ratio}
    emit(out, args.json)


if __name__ == "__main__":
    main()

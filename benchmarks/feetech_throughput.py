"""Sync reads per second of present position for the SO-101's 6 STS3215 servos: our FeetechBus vs the vendor SDK's
GroupSyncRead (``scservo_sdk``), on the same emulator in its own process on a pseudo-terminal, with the CPU seconds
each client used, interleaved in two halves. Throughput on a pty measures the clients' own costs (the emulator
paces replies at 1 Mbps wire time), not a real adapter's.

Usage: python benchmarks/feetech_throughput.py [--reads N] [--json OUT]; prints the JSON too.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import scservo_sdk as scs
from report import emit, merge_halves, rate_result  # benchmarks/report.py (scripts run from this folder)

from real.feetech.bus import FeetechBus
from real.feetech.control_table import MODELS

IDS = [1, 2, 3, 4, 5, 6]
PRESENT = MODELS["STS3215"].register("present_position")


def _serve(link: str, ready, stop) -> None:  # in the child process
    from real.feetech.emulator import feetech_emulator
    from real.serial_emulator import open_pty

    master, slave, _ = open_pty(link)
    ready.set()
    try:
        feetech_emulator(IDS).serve(master, stop.is_set)
    finally:
        os.close(master)
        os.close(slave)
        Path(link).unlink(missing_ok=True)


def ours(link: str, n: int) -> dict:
    with FeetechBus(link) as bus:
        bus.sync_read(IDS, PRESENT)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            bus.sync_read(IDS, PRESENT)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        retries = bus.stats["retries"]
    return {**rate_result("s2r FeetechBus.sync_read", n, wall, cpu), "failures": retries}


def vendor(link: str, n: int) -> dict:
    port = scs.PortHandler(link)
    port.openPort()
    port.setBaudRate(1_000_000)
    reader = scs.GroupSyncRead(port, scs.PacketHandler(0), PRESENT.address, PRESENT.size)
    for i in IDS:
        reader.addParam(i)
    reader.txRxPacket()
    failures = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        if reader.txRxPacket() != scs.COMM_SUCCESS:
            failures += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    port.closePort()
    return {**rate_result("scservo_sdk GroupSyncRead.txRxPacket", n, wall, cpu), "failures": failures}


def main() -> None:
    import multiprocessing as mp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        link = str(Path(tmp) / "ttySO101")
        ready, stop = ctx.Event(), ctx.Event()
        server = ctx.Process(target=_serve, args=(link, ready, stop), daemon=True)
        server.start()
        try:
            if not ready.wait(10):
                raise RuntimeError("the Feetech emulator did not start within 10 s")
            half = args.reads // 2
            first = [f(link, half) for f in (ours, vendor)]
            second = [f(link, half) for f in (ours, vendor)]
        finally:
            stop.set()
            server.join(timeout=3)
    ours_r, sdk_r = (merge_halves(a, b) for a, b in zip(first, second, strict=True))
    out = {
        "benchmark": "feetech_throughput",
        "servos": len(IDS),
        "baudrate": 1_000_000,
        "results": [ours_r, sdk_r],
        "rate_ours_over_sdk": round(ours_r["reads_per_s"] / sdk_r["reads_per_s"], 3),
        "cpu_ours_over_sdk": round(ours_r["cpu_s"] / max(sdk_r["cpu_s"], 1e-9), 3),
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()

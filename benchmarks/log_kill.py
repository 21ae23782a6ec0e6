"""Hardware logs under SIGKILL, and what writing them costs.

- ``kill``: runs ``s2r deploy --robot mock/openmanipulator_x --policy grasp_state --log OUT --episodes 10`` (the
  real driver code against the servo emulator), SIGKILLs it ``--delays`` seconds after the log file appears, and
  reads what is left: bytes, messages, the seconds between the last logged message and the kill (the reader's
  ``stamp_ns``: the host's ``time.monotonic_ns()``, the same clock as the kill here), and the damage the reader
  reports.
- ``throughput``: in this process, as fast as it goes: the deploy's per-cycle JSON messages (joint states,
  observation, action, command, loop, reality), 640x480 RGB frames (JPEG encoding included, as
  ``foxglove.CompressedImage``) and 640x480 depth frames (``foxglove.RawImage``, 16UC1 in mm, zstd in the chunk);
  then the JSON messages paced at 50 Hz for ``--paced-s`` seconds, whose bytes per cycle show what flushing small
  chunks costs in compression.

Usage: python benchmarks/log_kill.py [--delays 3] [--repeats 1] [--episodes 10] [--skip-kill] [--json OUT];
prints the JSON too.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from report import emit  # benchmarks/report.py (scripts run from this folder)

from real.hardware_log import HardwareLog
from real.log_reader import read_log

REPO = Path(__file__).resolve().parents[1]


def s2r_command() -> list[str]:
    """The ``s2r`` entry point beside this interpreter, else ``python -m policies.cli``."""
    exe = Path(sys.executable).parent / "s2r"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("s2r")
    return [found] if found else [sys.executable, "-m", "policies.cli"]


def kill_once(delay_s: float, out: Path, episodes: int = 10, setup_timeout_s: float = 120.0) -> dict[str, Any]:
    """Deploy with a log (``episodes`` of about 2 s each), SIGKILL it ``delay_s`` after the log file appears, read
    the log back."""
    cmd = s2r_command() + [
        "deploy",
        "--robot",
        "mock/openmanipulator_x",
        "--policy",
        "grasp_state",
        "--episodes",
        str(episodes),
        "--log",
        str(out),
        "--quiet",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not out.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"deploy exited ({proc.returncode}) before opening its log: {proc.stderr.read()}")
            if time.monotonic() - started > setup_timeout_s:
                raise RuntimeError("the deploy did not open its log in time")
            time.sleep(0.01)
        opened = time.monotonic()
        time.sleep(max(0.0, opened + delay_s - time.monotonic()))
        if proc.poll() is not None:
            raise RuntimeError(f"deploy ended ({proc.returncode}) before the kill; lower --delays")
        kill_ns = time.monotonic_ns()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    result: dict[str, Any] = {
        "delay_s": delay_s,
        "setup_s": round(opened - started, 2),
        "bytes": out.stat().st_size,
    }
    read: list[tuple[str, int]] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for m in read_log(out, raw=True):
                read.append((m.topic, m.stamp_ns))
        result["damage"] = [str(w.message) for w in caught] or None
    except Exception as e:  # noqa: BLE001 - the point is to see what a reader does with a killed log
        result["error"] = f"{type(e).__name__}: {e}"
    stamps = [stamp for _, stamp in read]
    result["messages"] = len(stamps)
    result["joint_states"] = sum(topic == "/joint_states" for topic, _ in read)
    # what was lost: from the last message that reached the disk to the kill (the whole run if none did)
    result["lost_s"] = round((kill_ns - max(stamps)) / 1e9, 3) if stamps else None
    result["kill_after_open_s"] = round(delay_s, 3)
    return result


def _cycle(i: int, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """The JSON messages ``s2r deploy`` logs each cycle on a 5-joint arm (state policy)."""
    q = rng.normal(size=5)
    return {
        "/joint_states": {"position": q, "velocity": rng.normal(size=5), "effort": rng.normal(size=5)},
        "/policy/observation": {"joints": q, "joint_velocities": rng.normal(size=5), "object": rng.normal(size=7)},
        "/policy/action": {"action": rng.normal(size=5).astype(np.float32)},
        "/command": {"requested": q + 0.01, "sent": q + 0.009},
        "/loop": {"cycle": i, "late_s": float(rng.random() * 1e-3), "act_ms": float(rng.random())},
        "/reality/privileged": {"vector": rng.normal(size=7)},
    }


def throughput(seconds: float, paced_s: float) -> dict[str, Any]:
    """Messages per second written, as fast as it goes and paced at 50 Hz, with the bytes each took on disk."""
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cycles = [_cycle(i, rng) for i in range(2000)]
        path = Path(tmp) / "json.mcap"
        n = 0
        with HardwareLog(path) as log:
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                for topic, msg in cycles[n % len(cycles)].items():
                    log.write(topic, msg)
                n += 1
            elapsed = time.perf_counter() - t0
        per_cycle = len(cycles[0])
        out["json_cycles"] = {
            "messages_per_cycle": per_cycle,
            "messages_per_s": round(n * per_cycle / elapsed),
            "us_per_cycle": round(elapsed / n * 1e6, 1),
            "bytes_per_cycle": round(path.stat().st_size / n, 1),
        }

        yy, xx = np.mgrid[0:480, 0:640]
        frames = [
            np.stack([(xx + 3 * k) % 256, (yy * 2) % 256, rng.integers(0, 40, (480, 640)) + 100], -1).astype(np.uint8)
            for k in range(8)
        ]
        depths = [(0.4 + 0.001 * xx + 0.0005 * yy + 0.01 * k).astype(np.float32) for k in range(8)]
        streams = (("color_640x480_jpeg", "write_color", frames), ("depth_640x480_16uc1", "write_depth", depths))
        for name, write, images in streams:
            path = Path(tmp) / f"{name}.mcap"
            n = 0
            with HardwareLog(path) as log:
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    getattr(log, write)("/camera", images[n % len(images)])
                    n += 1
                elapsed = time.perf_counter() - t0
            out[name] = {
                "frames_per_s": round(n / elapsed, 1),
                "ms_per_frame": round(elapsed / n * 1e3, 2),
                "kb_per_frame": round(path.stat().st_size / n / 1e3, 1),
            }

        path = Path(tmp) / "paced.mcap"
        n = 0
        work = []
        with HardwareLog(path) as log:
            t0 = next_t = time.monotonic()
            while time.monotonic() - t0 < paced_s:
                w0 = time.perf_counter()
                for topic, msg in cycles[n % len(cycles)].items():
                    log.write(topic, msg)
                work.append(time.perf_counter() - w0)
                n += 1
                next_t += 0.02
                time.sleep(max(0.0, next_t - time.monotonic()))
        out["json_cycles_paced_50hz"] = {
            "cycles": n,
            "bytes_per_cycle": round(path.stat().st_size / n, 1),
            "us_per_cycle_p50": round(float(np.percentile(work, 50)) * 1e6, 1),
            "us_per_cycle_max": round(float(np.max(work)) * 1e6, 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delays", type=float, nargs="+", default=[3.0], help="kill this long after the log opens")
    parser.add_argument("--repeats", type=int, default=1, help="kills per delay")
    parser.add_argument("--episodes", type=int, default=10, help="episodes the deploy would run (about 2 s each)")
    parser.add_argument("--skip-kill", action="store_true", help="only the throughput part")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput run")
    parser.add_argument("--paced-s", type=float, default=5.0, help="duration of the 50 Hz paced run")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "benchmark": "log_kill",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "throughput": throughput(args.seconds, args.paced_s),
    }
    if not args.skip_kill:
        kills = []
        with tempfile.TemporaryDirectory() as tmp:
            for delay in args.delays:
                for _ in range(args.repeats):
                    kills.append(kill_once(delay, Path(tmp) / f"kill_{len(kills)}.mcap", args.episodes))
        out["kills"] = kills
    emit(out, args.json)


if __name__ == "__main__":
    main()

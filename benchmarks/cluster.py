"""Throughput of the scale-out paths (policies/cluster.py) on this machine: distillation scenes per second and
evaluation episodes per second, in one process, over the local process pool and over a local Ray instance, with
one and two workers, interleaved round by round in one run; and Ray's overhead per job (trivial jobs).

Each measurement runs in a fresh Python process (a Ray instance's CPU count is fixed when it starts) and times the
same work twice: ``cold``, the first call, worker start included (what a user of one short command waits for), and
``warm``, a second call on the same executor (Ray's workers are up and have imported the project; the process pool
starts its processes again, as every call of it does): the rate a long run (a distillation's hour of scenes) sees.
Prints JSON:

    python benchmarks/cluster.py --rounds 2 --scenes 200 --episodes 40 --json cluster.json

The projection for N machines assumes the work splits evenly over jobs (it does: scenes and episodes are
independent) and names what does not scale: the driver's own work (fitting a student, PPO's updates), and the data
sent back (a 64x64 RGB-D scene is 28 KB; a job of 500 scenes 14 MB).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: (setup, workers, Ray CPUs): the baseline in one process, today's local process pool, Ray with one and two CPUs.
SETUPS = [("one process", 1, None), ("process pool", 2, None), ("ray", 1, 1), ("ray", 2, 2)]


def measure(kind: str, setup: str, workers: int, ray_cpus: int | None, scenes: int, episodes: int) -> dict:
    """One measurement in a fresh interpreter (see :func:`_child`)."""
    args = [sys.executable, __file__, "--child", kind, setup, str(workers), str(ray_cpus or 0), str(scenes)]
    args.append(str(episodes))
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _identity(x: int) -> int:
    return x


def _child(kind: str, setup: str, workers: int, ray_cpus: int, scenes: int, episodes: int) -> None:
    from policies.cluster import LOCAL, Executor, connect

    executor = Executor(workers)
    if setup == "ray":
        connect(LOCAL, num_cpus=ray_cpus)
        executor = Executor(ray=LOCAL)
    walls = []
    for _ in ("cold", "warm"):
        walls.append(_work(kind, setup, workers, executor, scenes, episodes))
    n = {"scenes": scenes, "episodes": episodes}.get(kind, scenes)
    row = {"kind": kind, "setup": setup, "workers": workers, "n": n, "cold_s": walls[0], "warm_s": walls[1]}
    print(json.dumps(row))


def _work(kind: str, setup: str, workers: int, executor: object, scenes: int, episodes: int) -> float:
    """Seconds the work of ``kind`` takes once."""
    from policies.cluster import LOCAL, run_jobs

    started = time.perf_counter()
    if kind == "scenes":
        from policies.distill import Distillation, DistillConfig

        config = DistillConfig(teacher="grasp_state", out="/tmp/unused", workers=workers, supersample=4)
        if setup == "ray":
            config.ray = LOCAL
        run = Distillation(config)
        started = time.perf_counter()  # the driver's own env and teacher are made once per command either way
        # chunks of 50 scenes so that two workers share the work (a real run uses 500)
        run.collect_scenes(scenes, progress=False, chunk=50)
    elif kind == "episodes":
        from policies.evaluate import evaluate

        evaluate("grasp_state", "grasp", episodes, 5_000_000, progress=False, executor=executor)
    else:  # trivial jobs: the cost of a job itself
        run_jobs(_identity, list(range(scenes)), executor, progress=False)
    return round(time.perf_counter() - started, 3)


def _summary(rows: list[dict], phase: str) -> dict:
    """Median rate per setup over the rounds, and the ratios the issue asks for, for the ``cold`` or ``warm``
    call."""
    rates: dict[str, dict[str, float]] = {}
    for kind in ("scenes", "episodes", "jobs"):
        per_setup: dict[str, list[float]] = {}
        for row in (r for r in rows if r["kind"] == kind):
            per_setup.setdefault(f"{row['setup']} x{row['workers']}", []).append(row["n"] / row[f"{phase}_s"])
        rates[kind] = {k: round(float(statistics.median(v)), 2) for k, v in per_setup.items()}
    out: dict = {"per_second": rates}
    for kind in ("scenes", "episodes"):
        r = rates[kind]
        one, pool2, ray1, ray2 = (r.get(k) for k in ("one process x1", "process pool x2", "ray x1", "ray x2"))
        out[f"{kind}_ray_over_pool_2_workers"] = round(ray2 / pool2, 3) if ray2 and pool2 else None
        out[f"{kind}_ray_scaling_1_to_2"] = round(ray2 / ray1, 3) if ray2 and ray1 else None
        out[f"{kind}_ray_2_over_one_process"] = round(ray2 / one, 3) if ray2 and one else None
    if rates["jobs"].get("ray x2"):
        out["ray_ms_per_trivial_job"] = round(1000 / rates["jobs"]["ray x2"], 2)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, setup, workers, ray_cpus, scenes, episodes = sys.argv[2:8]
        _child(kind, setup, int(workers), int(ray_cpus), int(scenes), int(episodes))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=200, help="trivial jobs for the per-job overhead")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for r in range(args.rounds):  # interleaved: a slow moment of the machine hits every setup alike
        for kind, size in (("scenes", args.scenes), ("episodes", args.episodes), ("jobs", args.jobs)):
            for setup, workers, ray_cpus in SETUPS:
                if kind == "jobs" and setup == "one process":
                    continue
                row = measure(kind, setup, workers, ray_cpus, size, size)
                row["round"] = r
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    result = {"runs": rows}
    for phase in ("cold", "warm"):
        result[phase] = _summary(rows, phase)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()

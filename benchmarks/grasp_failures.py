"""Where grasp episodes fail, read from deploy logs (issue 25): for each episode of a mock-robot log, from the
reality's true state logged every cycle (``/reality/privileged``), how close the tool came to the object, whether
both fingers touched it, how far it rose and where the gripper joint read while it held the object; each failure
is put in the phase it ended in. Prints JSON (``--out`` also writes it).

    python benchmarks/grasp_failures.py --deploy grasp_rgbd grasp_state --engines pybullet mujoco --episodes 30 \\
        --out docs/gap/grasp_failures.json
    python benchmarks/grasp_failures.py --logs run.mcap            # logs already written

Phases of a failed episode: ``never_near`` (the tool never within ``--near`` of the object's centre: the object was
not found), ``near_no_grasp`` (reached it, but both fingers never touched it together: a missed or pushed grasp),
``grasped_not_lifted`` (held by both fingers at some point, but not lifted to success: dropped or slipped).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import emit  # noqa: E402

#: The grasp privileged vector (sim.envs.grasp_env.GraspEnv._privileged): object position (3), orientation
#: quaternion (4), object minus tool (3), lift (1), left and right finger contact (2).
TO_OBJECT, LIFT, CONTACTS = slice(7, 10), 10, slice(11, 13)


def episodes_of(path: Path, near_m: float, gripper: str) -> list[dict]:
    """Per episode of the log at ``path``: outcome, closest tool-object distance (m), cycles with both fingers on
    the object, highest lift (m), the gripper joint's median reading while both fingers held the object, and the
    phase a failure ended in."""
    from real.log_reader import read_log

    out: list[dict] = []
    current: dict | None = None
    opening = float("nan")  # the gripper joint's last reading
    for message in read_log(path, topics=["/episode", "/reality/privileged", "/joint_states"]):
        data = message.data
        if message.topic == "/joint_states":
            if gripper in data["name"]:
                opening = float(data["position"][list(data["name"]).index(gripper)])
            continue
        if message.topic == "/episode":
            if data["event"] == "start":
                current = {"episode": data["episode"], "seed": data["seed"], "distance": [], "both": 0, "lift": 0.0}
                current["held_at"] = []
            elif data["event"] == "end" and current is not None:
                current["outcome"] = data["outcome"]
                out.append(_summarize(current, near_m))
                current = None
            continue
        if current is None:
            continue
        v = np.asarray(data["vector"], dtype=float)
        current["distance"].append(float(np.linalg.norm(v[TO_OBJECT])))
        if np.all(v[CONTACTS] > 0.5):
            current["both"] += 1
            current["held_at"].append(opening)
        current["lift"] = max(current["lift"], float(v[LIFT]))
    return out


def _summarize(ep: dict, near_m: float) -> dict:
    closest = min(ep["distance"]) if ep["distance"] else float("nan")
    success = ep["outcome"] == "success"
    if success:
        phase = "success"
    elif not closest <= near_m:
        phase = "never_near"
    elif ep["both"] == 0:
        phase = "near_no_grasp"
    else:
        phase = "grasped_not_lifted"
    return {
        "episode": ep["episode"],
        "seed": ep["seed"],
        "outcome": ep["outcome"],
        "phase": phase,
        "closest_m": round(closest, 4),
        "cycles_held": ep["both"],
        "max_lift_m": round(ep["lift"], 4),
        "gripper_while_held": round(float(np.median(ep["held_at"])), 4) if ep["held_at"] else None,
    }


def report(path: Path, near_m: float, gripper: str) -> dict:
    episodes = episodes_of(path, near_m, gripper)
    held = {
        phase: [e["gripper_while_held"] for e in episodes if e["phase"] == phase and e["gripper_while_held"]]
        for phase in ("success", "grasped_not_lifted")
    }
    return {
        "log": str(path),
        "episodes": len(episodes),
        "phases": dict(Counter(e["phase"] for e in episodes)),
        "closest_m_median": round(float(np.median([e["closest_m"] for e in episodes])), 4) if episodes else None,
        "gripper_while_held_median": {k: round(float(np.median(v)), 4) if v else None for k, v in held.items()},
        "per_episode": episodes,
    }


def deploy_log(policy: str, engine: str, episodes: int, seed: int, folder: Path) -> Path:
    from policies.cli import main as s2r

    log = folder / f"{policy}_{engine}.mcap"
    args = ["deploy", "--robot", "mock/openmanipulator_x", "--policy", policy, "--engine", engine]
    args += ["--episodes", str(episodes), "--seed", str(seed), "--max-stall", "10", "--quiet", "--log", str(log)]
    if s2r(args) != 0:
        raise SystemExit(f"deploy of {policy} on {engine} failed")
    return log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", nargs="*", default=[])
    ap.add_argument("--deploy", nargs="*", default=[], help="grasp bundles to deploy (a log per engine)")
    ap.add_argument("--engines", nargs="*", default=["pybullet", "mujoco"])
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=3_000_000)
    ap.add_argument("--near", type=float, default=0.02, help="m: the tool reached the object within this")
    ap.add_argument("--gripper", default="gripper", help="the gripper joint's name in the logs")
    ap.add_argument("--out")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logs = [Path(p) for p in args.logs]
        runs = {}
        for bundle in args.deploy:
            for engine in args.engines:
                log = deploy_log(bundle, engine, args.episodes, args.seed, Path(tmp))
                runs[f"{bundle}/{engine}"] = report(log, args.near, args.gripper)
        for log in logs:
            runs[str(log)] = report(log, args.near, args.gripper)
    emit({"near_m": args.near, "runs": runs}, args.out)


if __name__ == "__main__":
    main()

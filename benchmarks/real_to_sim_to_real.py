"""The real-to-sim-to-real loop (issue 26) on a mock robot whose reality lies outside the policy's training ranges,
measured end to end. Every stage is one ``s2r`` command, printed as it runs:

1. deploy the zero-shot policy on the reality, logging (``s2r deploy --log``): success before;
2. fit the simulator's servos to that log (``s2r sysid --emit-domain --emit-ranges``);
3. fine-tune the policy under the randomization centred on the fit (``s2r train --init --randomization``) and, as
   the control with the same compute, under its own default randomization;
4. deploy both fine-tuned policies on the same reality and seeds: success after;
5. score the fitted and the default simulator on the logs of step 4 (``s2r sysid --params --eval``): replay drift
   on trajectories of other policies than the fit saw.

Prints JSON (``--out`` also writes it); the runs land in ``--work``, and a stage whose output is there is not run
again (a stopped loop resumes).

    D=docs/real_to_sim_to_real
    python benchmarks/real_to_sim_to_real.py --policy policies/bundles/grasp_state --out $D/grasp_state.json
    s2r train --task grasp --randomization none --steps 100000 --eval-every 50000 --out runs/grasp_nominal
    python benchmarks/real_to_sim_to_real.py --policy runs/grasp_nominal/bundle --out $D/grasp_nominal.json

(the defaults: the MuJoCo reality ``arm_far_servos``, 30 episodes from seed 3000000, 60,000 fine-tuning steps each)
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import emit, success_figures  # noqa: E402

REALITIES = ROOT / "hardware_configs" / "mock" / "realities"
ROBOTS = {"grasp": "mock/openmanipulator_x", "navigate": "mock/turtlebot3_burger"}


def s2r(*args: str) -> float:
    """Run one ``s2r`` command (printed first); its wall time in s. A failing command stops the loop."""
    command = [sys.executable, "-m", "policies.cli", *args]
    print("$ s2r " + " ".join(shlex.quote(a) for a in args), file=sys.stderr, flush=True)
    start = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True)
    return round(time.monotonic() - start, 1)


def rel(path: str | Path) -> str:
    """``path`` relative to the repository when it lies inside it (the JSON holds no machine's folders)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def policy_name(policy: str) -> str:
    """A bundle's name: its folder, or its run's folder for ``RUN/bundle``."""
    path = Path(policy)
    return path.parent.name if path.name == "bundle" else path.name


def wall(work: Path, stage: str, seconds: float | None = None) -> float | None:
    """The wall time (s) of a stage: recorded in ``work/wall_s.json`` when given, read back when resumed."""
    file = work / "wall_s.json"
    walls = json.loads(file.read_text()) if file.exists() else {}
    if seconds is not None:
        walls[stage] = seconds
        file.write_text(json.dumps(walls, indent=1))
    return walls.get(stage)


def deploy(work: Path, name: str, policy: str, task: str, args: argparse.Namespace) -> dict:
    """Deploy ``policy`` on the reality (``args.episodes`` episodes from ``args.seed``); its success and log."""
    summary, log = work / f"{name}.json", work / f"{name}.mcap"
    if not summary.exists():
        wall(work, name, s2r(
            "deploy", "--robot", ROBOTS[task], "--policy", policy, "--engine", args.engine,
            "--reality", str(args.reality), "--episodes", str(args.episodes), "--seed", str(args.seed),
            "--log", str(log), "--quiet", "--json", str(summary),
        ))  # fmt: skip
    data = json.loads(summary.read_text())
    return {
        "policy": rel(policy) if Path(policy).exists() else policy,
        **success_figures(data["episodes"]),
        "ended": data["ended"],
        "log": rel(log),
        "wall_s": wall(work, name),
    }


def fine_tune(work: Path, name: str, randomization: str, task: str, args: argparse.Namespace) -> dict:
    out = work / name
    if not (out / "report.json").exists():
        wall(work, name, s2r(
            "train", "--task", task, "--init", args.policy, "--randomization", randomization,
            "--steps", str(args.steps), "--seed", str(args.train_seed), "--out", str(out),
            "--eval-every", str(args.steps // 2), "--eval-episodes", "50", "--bc-demos", "100",
        ))  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    best, bundle = report["best"], str(out / "bundle")
    return {"randomization": rel(randomization) if Path(randomization).exists() else randomization, "best": best,
            "bundle": rel(bundle), "wall_s": wall(work, name)}  # fmt: skip


def drift(work: Path, name: str, params: Path, logs: list[str]) -> dict:
    """Replay MAE (rad; position joints, from each episode's first state) of the fitted and the default simulator."""
    out = work / f"{name}.json"
    if not out.exists():
        s2r("sysid", "--params", str(params), *[a for log in logs for a in ("--eval", log)], "--json", str(out))
    held = json.loads(out.read_text())["eval_logs"]
    return {
        "logs": [rel(log) for log in logs],
        "fitted_mae_mrad": round(1e3 * held["fitted"]["mae_rad"], 1),
        "default_mae_mrad": round(1e3 * held["default"]["mae_rad"], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="policies/bundles/grasp_state", help="a state bundle")
    ap.add_argument("--task", default="grasp", choices=list(ROBOTS))
    ap.add_argument("--reality", type=Path, default=REALITIES / "arm_far_servos.yaml")
    ap.add_argument("--engine", default="mujoco", choices=["pybullet", "mujoco"])
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=3_000_000, help="first deploy episode's scene seed")
    ap.add_argument("--steps", type=int, default=60_000, help="fine-tuning steps (each run)")
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--sysid-iterations", type=int, default=20)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "real_to_sim_to_real")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    work = args.work / f"{policy_name(args.policy)}_{args.engine}_{args.reality.stem}"
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"policy": args.policy, "reality": str(args.reality.name), "engine": args.engine}
    result["before"] = deploy(work, "before", args.policy, args.task, args)

    servos, domain, ranges = work / "servos.yaml", work / "domain.yaml", work / "ranges.yaml"
    if not ranges.exists():
        wall(work, "sysid", s2r(
            "sysid", "--logs", str(work / "before.mcap"), "--out", str(servos), "--emit-domain", str(domain),
            "--emit-ranges", str(ranges), "--iterations", str(args.sysid_iterations), "--json",
            str(work / "sysid.json"),
        ))  # fmt: skip
    fit = json.loads((work / "sysid.json").read_text())
    result["sysid"] = {
        "fitted_domain": yaml.safe_load(domain.read_text()),
        "reality": yaml.safe_load(args.reality.read_text()),
        "fit_log_mae_mrad": {  # in sample: the log the fit was made on
            "fitted": round(1e3 * fit["fit_logs"]["fitted"]["mae_rad"], 1),
            "default": round(1e3 * fit["fit_logs"]["default"]["mae_rad"], 1),
        },
        "wall_s": wall(work, "sysid"),
    }
    tuned = {
        "centred": fine_tune(work, "tuned_centred", str(ranges), args.task, args),
        "default": fine_tune(work, "tuned_default", "default", args.task, args),
    }
    result["fine_tune"] = tuned
    result["after"] = {k: deploy(work, f"after_{k}", v["bundle"], args.task, args) for k, v in tuned.items()}
    logs = [str(work / f"after_{k}.mcap") for k in tuned]
    result["replay_drift_held_out"] = drift(work, "drift_after", servos, logs)
    emit(result, args.out)


if __name__ == "__main__":
    main()

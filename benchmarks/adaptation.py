"""Domain adaptation of a camera student to the second-engine reality (issue 29, part 1), the loop a lab would run:
deploy the zero-shot student on the reality with a log, adapt it from the log's unlabelled frames, deploy again.
Every stage is one ``s2r`` command, printed as it runs:

1. deploy the zero-shot student on the MuJoCo reality (``--frame-episodes`` episodes from ``--frame-seed``, logged):
   the target frames;
2. ``s2r adapt`` once per arm: ``finetune`` (the control: the same fit on simulated scenes, no target frames),
   ``match`` (histogram matching) and ``dann`` (domain-adversarial features), with 1,000 and with 100 frames;
3. deploy the zero-shot and every adapted student on the MuJoCo reality and on the PyBullet one (``--episodes``
   from ``--seed``: other scenes than the frames came from), nominal domain: success with Wilson 95 % intervals.

Prints JSON (``--out`` also writes it) and, with ``--markdown``, the table; the runs land in ``--work``, and a stage
whose output is there is not run again (a stopped run resumes).

    python benchmarks/adaptation.py --out docs/adaptation/grasp_rgbd.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.real_to_sim_to_real import ROBOTS, rel, s2r, wall  # noqa: E402
from benchmarks.report import emit, success_figures  # noqa: E402

#: arm -> (s2r adapt --method, --max-frames); None: the zero-shot student itself.
ARMS: dict[str, tuple[str, int] | None] = {
    "zero_shot": None,
    "finetune": ("finetune", 1000),
    "match_1000": ("match", 1000),
    "dann_1000": ("dann", 1000),
    "match_100": ("match", 100),
    "dann_100": ("dann", 100),
}
ENGINES = ("mujoco", "pybullet")


def deploy(
    work: Path, name: str, policy: str, engine: str, episodes: int, seed: int, log: bool, args: argparse.Namespace
) -> dict:
    """``policy`` on the ``engine`` reality, in ``args.reality``'s domain (nominal without one); its success (and
    log)."""
    summary, log_path = work / f"{name}.json", work / f"{name}.mcap"
    if not summary.exists():
        reality = ["--reality", args.reality] if args.reality else []
        cmd = ["deploy", "--robot", ROBOTS[args.task], "--policy", policy, "--engine", engine, *reality]
        cmd += ["--episodes", str(episodes), "--seed", str(seed), "--max-stall", "10", "--quiet"]
        cmd += ["--json", str(summary)]
        wall(work, name, s2r(*cmd, *(["--log", str(log_path)] if log else [])))
    data = json.loads(summary.read_text())
    frame_age = data.get("camera", {}).get("frame_age_ms_p50")
    out = {**success_figures(data["episodes"]), "ended": data["ended"], "frame_age_ms_p50": frame_age}
    return {**out, "wall_s": wall(work, name), **({"log": rel(log_path)} if log else {})}


def adapt(work: Path, arm: str, student: str, frames: Path, args: argparse.Namespace) -> dict:
    method, max_frames = ARMS[arm]
    out = work / arm
    if not (out / "report.json").exists():
        wall(work, arm, s2r(
            "adapt", "--student", student, "--frames", str(frames), "--out", str(out), "--method", method,
            "--max-frames", str(max_frames), "--scenes", str(args.scenes), "--epochs", str(args.epochs),
            "--scene-cache", str(args.scene_cache), "--eval-episodes", "0",
            *(["--teacher", args.teacher] if args.teacher else []),
        ))  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    keys = ("domain_gap_before", "domain_gap_after", "fit")
    return {"bundle": rel(out / "bundle"), **{k: report[k] for k in keys}, "wall_s": wall(work, arm)}


def markdown(result: dict) -> str:
    rows = ["| student | MuJoCo reality | PyBullet reality | feature gap before -> after |", "|---|---|---|---|"]
    for arm, cells in result["arms"].items():
        figures = []
        for engine in ENGINES:
            c = cells.get(engine)
            figures.append(
                f"{c['successes']}/{c['episodes']} ({c['ci95'][0]:.0%}-{c['ci95'][1]:.0%})" if c else "not measured"
            )
        fit = cells.get("adapt")
        gap = f"{fit['domain_gap_before']:.2f} -> {fit['domain_gap_after']:.2f}" if fit else ""
        rows.append(f"| {arm} | {figures[0]} | {figures[1]} | {gap} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="grasp_rgbd")
    parser.add_argument("--task", default="grasp", choices=sorted(ROBOTS))
    parser.add_argument("--teacher", default=None, help="s2r adapt --teacher (where the student's is not at hand)")
    parser.add_argument("--reality", default=None, help="domain file of the realities (default: the nominal domain)")
    parser.add_argument("--work", default="runs/adaptation")
    parser.add_argument("--frame-episodes", type=int, default=25)
    parser.add_argument("--frame-seed", type=int, default=9_000_000)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=3_000_000)
    parser.add_argument("--scenes", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--scene-cache", default="runs/scene_cache")
    parser.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--engines", nargs="*", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--markdown", action="store_true", help="print the table of --out's result")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(Path(args.out).read_text())))
        return
    work = ROOT / args.work
    work.mkdir(parents=True, exist_ok=True)
    result = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).exists() else {"arms": {}}
    frames = deploy(work, "frames", args.student, "mujoco", args.frame_episodes, args.frame_seed, True, args)
    result["reality"] = rel(args.reality) if args.reality else "nominal"
    result["target_frames"] = {**frames, "episodes_from_seed": args.frame_seed}
    for arm in args.arms:
        cells = result["arms"].setdefault(arm, {})
        policy = args.student
        if ARMS[arm] is not None:
            cells["adapt"] = adapt(work, arm, args.student, work / "frames.mcap", args)
            policy = str(work / arm / "bundle")
        for engine in args.engines:
            cells[engine] = deploy(work, f"{arm}_{engine}", policy, engine, args.episodes, args.seed, False, args)
        if args.out:  # kept as each arm finishes
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    result["command"] = " ".join(sys.argv)
    emit(result, args.out)


if __name__ == "__main__":
    main()

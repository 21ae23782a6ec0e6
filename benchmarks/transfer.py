"""Transfer of the shipped bundles through the mock hardware on both reality engines (issue 25): each bundle
deployed with ``s2r deploy`` (real driver bytes, librealsense for camera policies) on PyBullet and on MuJoCo
realities, nominal and shifted, success with Wilson 95 % intervals. Prints JSON (``--out`` also writes it).

    python benchmarks/transfer.py --episodes 30 --out docs/transfer.json

One deploy at a time (the mock robots share their pseudo-terminal paths); ``--only`` picks bundles, ``--engines``
and ``--realities`` narrow the grid, and an existing ``--out`` file is resumed (cells already measured are kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import emit, success_figures  # noqa: E402

REALITY_DIR = ROOT / "hardware_configs" / "mock" / "realities"
ROBOTS = {"grasp": "mock/openmanipulator_x", "navigate": "mock/turtlebot3_burger"}
BUNDLES = {"grasp_state": "grasp", "grasp_rgbd": "grasp", "navigate_state": "navigate", "navigate_rgbd": "navigate"}
#: Reality files (hardware_configs/mock/realities) per bundle; None is the nominal domain. navigate_state reads no
#: image, so a shifted camera is left out for it (grasp_state keeps its cell as a control: it must not move).
REALITIES = {
    "grasp_state": [None, "heavy_object", "late_servos", "shifted_camera"],
    "grasp_rgbd": [None, "heavy_object", "late_servos", "shifted_camera"],
    "navigate_state": [None, "late_servos"],
    "navigate_rgbd": [None, "late_servos", "shifted_camera"],
}


def deploy(
    bundle: str,
    robot: str,
    engine: str,
    reality: str | Path | None,
    episodes: int,
    seed: int,
    max_stall_s: float = 2.0,
    adapt: bool = False,
) -> dict:
    """``s2r deploy`` of ``bundle`` on the mock ``robot`` in this process: success figures, how the run ended, its
    wall time. ``reality``: a domain file (None: the nominal domain); ``adapt``: an estimator bundle acts on its
    estimate."""
    from policies.cli import main as s2r

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "summary.json"
        args = ["deploy", "--robot", robot, "--policy", str(bundle), "--engine", engine]
        args += ["--episodes", str(episodes), "--seed", str(seed), "--quiet", "--json", str(out)]
        args += ["--max-stall", str(max_stall_s)] + (["--adapt"] if adapt else [])
        if reality is not None:
            args += ["--reality", str(reality)]
        start = time.monotonic()
        rc = s2r(args)
        summary = json.loads(out.read_text())
    return {
        **success_figures(summary["episodes"]),
        "per_episode": [bool(e["success"]) for e in summary["episodes"]],  # which agree across policies or engines
        "ended": summary["ended"],
        "exit_code": rc,
        "wall_s": round(time.monotonic() - start, 1),
        "camera_frame_age_ms_p50": summary.get("camera", {}).get("frame_age_ms_p50"),
        "stalled_cycles": summary.get("stalled_cycles"),
    }


def coarse_mujoco_camera(divisor: int) -> None:
    """Make this process's MuJoCo realities draw their camera at 1/``divisor`` resolution (the deploys run here)."""
    import mock.hardware as hardware
    from mock.simulated_realsense import coarse_renderer

    engine = hardware.REALITIES["mujoco"]

    def renderer(mock, camera, depth_range):
        return coarse_renderer(engine.renderer(mock, camera, depth_range), divisor)

    hardware.REALITIES["mujoco"] = hardware.RealityEngine(engine.build, renderer)


def markdown(cells: list[dict]) -> str:
    """The measured cells as a table: one row per bundle and reality, PyBullet and MuJoCo side by side."""
    rows = ["| bundle | reality | PyBullet reality | MuJoCo reality |", "|---|---|---|---|"]
    by_key = {(c["bundle"], c["reality"], c["engine"]): c for c in cells}
    order = [(b, r or "nominal") for b in BUNDLES for r in REALITIES[b]]
    for bundle, reality in sorted(
        dict.fromkeys((c["bundle"], c["reality"]) for c in cells),
        key=lambda k: order.index(k) if k in order else len(order),
    ):
        shown = []
        for engine in ("pybullet", "mujoco"):
            c = by_key.get((bundle, reality, engine))
            shown.append(
                f"{c['successes']}/{c['episodes']} ({c['ci95'][0]:.0%}-{c['ci95'][1]:.0%})" if c else "not measured"
            )
        rows.append(f"| {bundle} | {reality} | {shown[0]} | {shown[1]} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=3_000_000)
    ap.add_argument("--only", nargs="*", default=list(BUNDLES), choices=list(BUNDLES))
    ap.add_argument("--engines", nargs="*", default=["pybullet", "mujoco"], choices=["pybullet", "mujoco"])
    ap.add_argument("--realities", nargs="*", default=None, help="reality names (nominal for the nominal domain)")
    ap.add_argument(
        "--max-stall", type=float, default=2.0, help="s without a fresh camera frame that stop a run (s2r deploy's)"
    )
    ap.add_argument(
        "--mujoco-render-divisor",
        type=int,
        default=1,
        help="an experiment: the MuJoCo camera draws at 1/N of the stream's resolution, each pixel repeated, as the "
        "PyBullet mock's does (mock.simulated_realsense.coarse_renderer); use its own --out",
    )
    ap.add_argument("--out", default=None)
    ap.add_argument("--markdown", action="store_true", help="print the table of --out's cells, deploy nothing")
    args = ap.parse_args()
    if args.mujoco_render_divisor != 1:
        coarse_mujoco_camera(args.mujoco_render_divisor)
    if args.markdown:
        print(markdown(json.loads(Path(args.out).read_text())["cells"]))
        return
    done = json.loads(Path(args.out).read_text())["cells"] if args.out and Path(args.out).exists() else []
    key = lambda c: (c["bundle"], c["engine"], c["reality"])  # noqa: E731
    have = {key(c) for c in done if c["episodes"] == args.episodes}
    cells = [c for c in done if key(c) in have]
    for bundle in args.only:
        for reality in REALITIES[bundle]:
            name = reality or "nominal"
            if args.realities is not None and name not in args.realities:
                continue
            for engine in args.engines:
                if (bundle, engine, name) in have:
                    continue
                path = None if reality is None else REALITY_DIR / f"{reality}.yaml"
                figures = deploy(
                    bundle, ROBOTS[BUNDLES[bundle]], engine, path, args.episodes, args.seed, args.max_stall
                )
                cell = {"bundle": bundle, "engine": engine, "reality": name, **figures}
                cell["max_stall_s"] = args.max_stall
                if args.mujoco_render_divisor != 1:
                    cell["mujoco_render_divisor"] = args.mujoco_render_divisor
                print(json.dumps(cell), file=sys.stderr, flush=True)
                cells.append(cell)
                emit({"episodes": args.episodes, "seed": args.seed, "cells": cells}, args.out)


if __name__ == "__main__":
    main()

"""Why a camera student fails on the MuJoCo reality (issue 25): its first action in the same scenes from frames of
each engine's mock camera, against its state teacher's action there, with the colour and depth of the two engines
swapped to tell which channel carries the gap. Prints JSON (``--out`` also writes it).

    python benchmarks/camera_gap.py --scenes 40 --out docs/gap/camera_gap_grasp.json

Each scene is the grasp task's (nominal domain) at a seed from ``--seed``, the arm at the task's start pose with
its gripper open, as the policy's first frame finds it on a mock robot. Frames are rendered at the configured
stream (640x480, the PyBullet mock at half resolution, repeated, as the mock camera draws it), then cropped and
reduced by the robot's own code. Variants: ``sim`` (the simulator's own observation), ``pybullet`` and ``mujoco``
(each mock camera), ``mujoco_color+pybullet_depth`` and ``pybullet_color+mujoco_depth``. Per variant: the mean and
median distance of the student's action to the teacher's (actions in [-1, 1]^n), and how often the student's
gripper command agrees with the teacher's in sign; per engine the frames' mean colour in the crop; and how the two
engines' reduced frames differ (median depth difference on pixels both see, mean colour difference, share of
pixels without depth).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import emit  # noqa: E402


def _set_arm(reality, engine: str, joints: np.ndarray) -> None:
    """Put the reality's arm at ``joints`` (config order) at rest, its mimic fingers with it."""
    if engine == "pybullet":
        reality.core.robot.reset_joints(joints)
        return
    import mujoco

    reality.place_arm(joints)
    mujoco.mj_forward(reality.model, reality.data)


def _pybullet_renderer(reality, depth_range):
    """The PyBullet mock camera's drawing (mock.reality's render replica does the same in its own process)."""
    from mock.simulated_realsense import PYBULLET_RENDER_DIVISOR, coarse_renderer
    from sim.camera_model import render

    core = reality.core

    def draw(intrinsics, offset):
        position, rotation = core.camera_pose()
        return render(
            core.client,
            intrinsics,
            position + rotation @ offset,
            rotation,
            depth_range,
            shadow=core._shadow,
            light=core._light,
        )

    return coarse_renderer(draw, PYBULLET_RENDER_DIVISOR)


def measure(scenes: int, seed: int, student_path: str, teacher_path: str, mujoco_divisor: int = 1) -> dict:
    import policies
    from mock.mujoco_reality import MujocoReality
    from mock.reality import Reality
    from mock.simulated_realsense import coarse_renderer
    from robot.config_file import load_hardware_config
    from robot.frame_reduction import reduce_frame
    from robot.intrinsics import camera_intrinsics
    from sim.envs.factory import task_env

    student, teacher = policies.load(student_path), policies.load(teacher_path)
    camera_opts = dict(student.meta.get("camera") or {})
    crop = camera_opts.get("crop")
    h, w = student.obs_spec.shapes["rgb"][:2]
    config = load_hardware_config("mock/openmanipulator_x")
    cam = config.camera("table")
    k = camera_intrinsics(cam.color.width, cam.color.height, cam.intrinsics)
    sim = task_env("grasp", "none", obs_mode="rgbd", image_size=(w, h), **camera_opts)
    state = task_env("grasp", "none", obs_mode="state")
    realities = {"pybullet": Reality("grasp", None, seed=seed), "mujoco": MujocoReality("grasp", None, seed=seed)}
    renderers = {
        "pybullet": _pybullet_renderer(realities["pybullet"], cam.depth_range),
        "mujoco": coarse_renderer(realities["mujoco"].renderer("table", cam.depth_range), mujoco_divisor),
    }
    variants = ["sim", "pybullet", "mujoco", "mujoco_color+pybullet_depth", "pybullet_color+mujoco_depth"]
    distance: dict[str, list[float]] = {v: [] for v in variants}
    gripper_agrees: dict[str, list[bool]] = {v: [] for v in variants}
    colour: dict[str, list[np.ndarray]] = {"sim": [], "pybullet": [], "mujoco": []}
    depth_gap, zeros, colour_gap = [], {"pybullet": [], "mujoco": []}, []
    started = time.perf_counter()
    try:
        for i in range(scenes):
            s = seed + i
            obs_sim, _ = sim.reset(seed=s)
            obs_state, _ = state.reset(seed=s)
            joints = np.asarray(sim.unwrapped.robot.read().position, dtype=float)
            target = np.asarray(teacher.act(obs_state), dtype=float)
            seen = {"sim": (obs_sim["rgb"], obs_sim["depth"])}
            for engine, reality in realities.items():
                reality.new_episode(s)
                _set_arm(reality, engine, joints)
                frame = renderers[engine](k, np.zeros(3))
                rgb, depth = reduce_frame(frame.color, frame.depth, (w, h), crop)
                seen[engine] = (rgb, depth.reshape(h, w, 1))
            (c_pb, d_pb), (c_mj, d_mj) = seen["pybullet"], seen["mujoco"]
            valid = (d_pb > 0) & (d_mj > 0)
            depth_gap.append(float(np.median(np.abs(d_mj - d_pb)[valid])))
            colour_gap.append(float(np.mean(np.abs(c_mj.astype(float) - c_pb.astype(float)))))
            for engine in zeros:
                zeros[engine].append(float(np.mean(seen[engine][1] == 0)))
            seen["mujoco_color+pybullet_depth"] = (seen["mujoco"][0], seen["pybullet"][1])
            seen["pybullet_color+mujoco_depth"] = (seen["pybullet"][0], seen["mujoco"][1])
            for name, (rgb, depth) in seen.items():
                action = np.asarray(student.act({"rgb": rgb, "depth": depth, "proprio": obs_sim["proprio"]}))
                distance[name].append(float(np.linalg.norm(action - target)))
                gripper_agrees[name].append(bool(np.sign(action[-1]) == np.sign(target[-1])))
                if name in colour:
                    colour[name].append(rgb.reshape(-1, 3).mean(0))
    finally:
        for reality in realities.values():
            reality.close()
        sim.close()
        state.close()
    return {
        "scenes": scenes,
        "seed": seed,
        "student": student_path,
        "teacher": teacher_path,
        "mujoco_divisor": mujoco_divisor,
        "wall_s": round(time.perf_counter() - started, 1),
        "action_distance_to_teacher": {
            v: {
                "mean": round(float(np.mean(d)), 4),
                "median": round(float(np.median(d)), 4),
                "gripper_sign_agrees": round(float(np.mean(gripper_agrees[v])), 3),
            }
            for v, d in distance.items()
        },
        "mean_rgb_in_crop": {e: [round(float(x), 1) for x in np.mean(c, axis=0)] for e, c in colour.items()},
        "mujoco_vs_pybullet": {
            "depth_median_abs_diff_m": round(float(np.mean(depth_gap)), 4),
            "colour_mean_abs_diff_levels": round(float(np.mean(colour_gap)), 1),
            "depth_zero_share": {e: round(float(np.mean(z)), 4) for e, z in zeros.items()},
        },
    }


def main() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=3_000_000)
    parser.add_argument("--student", default="policies/bundles/grasp_rgbd")
    parser.add_argument("--teacher", default="policies/bundles/grasp_state")
    parser.add_argument("--mujoco-divisor", type=int, default=1, help="draw MuJoCo frames at 1/N resolution")
    parser.add_argument("--out")
    args = parser.parse_args()
    emit(measure(args.scenes, args.seed, args.student, args.teacher, args.mujoco_divisor), args.out)


if __name__ == "__main__":
    main()

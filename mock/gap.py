"""The sim-to-sim gap between the two reality engines (``s2r gap``): both worlds of a mock robot's task, built for
the same episode seed, are driven with the same register-level command sequences (what a host writes to the
servos) and compared: joint tracking (RMS difference per joint, and each engine's RMS error to the command), the
object's motion in a scripted grasp (lift, finger contacts, slip against the fingers), the base's path, and the
camera's images side by side (per-channel statistics, valid depth). A plot shows the traces and the two frames.

Sequences (``dt`` = 10 ms, after a hold at the start pose): an arm gets a 0.3 rad step on each joint in turn,
a 0.5 Hz sinusoid on every joint, and an open-loop grasp (above the object, down, close, lift, from its sampled
pose); a base gets wheel-velocity steps and a turn-and-drive sinusoid.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from real.dynamixel.control_table import OperatingMode
from real.dynamixel.emulator import EmulatedServo
from robot.description import HardwareConfig

DT = 0.01  # s between commands and readings


def _servos(config: HardwareConfig) -> dict[int, EmulatedServo]:
    servos = {m.id: EmulatedServo(m.id, m.model) for m in config.motors}
    for m in config.motors:
        if m.mode == "velocity":
            servos[m.id].set("operating_mode", int(OperatingMode.VELOCITY))
        servos[m.id].set("torque_enable", 1)
    return servos


def command(config: HardwareConfig, servos: dict[int, EmulatedServo], targets: np.ndarray) -> None:
    """Write joint targets (config order, SI; velocities for velocity-mode joints) as goal registers, converted as
    the host's motor bus converts them (direction, offset, scale)."""
    for m, target in zip(config.motors, targets, strict=True):
        s = servos[m.id]
        if m.mode == "velocity":
            s.set("goal_velocity", s.model.register("goal_velocity").from_si(m.direction * target / m.scale))
        else:
            angle = m.direction * target / m.scale + m.offset
            s.set("goal_position", s.model.register("goal_position").from_si(angle))


class EngineRun:
    """One engine's world for the comparison: a :class:`mock.reality.Reality` or :class:`mock.mujoco_reality.
    MujocoReality` and its servos' registers."""

    def __init__(self, engine: str, task: str, seed: int) -> None:
        if engine == "mujoco":
            from mock.mujoco_reality import MujocoReality

            self.world: Any = MujocoReality(task, seed=seed)
        else:
            from mock.reality import Reality

            self.world = Reality(task, seed=seed)
        self.engine = engine
        self.config = self.world.core.config
        self.servos = _servos(self.config)
        self._renderers: dict[str, Any] = {}

    def joints(self) -> np.ndarray:
        if self.engine == "mujoco":
            return np.asarray(self.world.joints().position, dtype=float)
        return np.asarray(self.world.core.robot.read().position, dtype=float)

    def base_pose(self) -> np.ndarray:
        return self.world.robot_pose() if self.engine == "mujoco" else self.world.core.robot_pose()

    def object_pose(self) -> np.ndarray:
        return np.asarray(self.world.privileged()[:3], dtype=float)

    def run(self, targets: np.ndarray) -> dict[str, np.ndarray]:
        """Apply each row of ``targets`` for ``DT``; the joints (and object or base pose) after each."""
        joints, extra, contacts = [], [], []
        for row in targets:
            command(self.config, self.servos, row)
            self.world.step(DT, self.servos)
            joints.append(self.joints())
            if self.world.task == "grasp":
                priv = self.world.privileged()
                extra.append(priv[:3])
                contacts.append(priv[11:13])
            else:
                extra.append(self.base_pose())
        out = {"joints": np.array(joints), "pose": np.array(extra)}
        if contacts:
            out["contacts"] = np.array(contacts)
        return out

    def frame(self, camera: str, divisor: int | None = None) -> Any:
        """One camera frame of the world as it is (color uint8, metric depth), rendered as the mock camera renders
        it; PyBullet's at 1/``divisor`` of the stream's resolution when given (None: the mock camera's)."""
        from robot.intrinsics import camera_intrinsics

        cam = self.config.camera(camera)
        k = camera_intrinsics(cam.color.width, cam.color.height, cam.intrinsics)
        if self.engine == "mujoco":
            if camera not in self._renderers:  # one GL context per camera, kept (closed with the world)
                self._renderers[camera] = self.world.renderer(camera, cam.depth_range)
            return self._renderers[camera](k, np.zeros(3))
        from mock.simulated_realsense import PYBULLET_RENDER_DIVISOR, coarse_renderer
        from sim.camera_model import render

        core = self.world.core  # rendered in this process, as the mock camera's render replica does it

        def draw(intrinsics: Any, offset: np.ndarray) -> Any:
            position, rotation = core.camera_pose()
            shadow, light = core._shadow, core._light
            return render(core.client, intrinsics, position, rotation, cam.depth_range, shadow=shadow, light=light)

        return coarse_renderer(draw, divisor or PYBULLET_RENDER_DIVISOR)(k, np.zeros(3))

    def close(self) -> None:
        self.world.close()


def arm_sequences(config: HardwareConfig, object_position: np.ndarray) -> dict[str, np.ndarray]:
    """Joint targets per 10 ms for the step, sinusoid and grasp sequences, each starting at the task's start pose."""
    from robot.kinematics import ArmKinematics
    from robot.tasks.grasp import GraspTask

    task = GraspTask(config)
    start = task.start_pose()
    hold = np.repeat(start[None], 100, axis=0)
    steps = [hold]
    for j in range(len(start) - 1):  # the arm's joints; the gripper gets its own in the grasp
        q = start.copy()
        q[j] += 0.3
        steps.append(np.repeat(q[None], 100, axis=0))
    t = np.arange(400) * DT
    sine = start[None] + 0.2 * np.sin(2 * math.pi * 0.5 * t)[:, None] * np.r_[np.ones(len(start) - 1), 0.0]
    kin, g = ArmKinematics(config), task.gripper_index
    above, at = object_position + [0, 0, 0.05], object_position.copy()
    at[2] = max(0.006, object_position[2] - 0.004)
    phases = []
    for tool, grip, n in ((above, -1.0, 150), (at, -1.0, 100), (at, 1.0, 100), (at + [0, 0, 0.09], 1.0, 150)):
        q = kin.inverse(tool, math.pi / 2, start)
        q[g] = task.gripper_target(grip)
        phases.append(np.repeat(q[None], n, axis=0))
    return {"steps": np.vstack(steps), "sine": np.vstack([hold, sine]), "grasp": np.vstack([hold, *phases])}


def base_sequences(config: HardwareConfig) -> dict[str, np.ndarray]:
    """Wheel velocity targets (rad/s, config order) per 10 ms: steps, then a turn-and-drive sinusoid."""
    n = len(config.motors)
    steps = np.vstack([np.full((100, n), v) for v in (0.0, 2.0, 4.0, 0.0)])
    t = np.arange(400) * DT
    left, right = config.joint_names.index(config.base.left_wheel), config.joint_names.index(config.base.right_wheel)
    sine = np.zeros((400, n))
    sine[:, left] = 2.0 + 1.5 * np.sin(2 * math.pi * 0.5 * t)
    sine[:, right] = 2.0 - 1.5 * np.sin(2 * math.pi * 0.5 * t)
    return {"steps": steps, "sine": sine}


def _image_stats(frame: Any) -> dict[str, Any]:
    valid = frame.depth > 0
    return {
        "rgb_mean": [round(float(c), 1) for c in frame.color.reshape(-1, 3).mean(axis=0)],
        "rgb_std": [round(float(c), 1) for c in frame.color.reshape(-1, 3).std(axis=0)],
        "depth_valid": round(float(valid.mean()), 4),
        "depth_mean_m": round(float(frame.depth[valid].mean()), 4) if valid.any() else None,
    }


def gap_report(config: HardwareConfig, seed: int = 0, plot: str | Path | None = None) -> dict[str, Any]:
    """Both engines driven alike for ``config``'s mock task (scene of ``seed``): the figures described above."""
    task = config.mock.task
    runs = {e: EngineRun(e, task, seed) for e in ("pybullet", "mujoco")}
    report: dict[str, Any] = {"robot": config.name, "task": task, "seed": seed, "dt_s": DT, "sequences": {}}
    traces: dict[str, dict[str, Any]] = {}
    try:
        first = runs["pybullet"]
        seqs = arm_sequences(config, first.object_pose()) if task == "grasp" else base_sequences(config)
        for name, targets in seqs.items():
            for run in runs.values():
                run.world.new_episode(seed)
                run.servos = _servos(config)
            results = {e: r.run(targets) for e, r in runs.items()}
            traces[name] = {"targets": targets, **results}
            report["sequences"][name] = _compare(config, task, targets, results)
        if config.cameras:
            cam = config.cameras[0].name
            for run in runs.values():
                run.world.new_episode(seed)
            frames = {e: r.frame(cam) for e, r in runs.items()}
            report["camera"] = {"name": cam, **{e: _image_stats(f) for e, f in frames.items()}}
            traces["frames"] = frames
    finally:
        for run in runs.values():
            run.close()
    if plot is not None:
        from mock.gap_plot import plot_gap

        plot_gap(config, traces, report, plot)
        report["plot"] = str(plot)
    return report


def _compare(config: HardwareConfig, task: str, targets: np.ndarray, results: dict[str, dict]) -> dict[str, Any]:
    a, b = results["pybullet"], results["mujoco"]
    names = config.joint_names
    out: dict[str, Any] = {"duration_s": round(len(targets) * DT, 2)}
    if task == "grasp":
        diff = a["joints"] - b["joints"]
        out["joint_rms_difference"] = dict(zip(names, np.sqrt((diff**2).mean(axis=0)).round(4).tolist(), strict=True))
        for e, r in results.items():
            err = r["joints"] - targets
            out[f"{e}_rms_error_to_command"] = dict(
                zip(names, np.sqrt((err[100:] ** 2).mean(axis=0)).round(4).tolist(), strict=True)
            )
        for e, r in results.items():
            lift = r["pose"][:, 2] - r["pose"][0, 2]
            touching = r["contacts"].any(axis=1)
            out[f"{e}_object"] = {
                "max_lift_m": round(float(lift.max()), 4),
                "moved_m": round(float(np.linalg.norm(r["pose"][-1] - r["pose"][0])), 4),
                "contact_s": round(float(touching.sum() * DT), 2),
                "contact_events": int(np.count_nonzero(np.diff(touching.astype(int)) == 1)),
                "sag_after_lift_m": round(float(lift.max() - lift[-1]), 4),  # slip in the fingers once lifted
            }
    else:
        pa, pb = a["pose"], b["pose"]
        out["path_difference_m"] = round(float(np.linalg.norm(pa[-1, :2] - pb[-1, :2])), 4)
        out["yaw_difference_rad"] = round(float(abs(math.remainder(pa[-1, 2] - pb[-1, 2], 2 * math.pi))), 4)
        for e, r in results.items():
            out[f"{e}_travel_m"] = round(float(np.linalg.norm(np.diff(r["pose"][:, :2], axis=0), axis=1).sum()), 4)
    return out


def format_gap(report: dict[str, Any]) -> str:
    """The report as a few lines for a terminal."""
    lines = [f"{report['robot']}: PyBullet vs MuJoCo, the same servo commands (scene seed {report['seed']})"]
    for name, seq in report["sequences"].items():
        if "joint_rms_difference" in seq:
            rms = ", ".join(f"{j} {v * 1e3:.1f}" for j, v in seq["joint_rms_difference"].items())
            lines.append(f"  {name} ({seq['duration_s']} s): joint RMS difference (mrad, mm) {rms}")
            for e in ("pybullet", "mujoco"):
                o = seq[f"{e}_object"]
                lines.append(
                    f"    {e}: object lifted {o['max_lift_m'] * 100:.1f} cm, fingers on it {o['contact_s']} s "
                    f"({o['contact_events']} contact events), slipped {o['sag_after_lift_m'] * 1e3:.1f} mm once lifted"
                )
        else:
            lines.append(
                f"  {name} ({seq['duration_s']} s): paths {seq['path_difference_m'] * 100:.1f} cm apart, headings "
                f"{math.degrees(seq['yaw_difference_rad']):.1f} deg; travelled {seq['pybullet_travel_m']:.2f} m "
                f"(PyBullet) vs {seq['mujoco_travel_m']:.2f} m (MuJoCo)"
            )
    if "camera" in report:
        c = report["camera"]
        for e in ("pybullet", "mujoco"):
            lines.append(
                f"  camera {c['name']} {e}: RGB mean {c[e]['rgb_mean']} std {c[e]['rgb_std']}, "
                f"valid depth {c[e]['depth_valid']:.1%}"
            )
    if "plot" in report:
        lines.append(f"  plot {report['plot']}")
    return "\n".join(lines)

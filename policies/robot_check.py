"""Whether a robot is the one a policy was trained for, after calibration has measured it.

A bundle records its robot's signature (:func:`robot.spec.robot_signature`). What makes a policy wrong must
match exactly: joint names and order, the robot's kind, rate and geometry, camera names, parents and stream
sizes. What calibration measures is judged against what the policy was trained for instead (``s2r calibrate
hand-eye --save`` writes the camera mount, ``s2r calibrate intrinsics --robot`` its intrinsics, ``s2r calibrate
motors`` the joint limits):

- a camera policy's **camera mount**: the offset from the trained mount, in the mount's frame, against the
  randomized ``camera.position_offset`` and ``camera.rotation_offset`` ranges it was trained under;
- its **intrinsics** (the color stream's fx, fy, cx, cy): against ``camera.focal_scale`` and
  ``camera.principal_offset`` about the trained camera model;
- **joint limits**: a calibrated range may be narrower than the trained one (the policy's inputs and actions do not
  depend on it; the safety filter clamps to it), not wider (the policy would reach joint angles the simulator
  never let it reach).

Accepted values are reported with how much of the trained range they use; past :data:`EDGE` of it, with a warning;
outside it, the bundle is refused naming the value and the range. A state policy does not see its camera: its
mount and intrinsics are not judged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot.description import HardwareConfig
from robot.intrinsics import d435_color_intrinsics
from robot.kinematics import UnreachableError
from robot.spec import BundleError, robot_signature, signature_differences
from robot.tasks import task_class

#: Share of a trained range past which an accepted value is reported as a warning.
EDGE = 0.8
#: How far (rad) a calibrated joint limit may reach beyond the trained one (encoder resolution and rounding).
LIMIT_SLACK_RAD = 0.01
#: Offsets this small are the trained value (rounding in the recorded signature).
NEGLIGIBLE = 1e-6
AXES = ("x", "y", "z")
ANGLES = ("roll", "pitch", "yaw")


@dataclass(frozen=True)
class Judged:
    """One calibrated quantity: its name, its offset from the trained value and the trained offset range."""

    name: str
    offset: float
    low: float
    high: float
    unit: str

    @property
    def zero(self) -> bool:
        return abs(self.offset) < NEGLIGIBLE

    @property
    def inside(self) -> bool:
        return self.zero or self.low - NEGLIGIBLE <= self.offset <= self.high + NEGLIGIBLE

    @property
    def used(self) -> float:
        """Share of the range on the offset's side used (0: the trained value, 1: the edge)."""
        edge = self.high if self.offset >= 0 else self.low
        return abs(self.offset / edge) if edge else (0.0 if self.offset == 0 else float("inf"))

    def describe(self) -> str:
        return (
            f"{self.name} {self.offset:+.4g} {self.unit} from the trained value "
            f"(trained {self.low:+.4g} .. {self.high:+.4g} {self.unit}; {100 * self.used:.0f} % of the way)"
        )


def _tolerant(signature: dict[str, Any]) -> dict[str, Any]:
    """The signature without what calibration measures (judged separately)."""
    sig = copy.deepcopy(signature)
    sig.pop("limits", None)
    for cam in sig.get("cameras", []):
        cam.pop("mount", None)
        cam.pop("intrinsics", None)
    return sig


def _term_range(meta: dict[str, Any], target: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The offset range (low, high per component) a bundle's randomization drew ``target`` from, at its strength;
    zeros when it did not randomize it."""
    rand = (meta.get("randomization") or {}).get("config") or {}
    strength = float(rand.get("strength", 1.0))
    for term in rand.get("terms", []):
        d = term.get("distribution", {})
        if term.get("target") == target and d.get("type") == "uniform":
            centre = 1.0 if term.get("operation") == "scale" else 0.0
            low = centre + strength * (np.broadcast_to(np.asarray(d["low"], float), size) - centre)
            high = centre + strength * (np.broadcast_to(np.asarray(d["high"], float), size) - centre)
            return low - centre, high - centre
    return np.zeros(size), np.zeros(size)


def _camera_judgements(meta: dict[str, Any], want: dict[str, Any], got: dict[str, Any]) -> list[Judged]:
    name = want["name"]
    (xyz0, rpy0), (xyz1, rpy1) = want["mount"], got["mount"]
    R0 = Rotation.from_euler("xyz", rpy0)
    offset = R0.inv().apply(np.subtract(xyz1, xyz0))  # in the mount's frame, as the simulator offsets it
    turn = (R0.inv() * Rotation.from_euler("xyz", rpy1)).as_euler("xyz")
    out = []
    low, high = _term_range(meta, "camera.position_offset", 3)
    out += [
        Judged(f"camera {name} mount {a}", float(v), lo, hi, "m")
        for a, v, lo, hi in zip(AXES, offset, low, high, strict=True)
    ]
    low, high = _term_range(meta, "camera.rotation_offset", 3)
    out += [
        Judged(f"camera {name} mount {a}", float(v), lo, hi, "rad")
        for a, v, lo, hi in zip(ANGLES, turn, low, high, strict=True)
    ]
    w, h = want["color"]
    trained = want.get("intrinsics") or list(_pinhole(d435_color_intrinsics(w, h)))
    fx0, fy0, cx0, cy0 = trained
    fx1, fy1, cx1, cy1 = got["intrinsics"]
    low, high = _term_range(meta, "camera.focal_scale", 1)
    out += [
        Judged(f"camera {name} {k}", v / f0 - 1.0, low[0], high[0], "x")
        for k, v, f0 in (("fx", fx1, fx0), ("fy", fy1, fy0))
    ]
    low, high = _term_range(meta, "camera.principal_offset", 2)
    out += [
        Judged(f"camera {name} {k}", v - c0, lo, hi, "px")
        for k, v, c0, lo, hi in (("cx", cx1, cx0, low[0], high[0]), ("cy", cy1, cy0, low[1], high[1]))
    ]
    return out


def _pinhole(k: Any) -> tuple[float, float, float, float]:
    return k.fx, k.fy, k.cx, k.cy


def _limit_judgements(want: dict[str, Any], got: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(refusals, report lines) of the joint limits."""
    refused, report = [], []
    for joint, (lo0, hi0), (lo1, hi1) in zip(want["joints"], want["limits"], got["limits"], strict=True):
        if lo1 < lo0 - LIMIT_SLACK_RAD or hi1 > hi0 + LIMIT_SLACK_RAD:
            refused.append(
                f"joint {joint} limits [{lo1:.3f}, {hi1:.3f}] reach beyond the trained [{lo0:.3f}, {hi0:.3f}] rad"
            )
        elif (lo1, hi1) != (lo0, hi0):
            kept = (min(hi1, hi0) - max(lo1, lo0)) / (hi0 - lo0) if hi0 > lo0 else 1.0
            line = f"joint {joint} limits [{lo1:.3f}, {hi1:.3f}] keep {100 * kept:.0f} % of the trained range"
            report.append(("warning: " if kept < EDGE else "") + line)
    return refused, report


def _start_pose_refusals(task: str, config: HardwareConfig, trained_limits: list[list[float]]) -> list[str]:
    """Why the task's first pose, as the policy trained from it (with the trained joint limits), cannot be taken
    within ``config``'s limits (calibrated limits can exclude it while keeping most of the trained range, and an arm
    that then starts from another pose starts where the policy never did), or nothing."""
    motors = [
        m.model_copy(update={"limits": m.limits.model_copy(update={"lower": lo, "upper": hi})})
        for m, (lo, hi) in zip(config.motors, trained_limits, strict=True)
    ]
    try:
        trained = task_class(task)(config.model_copy(update={"motors": motors})).start_pose()
        here = task_class(task)(config).start_pose()
    except UnreachableError as exc:
        return [f"the {task} task's start pose is outside its joint limits ({exc})"]
    if trained is not None and (here is None or not np.allclose(here, trained, atol=1e-6)):
        limits = [[m.limits.lower, m.limits.upper] for m in config.motors]
        return [
            f"the {task} task's start pose is outside its joint limits (the trained one, joints "
            f"{np.round(trained, 3).tolist()}, is not within {limits})"
        ]
    return []


def check_robot(meta: dict[str, Any], path: Path | None, config: HardwareConfig) -> list[str]:
    """Raise :class:`BundleError` naming what differs when ``config`` is not the robot ``meta`` was trained for, or
    a calibrated value lies outside what it was trained for; else the report lines of the calibrated values (a
    ``warning:`` prefix near the edge of their range)."""
    want, got = meta["robot"]["signature"], robot_signature(config)
    diffs = signature_differences(_tolerant(want), _tolerant(got))
    if diffs:
        raise BundleError(
            f"bundle {path} was trained for robot {meta['robot']['name']!r}, and {config.name!r} "
            "differs: " + "; ".join(diffs[:8]) + (f"; ... ({len(diffs)} differences)" if len(diffs) > 8 else "")
        )
    refused, report = _limit_judgements(want, got)
    refused += _start_pose_refusals(meta["task"], config, want["limits"])
    if "rgb" in meta["observation"]["keys"]:
        for cam_want, cam_got in zip(want["cameras"], got["cameras"], strict=True):
            judged = _camera_judgements(meta, cam_want, cam_got)
            if any(not j.inside and " mount " in j.name for j in judged):
                shift = float(np.linalg.norm(np.subtract(cam_got["mount"][0], cam_want["mount"][0])))
                refused.append(
                    f"camera {cam_want['name']} is mounted {shift:.3f} m from the trained {cam_want['mount'][0]} "
                    f"(in {cam_want['parent']}), per axis of the mount"
                )
            for j in judged:
                if not j.inside:
                    refused.append(j.describe())
                elif not j.zero:
                    report.append(("warning: " if j.used > EDGE else "") + j.describe())
    if refused:
        raise BundleError(
            f"bundle {path}: {config.name!r} is calibrated outside what the policy was trained for: "
            + "; ".join(refused)
        )
    return report

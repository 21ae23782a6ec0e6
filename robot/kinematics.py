"""Forward and inverse kinematics of a yaw + three-pitch arm (OpenManipulator-X, SO-101), from its URDF.

The joint origins are read from the same URDF the simulator loads, so the simulated and the hardware robot share
one kinematic model. The arm has a base yaw joint (axis z or -z) followed by three pitch joints (axis y or -y) whose
origins lie in the arm's vertical plane, then the end-effector link: fixed to the last pitch link, or behind roll
joints about the tool axis (x or -x, the SO-101's wrist_roll) with origins on that axis, which turn the gripper
without moving the tool point. IK is closed-form: given a tool position and the tool pitch (angle of the tool x axis
below the horizontal), it returns the elbow-up solution; roll joints keep their seed values.

Units: m and rad; positions in the arm's base frame (the URDF root link); quaternions (x, y, z, w).
Closed form rather than PyBullet's generic IK: see docs/design-notes.md.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from robot.description import HardwareConfig, WorkspaceLimits, urdf_path


class UnreachableError(ValueError):
    """The requested tool pose is outside the arm's workspace."""


@dataclass(frozen=True)
class _Chain:
    base: tuple[float, float, float]  # yaw joint origin in the root link (x, y, z)
    shoulder: tuple[float, float]  # pitch joint 1 origin in the yaw link (x, z)
    upper: tuple[float, float]  # pitch joint 2 origin in the pitch-1 link (x, z)
    fore: tuple[float, float]  # pitch joint 3 origin in the pitch-2 link (x, z)
    tool: tuple[float, float]  # end-effector origin in the pitch-3 link (x, z)
    links: tuple[str, str, str]  # the links whose origins are the elbow, the wrist and the end effector
    signs: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # +1 for axes z, y, y, y; -1 for -z, -y


def _read_chain(config: HardwareConfig) -> _Chain:
    root = ET.parse(urdf_path(config)).getroot()
    joints = {j.get("name"): j for j in root.iter("joint")}
    joint_to = {j.find("child").get("link"): j for j in root.iter("joint")}

    def origin(j: ET.Element) -> np.ndarray:
        o = j.find("origin")
        xyz = np.array([float(v) for v in o.get("xyz", "0 0 0").split()])
        rpy = [float(v) for v in o.get("rpy", "0 0 0").split()]
        if any(abs(a) > 1e-9 for a in rpy):
            raise ValueError(f"{config.sim.urdf}: joint {j.get('name')} has a rotated origin; not a planar chain")
        return xyz

    names = config.joint_names[:4]
    js = [joints[n] for n in names]
    axes = [tuple(float(v) for v in j.find("axis").get("xyz").split()) for j in js]
    expected = [(0, 0, 1), (0, 1, 0), (0, 1, 0), (0, 1, 0)]
    signs = []
    for axis, want in zip(axes, expected, strict=True):
        if axis not in (want, tuple(-v for v in want)):
            raise ValueError(f"{config.sim.urdf}: expected joint axes ±z, ±y, ±y, ±y for {names}, got {axes}")
        signs.append(float(sum(a * w for a, w in zip(axis, want, strict=True))))
    # From the last pitch link to the end-effector link: fixed joints, or roll joints about the tool axis.
    last_link = js[3].find("child").get("link")
    path, link = [], config.arm.ee_link
    while link != last_link:
        j = joint_to.get(link)
        if j is None:
            raise ValueError(
                f"{config.sim.urdf}: {config.arm.ee_link} must be fixed to {last_link} (or behind roll joints)"
            )
        path.insert(0, j)
        link = j.find("parent").get("link")
    t, behind_roll = np.zeros(3), False
    for j in path:  # from the last pitch link outward
        axis = j.find("axis")
        if j.get("type") != "fixed" and (axis is None or [abs(float(v)) for v in axis.get("xyz").split()] != [1, 0, 0]):
            raise ValueError(f"{config.sim.urdf}: joint {j.get('name')} between {last_link} and the tool is not a roll")
        off = origin(j)
        if behind_roll and (abs(off[1]) > 1e-9 or abs(off[2]) > 1e-9):
            raise ValueError(f"{config.sim.urdf}: joint {j.get('name')} leaves the tool axis behind a roll joint")
        behind_roll |= j.get("type") != "fixed"
        t = t + off
    o = [origin(j) for j in js]
    for k in (1, 2, 3):
        if abs(o[k][1]) > 1e-9:
            raise ValueError(f"{config.sim.urdf}: joint {names[k]} origin leaves the arm plane (y != 0)")

    def xz(v: np.ndarray) -> tuple[float, float]:
        return float(v[0]), float(v[2])

    links = (js[2].find("child").get("link"), last_link, config.arm.ee_link)
    return _Chain(
        base=tuple(float(x) for x in o[0]),
        shoulder=xz(o[1]),
        upper=xz(o[2]),
        fore=xz(o[3]),
        tool=xz(t),
        links=links,
        signs=tuple(signs),
    )


class ArmKinematics:
    """Closed-form FK / IK for the first four joints of ``config``; other joints (the gripper) pass through."""

    def __init__(self, config: HardwareConfig) -> None:
        if config.arm is None:
            raise ValueError(f"{config.name}: kinematics needs an arm config")
        self.config = config
        self.chain = _read_chain(config)
        self.lower = np.array([m.limits.lower for m in config.motors])
        self.upper = np.array([m.limits.upper for m in config.motors])
        c = self.chain
        self._l1 = float(np.hypot(*c.upper))
        self._l2 = float(np.hypot(*c.fore))
        # Angle of the upper-arm vector from the link x axis toward z, and of the forearm.
        self._a1 = math.atan2(c.upper[1], c.upper[0])
        self._a2 = math.atan2(c.fore[1], c.fore[0])
        if abs(c.tool[1]) > 1e-9:
            raise ValueError(f"{config.sim.urdf}: the end effector must lie on the last link's x axis")
        self._tool_len = float(c.tool[0])
        self._lower4 = [float(x) for x in self.lower[:4]]
        self._upper4 = [float(x) for x in self.upper[:4]]

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, float]:
        """Tool position (m) and tool pitch (rad, positive below the horizontal) for joint positions ``q``."""
        r, z = self.planar_points(q)[2]
        sg = self.chain.signs
        yaw = sg[0] * float(q[0])
        b = self.chain.base
        pos = np.array([b[0] + r * math.cos(yaw), b[1] + r * math.sin(yaw), z])
        return pos, sg[1] * float(q[1]) + sg[2] * float(q[2]) + sg[3] * float(q[3])

    def planar_points(self, q: np.ndarray) -> list[tuple[float, float]]:
        """``(r, z)`` of the elbow, the wrist and the end effector (the origins of ``chain.links``) for joint
        positions ``q``, in m: ``r`` along the arm's vertical plane from the yaw axis (negative behind it, so
        ``abs(r)`` is the distance from the axis), ``z`` the height in the base frame. Neither depends on the yaw."""
        c = self.chain
        q2, q3, q4 = (c.signs[k] * float(q[k]) for k in (1, 2, 3))
        r, z = c.shoulder
        z += c.base[2]
        points = []
        for vec, angle in ((c.upper, q2), (c.fore, q2 + q3), (c.tool, q2 + q3 + q4)):
            ca, sa = math.cos(angle), math.sin(angle)
            r += ca * vec[0] + sa * vec[1]
            z += -sa * vec[0] + ca * vec[1]
            points.append((r, z))
        return points

    def inverse(self, position: np.ndarray, pitch: float, q_seed: np.ndarray) -> np.ndarray:
        """Joint positions (config order) putting the tool at ``position`` with ``pitch``; elbow up.

        Raises :class:`UnreachableError` when the pose is out of reach or outside the joint limits. Joints after
        the fourth keep their ``q_seed`` value.
        """
        c = self.chain
        dx, dy, dz = (float(position[i]) - c.base[i] for i in range(3))
        yaw = math.atan2(dy, dx)
        r = math.hypot(dx, dy)
        # Wrist (pitch joint 3) position in the arm plane, relative to the shoulder joint.
        wr = r - self._tool_len * math.cos(pitch) - c.shoulder[0]
        wz = dz + self._tool_len * math.sin(pitch) - c.shoulder[1]
        l1, l2 = self._l1, self._l2
        cos_g = (wr * wr + wz * wz - l1 * l1 - l2 * l2) / (2 * l1 * l2)
        if not -1.0 <= cos_g <= 1.0:
            raise UnreachableError(f"target {np.round(position, 4).tolist()} pitch {pitch:.2f} is out of reach")
        g = math.acos(cos_g)  # elbow-up: forearm turned clockwise from the upper arm
        beta1 = math.atan2(wz, wr) + math.atan2(l2 * math.sin(g), l1 + l2 * math.cos(g))
        q2 = self._a1 - beta1
        q3 = (self._a2 - (beta1 - g)) - q2
        q4 = pitch - q2 - q3
        sol = [sg * ((a + math.pi) % (2 * math.pi) - math.pi) for sg, a in zip(c.signs, (yaw, q2, q3, q4), strict=True)]
        lo, hi = self._lower4, self._upper4
        if any(a < lo[i] - 1e-9 or a > hi[i] + 1e-9 for i, a in enumerate(sol)):
            raise UnreachableError(
                f"target {np.round(position, 4).tolist()} needs joints {np.round(sol, 3).tolist()}, "
                f"outside limits {lo}..{hi}"
            )
        q = np.array(q_seed, dtype=float)
        q[:4] = sol
        return q


def workspace_violation(kin: ArmKinematics, workspace: WorkspaceLimits, q: np.ndarray) -> float:
    """How far joint positions ``q`` put the arm outside ``workspace`` (m, summed over the checked points of
    :meth:`ArmKinematics.planar_points`: below ``min_z`` and beyond ``max_radius``); 0 inside."""
    total = 0.0
    for r, z in kin.planar_points(q):
        total += max(0.0, workspace.min_z - z) + max(0.0, abs(r) - workspace.max_radius)
    return total


def describe_workspace_violation(kin: ArmKinematics, workspace: WorkspaceLimits, q: np.ndarray) -> str:
    """Which checked points of pose ``q`` are outside ``workspace``, and where (m); "inside" when none."""
    ws, parts = workspace, []
    for link, (r, z) in zip(kin.chain.links, kin.planar_points(q), strict=True):
        if z < ws.min_z:
            parts.append(f"{link} at z {z:.3f} m, below min_z {ws.min_z:g} m")
        if abs(r) > ws.max_radius:
            parts.append(f"{link} {abs(r):.3f} m from the yaw axis, beyond max_radius {ws.max_radius:g} m")
    return "; ".join(parts) or "inside"


def rest_pose_workspace_problem(config: HardwareConfig, kin: ArmKinematics | None = None) -> str:
    """Why the arm's rest pose is outside ``safety.workspace`` (the robot parks there through the safety filter
    that enforces it), or "" when it is inside or there is no workspace. ``kin``: the arm's kinematics when the
    caller has them (else read from the URDF). KeyError names a joint or link the URDF lacks."""
    workspace = config.safety.workspace
    if workspace is None:
        return ""
    kin = kin or ArmKinematics(config)
    rest = np.array([config.arm.rest[j] for j in config.joint_names])
    if workspace_violation(kin, workspace, rest) > 0:
        where = describe_workspace_violation(kin, workspace, rest)
        return f"the rest pose (arm.rest) is outside safety.workspace: {where}; the robot parks there"
    return ""

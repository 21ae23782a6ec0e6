"""MuJoCo models of the task scenes, generated from the robot descriptions the PyBullet side uses: the robot is
the config's URDF as MuJoCo's own URDF importer reads it, with what MuJoCo needs added in code (a motor per
configured joint, the gripper's mimic joint as an equality, a free joint for a driving base, the camera and the
lights); the table, object, room and obstacles come from the scene the task sampled for the episode (sizes,
poses, kinds), never from a PyBullet world. Domain params (the task env's resolved targets, e.g.
``object.mass``) set the same physical quantities here; :data:`APPLIED_TARGETS` lists the ones this module applies.

Collision groups: robot geoms never touch each other (PyBullet loads the URDFs without self-collision) but touch
everything else.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering without a display (Mesa's EGL); read at import
import mujoco  # noqa: E402

from robot.description import HardwareConfig, urdf_path

ROBOT_GEOM = {"contype": 2, "conaffinity": 1}
SCENE_GEOM = {"contype": 1, "conaffinity": 3}
TIMESTEP = 0.002  # s: the MuJoCo reality's physics step (500 Hz), its own choice, not the simulator's 240 Hz
#: Time constant (s) of rigid constraints (a mimic's equality, the finger pads' contacts): two physics steps, the
#: stiffest MuJoCo integrates stably.
STIFF_TIMECONST_S = 2 * TIMESTEP
#: Reflected rotor inertia of a servo at its output (kg*m^2): a guess of the right order for X-series servos (the
#: default of :class:`sim.voltage_servo.VoltageServoParams`, which system identification refines).
SERVO_ARMATURE = 0.003


@dataclass(frozen=True)
class Box:
    """A static or free box or cylinder of the scene. ``size``: half extents (box) or (radius, half height)."""

    name: str
    kind: str  # "box", "cylinder" or "mesh"
    size: tuple[float, ...]
    pos: tuple[float, float, float]
    yaw: float = 0.0
    rgba: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 1.0)
    mesh: str | None = None  # an OBJ file (kind "mesh")
    mesh_scale: float = 1.0


def _quat_yaw(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]  # MuJoCo: w x y z


def _urdf_colors(path: os.PathLike) -> dict[str, list[float]]:
    """link -> RGBA of its first visual's material (the importer keeps collision shapes only)."""
    colors = {}
    for link in ET.parse(path).getroot().iter("link"):
        color = link.find("visual/material/color")
        if color is not None:
            colors[link.get("name")] = [float(x) for x in color.get("rgba").split()]
    return colors


def _urdf_friction(path: os.PathLike) -> dict[str, list[float]]:
    """link -> [sliding, torsional, rolling] friction from a link's ``<contact>`` element (PyBullet's URDF extension,
    e.g. the base's frictionless caster), which MuJoCo's importer ignores. The geoms of such a link get contact
    priority: MuJoCo uses the larger of two geoms' frictions unless one has priority, so a frictionless caster would
    otherwise drag with the floor's friction (PyBullet multiplies the two coefficients: 0 stays 0)."""
    out = {}
    for link in ET.parse(path).getroot().iter("link"):
        contact = link.find("contact")
        if contact is None:
            continue
        values = [contact.find(k) for k in ("lateral_friction", "spinning_friction", "rolling_friction")]
        defaults = (1.0, 0.005, 0.0001)  # MuJoCo's own
        out[link.get("name")] = [
            float(v.get("value")) if v is not None else d for v, d in zip(values, defaults, strict=True)
        ]
    return out


def obj_bounds(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned lower and upper corners of an OBJ mesh's vertices (file units, file frame)."""
    with open(path) as fh:
        verts = np.array([line.split()[1:4] for line in fh if line.startswith("v ")], dtype=float)
    return verts.min(axis=0), verts.max(axis=0)


def _root_link(path: os.PathLike) -> str:
    root = ET.parse(path).getroot()
    children = {j.find("child").get("link") for j in root.iter("joint")}
    return next(link.get("name") for link in root.iter("link") if link.get("name") not in children)


def robot_spec(config: HardwareConfig, params: dict[str, Any], urdf: os.PathLike | None = None) -> mujoco.MjSpec:
    """The robot of ``config`` from its URDF: a motor actuator (torque, N*m or N) per configured joint, the URDF's
    mimic joints as equalities, a free base for a driving robot, joint damping, servo armature and the robot's mass
    scale from ``params``."""
    from sim.pybullet_robot import urdf_mimic_joints

    path = urdf or urdf_path(config)
    spec = mujoco.MjSpec.from_file(str(path))
    spec.compiler.fusestatic = False
    spec.compiler.discardvisual = False  # URDF's default discards the textures and materials the scene adds
    spec.option.timestep = TIMESTEP
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    colors, friction = _urdf_colors(path), _urdf_friction(path)
    mass_scale = float(params.get("robot.mass_scale", params.get("base.mass_scale", 1.0)))
    inertia_scale = float(params.get("robot.inertia_scale", params.get("base.inertia_scale", 1.0)))
    root = _root_link(path)
    for body in spec.bodies:
        name = root if body.name == "world" else body.name  # a fixed base's root link is the world's
        if body.name != "world" and body.mass > 0:
            body.mass *= mass_scale
            k = mass_scale * inertia_scale  # the importer keeps a URDF's inertia tensor as fullinertia
            body.fullinertia = [i * k for i in body.fullinertia]
            body.inertia = [i * k for i in body.inertia]
        for g in body.geoms:
            g.contype, g.conaffinity = ROBOT_GEOM["contype"], ROBOT_GEOM["conaffinity"]
            if name in colors:
                g.rgba = colors[name]
            if name in friction:
                g.friction, g.priority = friction[name], 1
    if not config.sim.fixed_base:
        root = next(b for b in spec.worldbody.bodies)
        root.add_freejoint(name="base_free")
        root.pos = [0.0, 0.0, 0.0]
    damping = float(params.get("joint.damping", 0.01))
    for joint in spec.joints:
        if joint.type in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
            joint.damping = [damping, 0.0, 0.0]  # MuJoCo 4: a polynomial in the joint velocity
    for m in config.motors:
        joint = spec.joint(m.joint)
        joint.armature = SERVO_ARMATURE / m.scale**2  # through the rack of a linear joint: inertia / (m/rad)^2
        spec.add_actuator(name=m.joint, target=m.joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
    coupled = {e.name1 for e in spec.equalities}  # MuJoCo's importer may read <mimic> itself
    for follower, (leader, multiplier, offset) in urdf_mimic_joints(path).items():
        if follower in coupled:
            continue
        spec.add_equality(
            type=mujoco.mjtEq.mjEQ_JOINT, name1=follower, name2=leader, data=[offset, multiplier, 0, 0, 0] + [0] * 7
        )
    for equality in spec.equalities:
        # A mimic is a rigid linkage (the OpenManipulator's rack drives both fingers): with MuJoCo's default soft
        # equality (20 ms) a servo squeezing at stall torque pulled the driven finger 9 mm past its mimic.
        equality.solref, equality.solimp = [STIFF_TIMECONST_S, 1.0], [0.99, 0.999, 0.001, 0.5, 2.0]
    return spec


def add_geom(parent: Any, box: Box, friction: tuple[float, float, float], **extra: Any) -> Any:
    """A geom for ``box`` in body ``parent`` (at the body's origin), in the scene collision group."""
    if box.kind == "box":
        kw = {"type": mujoco.mjtGeom.mjGEOM_BOX, "size": list(box.size)}
    elif box.kind == "cylinder":
        kw = {"type": mujoco.mjtGeom.mjGEOM_CYLINDER, "size": [box.size[0], box.size[1], 0.0]}
    else:
        kw = {"type": mujoco.mjtGeom.mjGEOM_MESH, "meshname": box.name}
    return parent.add_geom(name=box.name, rgba=list(box.rgba), friction=list(friction), **SCENE_GEOM, **kw, **extra)


def add_mesh(spec: mujoco.MjSpec, box: Box) -> None:
    spec.add_mesh(name=box.name, file=box.mesh, scale=[box.mesh_scale] * 3)


def restitution_solref(restitution: float, timeconst: float = 0.02) -> list[float]:
    """MuJoCo contact ``solref`` (time constant s, damping ratio) whose bounce has coefficient of restitution
    ``restitution``: a damped spring's rebound is exp(-zeta pi / sqrt(1 - zeta^2)), so zeta = -ln e / sqrt(pi^2 +
    ln^2 e); 0 is MuJoCo's default critical damping (no bounce)."""
    e = min(max(float(restitution), 0.0), 0.99)
    if e <= 0.0:
        return [timeconst, 1.0]
    log_e = math.log(e)
    return [timeconst, -log_e / math.sqrt(math.pi**2 + log_e**2)]


def add_camera(spec: mujoco.MjSpec, parent: Any, name: str, pos: np.ndarray, rotation: np.ndarray) -> None:
    """A camera at ``pos`` with camera_link rotation ``rotation`` (x forward, z up) in body ``parent``; MuJoCo's
    cameras look along -z with y up, so its axes are (-y, z, -x) of camera_link."""
    axes = np.stack([-rotation[:, 1], rotation[:, 2], -rotation[:, 0]], axis=1)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, axes.flatten())
    parent.add_camera(name=name, pos=list(pos), quat=list(quat))


def add_light(spec: mujoco.MjSpec, params: dict[str, Any]) -> None:
    """The scene light from the ``light.*`` params: a directional light from ``light.direction`` (toward the
    light), with color times the ambient, diffuse and specular coefficients, and shadows when ``light.shadow``; the
    viewer's headlight is off."""
    direction = np.asarray(params.get("light.direction", [0.4, -0.3, 1.0]), dtype=float)
    direction = direction / max(np.linalg.norm(direction), 1e-9)
    color = np.asarray(params.get("light.color", [1.0, 1.0, 1.0]), dtype=float)
    # MuJoCo lights every scene with a headlight at the viewer (ambient 0.1, diffuse 0.4, specular 0.5 by default)
    # on top of its lights; the domain's light is the only one, as in the simulator
    spec.visual.headlight.active = 0
    spec.worldbody.add_light(
        name="sun",
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
        pos=list(float(params.get("light.distance", 2.0)) * direction),  # where its shadow map looks from
        dir=list(-direction),
        ambient=list(color * float(params.get("light.ambient", 0.6))),
        diffuse=list(color * float(params.get("light.diffuse", 0.35))),
        specular=list(color * float(params.get("light.specular", 0.05))),
        castshadow=float(params.get("light.shadow", 0.0)) >= 0.5,
    )

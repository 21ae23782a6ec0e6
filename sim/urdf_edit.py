"""Edits of a URDF for dynamics randomization that PyBullet cannot make after loading (wheel size, track)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


def scale_wheels(src: Path, dst: Path, wheel_joints: list[str], radius_scale: float, track_scale: float) -> Path:
    """Write ``dst``: ``src`` with wheel cylinders' radii x ``radius_scale`` and the wheel joints' lateral (y)
    offsets x ``track_scale``. Returns ``dst``."""
    if radius_scale <= 0 or track_scale <= 0:
        raise ValueError(f"scales must be positive, got radius {radius_scale}, track {track_scale}")
    tree = ET.parse(src)
    root = tree.getroot()
    joints = {j.get("name"): j for j in root.iter("joint")}
    links = {link.get("name"): link for link in root.iter("link")}
    for name in wheel_joints:
        if name not in joints:
            raise ValueError(f"{src.name}: no joint {name!r}")
        joint = joints[name]
        origin = joint.find("origin")
        xyz = [float(v) for v in origin.get("xyz").split()]
        xyz[1] *= track_scale
        origin.set("xyz", " ".join(f"{v:.9g}" for v in xyz))
        link = links[joint.find("child").get("link")]
        for cyl in link.iter("cylinder"):
            cyl.set("radius", f"{float(cyl.get('radius')) * radius_scale:.9g}")
    tree.write(dst)
    return dst

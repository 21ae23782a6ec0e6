"""What a policy depends on: the parts of a robot description it was trained for (the robot signature) and the
observation dict it takes (the observation spec). Bundles record both; the loader checks them against the robot
and the observation at hand.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot.description import HardwareConfig
from robot.intrinsics import camera_intrinsics


class BundleError(ValueError):
    """A bundle is missing, malformed, or does not fit the robot or observation it is used with."""


# -- robot signature -------------------------------------------------------------------------------------------


def robot_signature(config: HardwareConfig) -> dict[str, Any]:
    """The parts of a robot description a trained policy depends on (JSON-friendly)."""
    sig: dict[str, Any] = {
        "kind": config.kind,
        "joints": list(config.joint_names),
        "limits": [[m.limits.lower, m.limits.upper] for m in config.motors],
        "rate_hz": config.control.rate_hz,
        "cameras": [
            {
                "name": c.name,
                "color": [c.color.width, c.color.height],
                "depth": [c.depth.width, c.depth.height] if c.depth else None,
                "parent": c.parent,
                "mount": [list(c.mount.xyz), list(c.mount.rpy)],
                "intrinsics": _pinhole(c),
            }
            for c in config.cameras
        ],
    }
    if config.arm is not None:
        a = config.arm
        sig["arm"] = {"ee_link": a.ee_link, "gripper": [a.gripper_joint, a.gripper_open, a.gripper_closed]}
    if config.base is not None:
        b = config.base
        sig["base"] = {"wheel_radius": b.wheel_radius, "track": b.track, "limits": [b.max_linear, b.max_angular]}
    return json.loads(json.dumps(sig))  # tuples -> lists, so that a signature read back from YAML compares equal


def _pinhole(camera: Any) -> list[float]:
    """fx, fy, cx, cy (px) of a camera's color stream: its calibration, else the D435 model."""
    k = camera_intrinsics(camera.color.width, camera.color.height, camera.intrinsics)
    return [round(float(v), 4) for v in (k.fx, k.fy, k.cx, k.cy)]


def signature_hash(signature: dict[str, Any]) -> str:
    """A short stable hash of a signature (16 hex digits of its sorted JSON's SHA-256)."""
    return hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:16]


def signature_differences(want: Any, got: Any, path: str = "") -> list[str]:
    """Each leaf where the signature ``got`` differs from ``want``, as "path: bundle expects X, robot has Y"."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for key in sorted(set(want) | set(got)):
            out += signature_differences(want.get(key), got.get(key), f"{path}.{key}" if path else key)
        return out
    if want != got:
        return [f"{path}: bundle expects {want}, robot has {got}"]
    return []


# -- observation spec ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObsSpec:
    """The observation dict a policy takes: ``keys`` in the order they are flattened, with their shapes."""

    keys: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]]

    @classmethod
    def from_space(cls, space: Any, keys: list[str] | None = None) -> ObsSpec:
        """From a gymnasium ``Dict`` space (all its keys, sorted, unless ``keys`` says which)."""
        keys = sorted(space.spaces) if keys is None else list(keys)
        return cls(tuple(keys), {k: tuple(int(d) for d in space[k].shape) for k in keys})

    @property
    def size(self) -> int:
        return int(sum(np.prod(self.shapes[k]) for k in self.keys))

    def check(self, observation: dict[str, Any]) -> None:
        missing = [k for k in self.keys if k not in observation]
        if missing:
            raise BundleError(f"observation lacks {missing}; the policy takes {list(self.keys)}")
        for k in self.keys:
            shape = tuple(np.shape(observation[k]))
            if shape != self.shapes[k]:
                raise BundleError(f"observation {k!r} has shape {shape}; the policy was trained on {self.shapes[k]}")

    def flatten(self, observation: dict[str, Any]) -> np.ndarray:
        """The keys' values concatenated in order, float32."""
        self.check(observation)
        return np.concatenate([np.asarray(observation[k], dtype=np.float32).ravel() for k in self.keys])

    def zeros(self) -> dict[str, np.ndarray]:
        """An all-zero observation of this spec, in the task envs' dtypes (``rgb`` uint8, the rest float32)."""
        return {k: np.zeros(self.shapes[k], np.uint8 if k == "rgb" else np.float32) for k in self.keys}

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "shapes": {k: list(v) for k, v in self.shapes.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObsSpec:
        return cls(tuple(data["keys"]), {k: tuple(v) for k, v in data["shapes"].items()})

"""Policy bundles: one folder that holds everything needed to run a trained policy, and nothing that needs gym.

A bundle folder contains ``bundle.yaml`` (what the policy is: task, observation and action spec, network,
normalization, the robot it expects, the randomization it was trained under, how it was made) and
``weights.pt`` (the network's ``state_dict``). :func:`load` returns a :class:`BundlePolicy` whose ``act`` takes
the observation dict of the task (numpy in) and returns the action (numpy out, deterministic).

The robot a bundle expects is recorded as a *signature*: the parts of the hardware config a policy depends on
(joint names and order, limits, control rate, arm / base geometry, camera profiles and mount). Loading against a
robot whose signature differs fails with the fields that differ; the serial port or servo ids may change freely.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from policies.errors import BundleError
from real.hardware_config import HardwareConfig

__all__ = ["BundleError", "BundlePolicy", "ObsSpec", "load", "robot_signature", "save_bundle"]

BUNDLE_FILE = "bundle.yaml"
WEIGHTS_FILE = "weights.pt"
FORMAT_VERSION = 1


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


def signature_hash(signature: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:16]


def _differences(want: Any, got: Any, path: str = "") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for key in sorted(set(want) | set(got)):
            out += _differences(want.get(key), got.get(key), f"{path}.{key}" if path else key)
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

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "shapes": {k: list(v) for k, v in self.shapes.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObsSpec:
        return cls(tuple(data["keys"]), {k: tuple(v) for k, v in data["shapes"].items()})


# -- networks --------------------------------------------------------------------------------------------------

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def build_mlp(n_in: int, hidden: list[int], n_out: int, activation: str) -> nn.Sequential:
    """Linear layers with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), ACTIVATIONS[activation]()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def build_network(spec: dict[str, Any], obs_spec: ObsSpec, action_dim: int) -> nn.Module:
    """The network a bundle's ``network`` entry describes."""
    if spec["type"] == "mlp":
        return build_mlp(obs_spec.size, list(spec["hidden"]), action_dim, spec["activation"])
    if spec["type"] == "cnn":
        from policies.student import RGBDStudent  # noqa: PLC0415 - only camera policies need it

        return RGBDStudent.from_spec(spec, obs_spec, action_dim)
    raise BundleError(f"unknown network type {spec['type']!r}")


# -- the policy ------------------------------------------------------------------------------------------------


class BundlePolicy:
    """A loaded bundle: ``act(observation) -> action`` (numpy, deterministic) and ``reset()``."""

    def __init__(self, meta: dict[str, Any], network: nn.Module, path: Path | None = None) -> None:
        self.meta = meta
        self.path = path
        self.task: str = meta["task"]
        self.obs_spec = ObsSpec.from_dict(meta["observation"])
        self.action_dim = int(meta["action"]["dim"])
        self.network = network.eval()
        norm = meta.get("normalization") or {}
        self._mean = np.asarray(norm.get("mean", np.zeros(self.obs_spec.size)), dtype=np.float32)
        self._std = np.asarray(norm.get("std", np.ones(self.obs_spec.size)), dtype=np.float32)
        self._squash = bool(meta["network"].get("squash", False))
        self._image = meta["network"]["type"] == "cnn"

    def reset(self) -> None:
        """Start of an episode (the bundled networks are feed-forward: nothing to clear)."""

    @property
    def normalization(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of the flat observation (a camera student's: of its proprioception), copies."""
        return self._mean.copy(), self._std.copy()

    def normalize(self, flat: np.ndarray) -> np.ndarray:
        return np.clip((flat - self._mean) / self._std, -10.0, 10.0).astype(np.float32)

    @torch.no_grad()
    def act(self, observation: dict[str, Any]) -> np.ndarray:
        """The action in [-1, 1] for one observation dict."""
        if self._image:
            self.obs_spec.check(observation)
            out = self.network.act(observation, self.normalize)
        else:
            x = torch.from_numpy(self.normalize(self.obs_spec.flatten(observation)))[None]
            out = self.network(x)[0]
            if self._squash:
                out = torch.tanh(out)
        return np.clip(out.numpy(), -1.0, 1.0).astype(np.float32)

    def check_robot(self, config: HardwareConfig) -> None:
        """Raise :class:`BundleError` naming what differs when ``config`` is not the robot this was trained for."""
        want = self.meta["robot"]["signature"]
        diffs = _differences(want, robot_signature(config))
        if diffs:
            raise BundleError(
                f"bundle {self.path} was trained for robot {self.meta['robot']['name']!r}, and {config.name!r} "
                "differs: " + "; ".join(diffs[:8]) + (f"; ... ({len(diffs)} differences)" if len(diffs) > 8 else "")
            )

    def check_observation_space(self, space: Any) -> None:
        """Raise :class:`BundleError` when a gymnasium Dict space does not provide what the policy takes."""
        for k in self.obs_spec.keys:
            if k not in space.spaces:
                raise BundleError(f"observation space lacks {k!r}; the policy takes {list(self.obs_spec.keys)}")
            if tuple(space[k].shape) != self.obs_spec.shapes[k]:
                raise BundleError(
                    f"observation {k!r} has shape {tuple(space[k].shape)}; the policy was trained on "
                    f"{self.obs_spec.shapes[k]}"
                )


# -- saving and loading ----------------------------------------------------------------------------------------


def code_version() -> str:
    """``git describe`` of the checkout this runs from, or "unknown"."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def save_bundle(
    path: str | Path,
    *,
    network: nn.Module,
    network_spec: dict[str, Any],
    task: str,
    obs_spec: ObsSpec,
    action_dim: int,
    robot: HardwareConfig,
    normalization: dict[str, np.ndarray] | None,
    randomization: dict[str, Any] | None,
    training: dict[str, Any],
    dynamics: dict[str, Any] | None = None,
    camera: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle folder (created if needed; an existing bundle there is replaced). ``dynamics``: the
    :class:`~sim.randomization.dynamics.DynamicsSpec` (as a dict) of a universal policy's ``dynamics`` input.
    ``camera``: how a camera policy's training frames were made (``supersample``: see
    :meth:`sim.envs.robot_env.RobotEnv.camera_observation`)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    signature = robot_signature(robot)
    meta = {
        "format": FORMAT_VERSION,
        "task": task,
        "observation": obs_spec.to_dict(),
        "action": {"dim": int(action_dim), "low": -1.0, "high": 1.0},
        "network": network_spec,
        "normalization": (
            {k: np.asarray(v, dtype=float).round(8).tolist() for k, v in normalization.items()}
            if normalization
            else None
        ),
        "robot": {"name": robot.name, "signature": signature, "hash": signature_hash(signature)},
        "randomization": randomization,
        # a run passes the version it started from (the checkout may change during a long run)
        "training": training if "code_version" in training else {**training, "code_version": code_version()},
    }
    if dynamics is not None:
        meta["dynamics"] = dynamics
    if camera is not None:
        meta["camera"] = camera
    torch.save(network.state_dict(), path / WEIGHTS_FILE)
    (path / BUNDLE_FILE).write_text(yaml.safe_dump(meta, sort_keys=False, width=120))
    return path


def load(path: str | Path, robot: HardwareConfig | None = None, observation_space: Any | None = None) -> BundlePolicy:
    """Load a bundle folder (or a training run folder holding ``bundle/``); check it against ``robot`` and
    ``observation_space`` when given."""
    path = Path(path)
    if (path / "bundle" / BUNDLE_FILE).exists():
        path = path / "bundle"
    if not (path / BUNDLE_FILE).exists():
        raise BundleError(f"{path}: no {BUNDLE_FILE} here: not a policy bundle")
    try:
        meta = yaml.safe_load((path / BUNDLE_FILE).read_text())
    except yaml.YAMLError as e:
        raise BundleError(f"{path / BUNDLE_FILE}: not valid YAML: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise BundleError(f"{path}: unsupported bundle format {meta.get('format') if isinstance(meta, dict) else '?'}")
    obs_spec = ObsSpec.from_dict(meta["observation"])
    network = build_network(meta["network"], obs_spec, int(meta["action"]["dim"]))
    try:
        state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    except (OSError, RuntimeError) as e:
        raise BundleError(f"{path / WEIGHTS_FILE}: weights do not load into the bundle's network: {e}") from e
    if "osi" in meta:  # a universal policy with its online estimator
        from policies.osi import load_osi  # noqa: PLC0415 - policies.osi imports this module

        policy: BundlePolicy = load_osi(meta, network, path)
    else:
        policy = BundlePolicy(meta, network, path)
    if robot is not None:
        policy.check_robot(robot)
    if observation_space is not None:
        policy.check_observation_space(observation_space)
    return policy

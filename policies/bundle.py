"""Policy bundles: one folder that holds everything needed to run a trained policy, and nothing that needs gym.

A bundle folder contains ``bundle.yaml`` (what the policy is: task, observation and action spec, network,
normalization, the robot it expects, the randomization it was trained under, how it was made) and
``weights.pt`` (the network's ``state_dict``). :func:`load` returns a :class:`BundlePolicy` whose ``act`` takes
the observation dict of the task (numpy in) and returns the action (numpy out, deterministic).

The robot a bundle expects is recorded as a *signature*: the parts of the hardware config a policy depends on
(joint names and order, limits, control rate, arm / base geometry, camera profiles, mount and intrinsics). Loading
against a robot whose signature differs fails with the fields that differ, except that calibrated values (camera
mount and intrinsics, joint limits) are judged against the ranges the policy was trained under
(:mod:`policies.robot_check`); the serial port or servo ids may change freely.

:func:`load` checks everything a bundle says (bundle.yaml's keys and types, the task against the robot, the
normalization statistics, the weights against the network) and runs the policy once on a zero observation, so a
broken bundle is refused with one :class:`BundleError` line before ``s2r deploy`` opens the bus.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from torch import nn

from policies.robot_check import check_robot
from robot.description import HardwareConfig, format_validation_error
from robot.spec import BundleError, ObsSpec, robot_signature, signature_differences, signature_hash  # noqa: F401 - re-exported
from robot.tasks import task_class, task_names

__all__ = ["BundleError", "BundlePolicy", "ObsSpec", "load_weights", "robot_signature", "save_bundle"]

BUNDLE_FILE = "bundle.yaml"
SHIPPED_BUNDLES_DIR = Path(__file__).resolve().parent / "bundles"  # the bundles the package ships, found by name
WEIGHTS_FILE = "weights.pt"
FORMAT_VERSION = 1


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
        self.robot_report: list[str] = []  # calibrated values judged when loaded against a robot (robot_check)
        norm = meta.get("normalization") or {}
        self._mean = np.asarray(norm.get("mean", np.zeros(self.obs_spec.size)), dtype=np.float32)
        self._std = np.asarray(norm.get("std", np.ones(self.obs_spec.size)), dtype=np.float32)
        self._squash = bool(meta["network"].get("squash", False))
        self._image = meta["network"]["type"] == "cnn"

    def reset(self) -> None:
        """Start of an episode (the bundled networks are feed-forward: nothing to clear)."""

    @property
    def trained_frame_age_s(self) -> float:
        """The oldest camera frame (s from its capture to the step) this policy saw in training: the top of its
        randomization's ``camera.frame_age`` range, 0 when it trained on fresh frames only."""
        from sim.randomization.config import largest_value, parse_randomization

        recorded = (self.meta.get("randomization") or {}).get("config")  # {source, config}: as training wrote it
        if not recorded:
            return 0.0
        return largest_value(parse_randomization(recorded, "bundle randomization"), "camera.frame_age", 0.0)

    @property
    def normalization(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of the flat observation (a camera student's: of its proprioception), copies."""
        return self._mean.copy(), self._std.copy()

    def normalize(self, flat: np.ndarray) -> np.ndarray:
        return np.clip((flat - self._mean) / self._std, -10.0, 10.0).astype(np.float32)

    @torch.no_grad()
    def act(self, observation: dict[str, Any]) -> np.ndarray:
        """The action in [-1, 1] for one observation dict."""
        if not self._image:
            return self.act_flat(self.obs_spec.flatten(observation))
        self.obs_spec.check(observation)
        return np.clip(self.network.act(observation, self.normalize).numpy(), -1.0, 1.0).astype(np.float32)

    @torch.no_grad()
    def act_flat(self, flat: np.ndarray) -> np.ndarray:
        """A state policy's action in [-1, 1] for its flat observation (the network's input before normalization)."""
        out = self.network(torch.from_numpy(self.normalize(flat))[None])[0]
        if self._squash:
            out = torch.tanh(out)
        return np.clip(out.numpy(), -1.0, 1.0).astype(np.float32)

    def check_robot(self, config: HardwareConfig) -> list[str]:
        """Raise :class:`BundleError` naming what differs when ``config`` is not the robot this was trained for, or is
        calibrated outside it; else the report of its calibrated values (:mod:`policies.robot_check`)."""
        return check_robot(self.meta, self.path, config)

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
    memory: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle folder (created if needed; an existing bundle there is replaced). ``dynamics``: the
    :class:`~sim.randomization.dynamics.DynamicsSpec` (as a dict) of a universal policy's ``dynamics`` input.
    ``memory``: a policy with memory's ``horizon`` (:mod:`policies.memory`).
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
    if memory is not None:
        meta["memory"] = memory
    if camera is not None:
        meta["camera"] = camera
    torch.save(network.state_dict(), path / WEIGHTS_FILE)
    (path / BUNDLE_FILE).write_text(yaml.safe_dump(meta, sort_keys=False, width=120))
    return path


# -- validation ------------------------------------------------------------------------------------------------
# Everything a bundle says is checked before a policy is handed out: a deploy loads its policy before it opens the
# bus, so a broken bundle is refused with one line, before any torque.

_PositiveInt = Annotated[int, Field(gt=0)]


class _Entry(BaseModel):
    """A section of bundle.yaml: the fields the loader reads are typed, others are kept as they are."""

    model_config = ConfigDict(strict=True, extra="allow")


class _Observation(_Entry):
    keys: list[str] = Field(min_length=1)
    shapes: dict[str, list[_PositiveInt]]


class _Action(_Entry):
    dim: _PositiveInt


class _Mlp(_Entry):
    type: Literal["mlp"]
    hidden: list[_PositiveInt]
    activation: str
    squash: bool = False

    @field_validator("activation")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in ACTIVATIONS:
            raise ValueError(f"must be one of {sorted(ACTIVATIONS)}")
        return v


class _Cnn(_Entry):
    type: Literal["cnn"]
    channels: list[_PositiveInt] = Field(min_length=1)
    embed: _PositiveInt
    hidden: _PositiveInt
    depth_max: float = Field(gt=0, allow_inf_nan=False)
    aux_dim: int = Field(default=0, ge=0)
    encoder: str = "cnn"
    coordinates: bool = False
    depth_mean: float | None = Field(default=None, allow_inf_nan=False)
    depth_std: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    squash: bool = False

    @field_validator("encoder")
    @classmethod
    def _known(cls, v: str) -> str:
        from policies.student import ENCODERS  # noqa: PLC0415 - only camera policies need it

        if v not in ENCODERS:
            raise ValueError(f"must be one of {list(ENCODERS)}")
        return v


class _Normalization(_Entry):
    mean: list[float]
    std: list[float]


class _Robot(_Entry):
    name: str
    signature: dict[str, Any]


class _Osi(_Entry):
    history: _PositiveInt
    proprio_dim: _PositiveInt
    effort_dim: int = Field(default=0, ge=0)  # the estimator also reads this many ``effort`` values per step
    inputs: _PositiveInt
    hidden: list[_PositiveInt]


class _Memory(_Entry):
    horizon: _PositiveInt
    readings: list[Literal["proprio", "effort", "scan"]] = Field(default=["proprio", "effort"], min_length=1)


class _Dynamics(_Entry):
    params: list[dict[str, Any]] = Field(min_length=1)


class _Meta(_Entry):
    format: int
    task: str
    observation: _Observation
    action: _Action
    network: Annotated[_Mlp | _Cnn, Field(discriminator="type")]
    normalization: _Normalization | None = None
    robot: _Robot
    osi: _Osi | None = None
    dynamics: _Dynamics | None = None
    memory: _Memory | None = None


def _one_line(text: str, limit: int = 300) -> str:
    """``text`` with its whitespace runs as single spaces, cut at ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_meta(path: Path) -> dict[str, Any]:
    """bundle.yaml of the bundle folder ``path``, parsed and type-checked."""
    file = path / BUNDLE_FILE
    if not file.exists():
        raise BundleError(f"{path}: no {BUNDLE_FILE} here: not a policy bundle")
    try:
        meta = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise BundleError(f"{file}: not valid YAML: {_one_line(e)}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise BundleError(f"{file}: cannot be read: {_one_line(e)}") from e
    if meta is None:
        raise BundleError(f"{file}: empty")
    if not isinstance(meta, dict):
        raise BundleError(f"{file}: expected a mapping at the top level, got {type(meta).__name__}")
    if meta.get("format") != FORMAT_VERSION:
        raise BundleError(f"{path}: unsupported bundle format {meta.get('format', '(none)')}")
    try:
        _Meta.model_validate(meta)
    except ValidationError as e:
        head, *problems = format_validation_error(file, "bundle", e).splitlines()
        raise BundleError(f"{head}: " + "; ".join(_one_line(p, 160) for p in problems[:6])) from None
    return meta


def check_spec(meta: dict[str, Any], file: Path) -> ObsSpec:
    """The observation spec, checked against the network and the task; raises :class:`BundleError`."""
    keys, shapes = meta["observation"]["keys"], meta["observation"]["shapes"]
    if len(set(keys)) != len(keys):
        raise BundleError(f"{file}: observation.keys repeats a key: {keys}")
    missing = [k for k in keys if k not in shapes]
    if missing:
        raise BundleError(f"{file}: observation.shapes lacks {missing}")
    obs_spec = ObsSpec.from_dict(meta["observation"])
    if meta["network"]["type"] == "cnn":
        lacking = [k for k in ("rgb", "depth", "proprio") if k not in keys]
        if lacking:
            raise BundleError(
                f"{file}: a camera (cnn) policy takes rgb, depth and proprio; observation lacks {lacking}"
            )
        rgb, depth = obs_spec.shapes["rgb"], obs_spec.shapes["depth"]
        if len(rgb) != 3 or rgb[2] != 3 or depth != (*rgb[:2], 1):
            raise BundleError(f"{file}: observation rgb {rgb} and depth {depth} must be (H, W, 3) and (H, W, 1)")
    task = meta["task"]
    if task not in task_names():
        raise BundleError(f"{file}: unknown task {task!r}; known: {', '.join(task_names())}")
    needs, robot = task_class(task).robot_kind, meta["robot"]
    kind = robot["signature"].get("kind")
    if kind != needs:
        raise BundleError(
            f"{file}: task {task!r} needs a robot of kind {needs!r}; the bundle's robot {robot['name']!r} is of kind "
            f"{kind!r}"
        )
    want = task_class(task).action_dim
    if meta["action"]["dim"] != want:
        raise BundleError(f"{file}: the action has {meta['action']['dim']} values; the {task} task's has {want}")
    _check_extras(meta, keys, file)
    return obs_spec


def _check_extras(meta: dict[str, Any], keys: list[str], file: Path) -> None:
    """An estimator (``osi``) and a memory (``memory`` with the ``history`` input) come alone, on a state policy."""
    if ("history" in keys) != ("memory" in meta):
        raise BundleError(f"{file}: the observation's history input and the memory entry come together, or neither")
    if "memory" in meta and ("osi" in meta or meta["network"]["type"] == "cnn"):
        raise BundleError(f"{file}: a memory is for a state policy without an estimator")


def effort_dim(meta: dict[str, Any]) -> int:
    """How many joint efforts the bundle's robot reports: one per joint of its signature."""
    return len(meta["robot"]["signature"]["joints"])


def check_task_fits(meta: dict[str, Any], obs_spec: ObsSpec, robot: HardwareConfig, file: Path) -> None:
    """The proprioception the task code builds on ``robot`` is what the policy takes."""
    if "proprio" not in obs_spec.keys:
        return
    task = task_class(meta["task"])(robot)
    want = (int(task.proprio_dim),)
    if obs_spec.shapes["proprio"] != want:
        raise BundleError(
            f"{file}: observation proprio has shape {obs_spec.shapes['proprio']}; the {meta['task']} task on "
            f"{robot.name} gives {want}"
        )


def check_normalization(meta: dict[str, Any], obs_spec: ObsSpec, file: Path) -> None:
    """Mean and standard deviation: one finite value per network input, the deviations positive."""
    norm = meta.get("normalization")
    if norm is None:
        return
    # a camera student normalizes its proprioception; a state policy its whole flat observation
    size = int(np.prod(obs_spec.shapes["proprio"])) if meta["network"]["type"] == "cnn" else obs_spec.size
    for name in ("mean", "std"):
        values = norm[name]
        if len(values) != size:
            raise BundleError(
                f"{file}: normalization.{name} has {len(values)} values; the policy's input has {size}: the "
                "normalization statistics are broken"
            )
        bad = [i for i, v in enumerate(values) if not math.isfinite(v) or (name == "std" and v <= 0)]
        if bad:
            what = "finite and positive" if name == "std" else "finite"
            raise BundleError(
                f"{file}: normalization.{name}[{bad[0]}] is {values[bad[0]]} ({len(bad)} of {size} values are not "
                f"{what}): the normalization statistics are broken"
            )


def short_error(e: BaseException) -> str:
    """The exception's type and the first sentence of its message."""
    text = _one_line(e, 1000)
    first = text.split(". ")[0]
    return f"{type(e).__name__}: {_one_line(first, 160)}" if first else type(e).__name__


def load_weights(network: nn.Module, file: Path) -> None:
    """Load the ``state_dict`` in ``file`` into ``network``, refusing (with :class:`BundleError`) a file that does
    not read, tensors that do not fit the network and tensors holding NaN or inf."""
    try:
        if file.is_file() and file.stat().st_size == 0:
            raise EOFError("the file is empty")
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types on a corrupt file
        raise BundleError(f"{file}: cannot be read as a PyTorch state_dict ({short_error(e)})") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BundleError(f"{file}: holds a {type(state).__name__}, not a state_dict of tensors")
    own = network.state_dict()
    problems = []
    missing, unexpected = [k for k in own if k not in state], [k for k in state if k not in own]
    if missing:
        problems.append(f"missing {missing[:6]}")
    if unexpected:
        problems.append(f"unexpected {unexpected[:6]}")
    for k in own:
        if k in state and state[k].shape != own[k].shape:
            problems.append(f"{k!r} has shape {tuple(state[k].shape)}, the network's is {tuple(own[k].shape)}")
    if problems:
        raise BundleError(f"{file}: the weights do not fit the bundle's network: " + "; ".join(problems[:6]))
    for k, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            raise BundleError(
                f"{file}: tensor {k!r} holds {nan} NaN and {inf} inf of {t.numel()} values: the weights are broken"
            )
    network.load_state_dict(state)


def shipped_bundles() -> list[str]:
    """Names of the bundles the package ships (``policies/bundles/<name>``)."""
    return sorted(d.name for d in SHIPPED_BUNDLES_DIR.iterdir() if (d / BUNDLE_FILE).is_file())


def bundle_path(spec: str | Path) -> Path:
    """The bundle folder ``spec`` names: a path as given (a training run folder holding ``bundle/`` included),
    else a shipped bundle of that name, found through the package from any working directory."""
    path = Path(spec)
    if (path / "bundle" / BUNDLE_FILE).exists():
        return path / "bundle"
    if not path.exists() and len(path.parts) == 1 and (SHIPPED_BUNDLES_DIR / path.name / BUNDLE_FILE).is_file():
        return SHIPPED_BUNDLES_DIR / path.name
    if not path.exists() and len(path.parts) == 1:  # a name: say which names there are
        known = ", ".join(shipped_bundles())
        raise BundleError(f"{spec}: no such folder, and no shipped bundle of that name; known: {known}")
    return path  # a path: loading it says what is missing there

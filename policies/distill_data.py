"""The data of a distillation (:mod:`policies.distill`): the teacher that labels states, the detours that take
the student off the teacher's path, the aggregated samples, and the pretraining scenes, collected in chunks over
worker processes and cached by what they depend on."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import albumentations as A
import gymnasium as gym
import numpy as np
import torch

from policies.cluster import Executor, FolderValue, run_jobs
from policies.distill_config import APPROACH_STEPS
from policies.loader import load
from policies.rollout import make_expert
from policies.surface_overlay import SurfaceOverlay
from sim.envs.factory import robot_kwargs, task_env
from sim.randomization.config import RandomizationConfig

PRETRAIN_SEED = 3_000_000  # scenes seed + 0 .. N-1: overlaps the mock robots' default scene seeds (s2r demo, deploy)
SCENE_CHUNK = 500  # scenes per unit of parallel collection
SCENE_CACHE_VERSION = 4  # bump when what a chunk holds, or how it is collected, changes (4: surface masks)


class SceneChunk(NamedTuple):
    """Scenes ``start .. start + count`` of a run: the unit of parallel collection and of the scene cache."""

    teacher: str | FolderValue  # a bundle or "expert"; by value for a cluster's workers
    task: str
    randomization: RandomizationConfig
    image_size: int
    camera: dict[str, Any]  # the env's camera options (supersample, crop): Distillation.camera_options
    seed: int
    start: int
    count: int
    detours: float = 0.0  # DistillConfig.detours and detour_steps
    detour_steps: int = 0
    teacher_steps: int = APPROACH_STEPS  # DistillConfig.pretrain_steps
    robot: str | None = None  # the simulated robot (a hardware config name; None: the task's own)

    @property
    def file_name(self) -> str:
        return f"scenes-{self.start:07d}-{self.count}.npz"


#: A state policy's observation keys other than ``proprio``, and where the env's privileged info holds them.
STATE_KEYS = {"privileged": "vector", "scan": "scan"}


class Teacher:
    """Labels states: a state bundle (fed with proprio and its other keys from the env's privileged info: the
    ``privileged`` vector, or the ``scan`` a base's sensor gives), or the scripted expert."""

    def __init__(self, spec: str, task: str | None, env: gym.Env) -> None:
        self.spec = spec
        if spec == "expert":
            if task is None:
                raise ValueError("distilling the scripted expert needs --task")
            self.task, self.bundle, self.expert = task, None, make_expert(task, env)
        else:
            self.bundle = load(spec, robot=env.unwrapped.config)
            if not set(self.bundle.obs_spec.keys) <= {"proprio", *STATE_KEYS}:
                raise ValueError(
                    f"{spec}: the teacher must be a state policy reading proprio + {' or '.join(STATE_KEYS)} alone, "
                    f"not {list(self.bundle.obs_spec.keys)} (a memory or an estimator would read the student's "
                    "trajectory as its own)"
                )
            if task is not None and task != self.bundle.task:
                raise ValueError(f"{spec} is a {self.bundle.task!r} policy, not {task!r}")
            self.task, self.expert = self.bundle.task, None

    def reset(self) -> None:
        if self.expert is not None:
            self.expert.reset()

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        if self.expert is not None:
            return np.clip(np.asarray(self.expert.act(obs, info), dtype=np.float32), -1, 1)
        keys = self.bundle.obs_spec.keys
        state = {key: info["privileged"][source] for key, source in STATE_KEYS.items() if key in keys}
        return self.bundle.act({"proprio": obs["proprio"], **state})


class Detour:
    """A random excursion at the start of an episode: ``steps`` (1 .. ``max_steps``) repetitions of one action drawn
    uniformly from [-1, 1]^n. The states it reaches, and the teacher's labels there, show the student the way back
    to the task from places its own mistakes lead to (a student that loses the object drifts to the edge of the
    workspace, where a teacher-driven dataset has no sample). The same idea as noise injection into the
    demonstrator, Laskey et al. 2017, "DART: Noise Injection for Robust Imitation Learning", with one large
    deviation instead of small per-step noise, which would keep the arm near the teacher's path."""

    def __init__(self, rng: np.random.Generator, share: float, max_steps: int, action_dim: int) -> None:
        self.steps = int(rng.integers(1, max_steps + 1)) if share > 0 and rng.random() < share else 0
        self.action = rng.uniform(-1.0, 1.0, action_dim).astype(np.float32) if self.steps else None

    def drive(self, step: int) -> np.ndarray | None:
        """The detour's action at ``step`` of the episode, or None once it is over."""
        return self.action if step < self.steps else None


def record_surfaces(env: gym.Env) -> gym.Env:
    """``env``, made to keep each camera observation's surface mask (:attr:`sim.envs.camera_view.CameraView.
    surface_mask`), which the samples carry for :mod:`policies.surface_overlay`."""
    env.unwrapped.record_surface = True
    return env


def surface_of(env: gym.Env, rgb: np.ndarray) -> np.ndarray:
    """The surface mask of the env's last camera observation (HxW uint8), zeros where the env marks none."""
    mask = env.unwrapped.surface_mask
    return np.zeros(rgb.shape[:2], np.uint8) if mask is None else mask


class Dataset:
    """Aggregated (rgb, depth, proprio, teacher action, privileged) samples, grown in place, each with the mask of
    the surface its image shows (zeros in samples recorded without one)."""

    FIELDS = ("rgb", "depth", "proprio", "action", "privileged")

    def __init__(self) -> None:
        self.rgb: list[np.ndarray] = []
        self.depth: list[np.ndarray] = []
        self.proprio: list[np.ndarray] = []
        self.action: list[np.ndarray] = []
        self.privileged: list[np.ndarray] = []
        self.surface: list[np.ndarray] = []

    def add(
        self, obs: dict[str, np.ndarray], action: np.ndarray, privileged: np.ndarray, surface: np.ndarray | None = None
    ) -> None:
        self.rgb.append(obs["rgb"])
        self.depth.append(obs["depth"].astype(np.float16))
        self.proprio.append(obs["proprio"].astype(np.float32))
        self.action.append(action.astype(np.float32))
        self.privileged.append(np.asarray(privileged, dtype=np.float32))
        self.surface.append(np.zeros(obs["rgb"].shape[:2], np.uint8) if surface is None else surface.astype(np.uint8))

    def __len__(self) -> int:
        return len(self.action)

    def arrays(self, start: int = 0) -> tuple[np.ndarray, ...]:
        """rgb, depth, proprio, action, privileged of samples ``start ..``."""
        return tuple(np.stack(getattr(self, k)[start:]) for k in self.FIELDS)

    def surfaces(self) -> np.ndarray:
        """(N, H, W) uint8 surface masks of all samples."""
        return np.stack(self.surface)

    def save(self, path: Path, start: int = 0) -> None:
        """Samples ``start ..`` to ``path`` (.npz)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = dict(zip(self.FIELDS, self.arrays(start), strict=True))
        save_npz(path, {**arrays, "surface": np.stack(self.surface[start:])})

    def load(self, path: Path) -> int:
        """Append the samples of a file written by :meth:`save` (one written before masks were kept: zero masks);
        returns how many."""
        with np.load(path) as f:
            arrays = [f[k] for k in self.FIELDS]
            surface = f["surface"] if "surface" in f.files else np.zeros(arrays[0].shape[:3], np.uint8)
        for k, values in zip(self.FIELDS, arrays, strict=True):
            getattr(self, k).extend(values)
        self.surface.extend(surface)
        return len(arrays[0])


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``arrays`` to ``path``, written whole and then renamed: a killed run leaves no half file."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def colour_augmentation() -> A.Compose:
    """Photometric only: geometry (where the object is in the image) is what the student must read."""
    return A.Compose(
        [
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.8),
            A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=20, val_shift_limit=10, p=0.5),
            A.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]
    )


def dark_dropout_range(randomization: RandomizationConfig) -> tuple[float, float]:
    """The (low, high) range of the randomization's dark-surface depth dropout (``depth.dark_dropout``, a uniform
    draw), or (0, 0) when it has none."""
    for term in randomization.terms:
        if term.target == "depth.dark_dropout":
            d = term.distribution
            if getattr(d, "type", None) != "uniform":
                raise ValueError(f"{term.name}: the surface overlay reads a uniform dark dropout, not {d.type}")
            return float(d.low), float(d.high)
    return 0.0, 0.0


class TrainingAugmentation:
    """What a training batch goes through: surfaces repainted with probability ``surface_share``, the depth of
    their new dark pixels dropped with a probability in ``dark_dropout``
    (:class:`policies.surface_overlay.SurfaceOverlay`, seeded with ``seed``), then, with ``colour``, the
    photometric :func:`colour_augmentation` of each image."""

    def __init__(
        self, colour: bool, surface_share: float, seed: int, dark_dropout: tuple[float, float] = (0.0, 0.0)
    ) -> None:
        self.overlay = SurfaceOverlay(surface_share, seed, dark_dropout) if surface_share > 0 else None
        self.colour = colour_augmentation() if colour else None

    @classmethod
    def for_run(cls, colour: bool, surface_share: float, seed: int, env: gym.Env) -> TrainingAugmentation:
        """The augmentation of a run whose env is ``env`` (its randomization's dark-surface depth dropout)."""
        return cls(colour, surface_share, seed, dark_dropout_range(env.unwrapped.randomization))

    def __call__(self, images: np.ndarray, depths: np.ndarray, surfaces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, W, 3) uint8 images, (N, H, W, 1) depths and (N, H, W) uint8 surface masks -> augmented images
        and depths."""
        if self.overlay is not None:
            images, depths = self.overlay(images, depths, surfaces)
        if self.colour is not None:
            images = np.stack([self.colour(image=im)["image"] for im in images])
        return images, depths


def collect_scene_chunk(chunk: SceneChunk, worker: bool = True) -> dict[str, np.ndarray]:
    """Frames of scenes ``start .. start + count`` of a run seeded ``seed`` (see
    :meth:`Distillation.collect_scenes`). The teacher drives a state env (it reads the state, not the camera); the
    camera renders only the frame that is kept. ``worker``: running in a worker process (torch on one core)."""
    if worker:
        torch.set_num_threads(1)
    size = (chunk.image_size, chunk.image_size)
    env = record_surfaces(
        task_env(
            chunk.task,
            chunk.randomization,
            obs_mode="state",
            image_size=size,
            **robot_kwargs(chunk.robot),
            **chunk.camera,
        )
    )
    spec = chunk.teacher if isinstance(chunk.teacher, str) else str(chunk.teacher.path())
    teacher = Teacher(spec, chunk.task, env)
    rng = np.random.default_rng([chunk.seed, chunk.start])
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("rgb", "depth", "surface", "proprio", "action", "privileged")}
    try:
        for i in range(chunk.start, chunk.start + chunk.count):
            obs, info = env.reset(seed=PRETRAIN_SEED + chunk.seed * 100_000 + i)
            teacher.reset()
            teacher_steps = int(rng.integers(0, chunk.teacher_steps + 1))
            detour = Detour(rng, chunk.detours, chunk.detour_steps, env.action_space.shape[0])
            for k in range(detour.steps + teacher_steps):
                action = detour.drive(k)
                obs, _, terminated, truncated, info = env.step(teacher.act(obs, info) if action is None else action)
                if terminated or truncated:  # done early: keep its last frame
                    break
            for key, value in env.unwrapped.camera_observation().items():
                out[key].append(value)
            out["surface"].append(surface_of(env, out["rgb"][-1]))
            out["proprio"].append(obs["proprio"])
            out["action"].append(teacher.act(obs, info))
            out["privileged"].append(np.asarray(info["privileged"]["vector"], dtype=np.float32))
    finally:
        env.close()
    return {k: np.stack(v) for k, v in out.items()}


def scene_cache_folder(
    root: Path,
    task: str,
    teacher: Path | None,
    setting: list[Any],
    detours: dict[str, Any] | None,
    pretrain_steps: int,
) -> Path:
    """``root/<task>-<key>``, created: the key digests what the frames depend on (the teacher bundle's files, or
    the scripted expert; ``setting``: the task, the randomization config, the image size, supersampling and crop,
    the seed; and this collection scheme), so a cache is never read for another teacher or setting."""
    digest = hashlib.sha256()
    if teacher is None:
        digest.update(b"expert")
    else:
        for f in sorted(teacher.iterdir()):
            if f.is_file():
                digest.update(f.name.encode() + f.read_bytes())
    setting = [*setting, PRETRAIN_SEED, SCENE_CACHE_VERSION]
    if detours is not None:  # (without detours, the frames of caches made before detours existed)
        setting.append(detours)
    if pretrain_steps != APPROACH_STEPS:  # (likewise: the steps before the option existed)
        setting.append({"pretrain_steps": pretrain_steps})
    digest.update(json.dumps(setting, sort_keys=True).encode())
    folder = root / f"{task}-{digest.hexdigest()[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def collect_chunks(
    todo: list[SceneChunk], executor: Executor, keep: Callable[[SceneChunk, dict[str, np.ndarray]], None]
) -> None:
    """Collect every chunk of ``todo`` where ``executor`` says (:mod:`policies.cluster`), handing each result to
    ``keep`` as it comes; in this process when there is one worker (torch keeps its threads)."""
    if executor.remote or (executor.workers > 1 and len(todo) > 1):
        run_jobs(collect_scene_chunk, todo, executor, progress=False, on_result=lambda i, part: keep(todo[i], part))
    else:
        for job in todo:
            keep(job, collect_scene_chunk(job, worker=False))


def earlier_samples(path: str, training: dict[str, Any], continues_dagger: bool) -> list[str]:
    """The DAgger sample files the --init student at ``path`` was fitted on (its ``training`` record), which
    this run aggregates as DAgger does (``continues_dagger``: the run goes on with DAgger iterations).
    A bundle that records none (made before they were kept), or whose files are gone, is continued with a
    warning: refitting without them loses the earlier iterations' grasp- and lift-phase data
    (docs/design-notes.md)."""
    recorded = training.get("dagger_samples")
    if recorded is None:
        if continues_dagger:
            warnings.warn(
                f"--init {path}: the bundle records no DAgger samples (made before runs kept them): this run "
                f"refits on the pretraining scenes and its own samples only",
                stacklevel=3,
            )
        return []
    missing = [f for f in recorded if not Path(f).is_file()]
    if missing:
        warnings.warn(
            f"--init {path}: {len(missing)} of its {len(recorded)} DAgger sample files are missing "
            f"({', '.join(missing)}; paths relative to the directory the run started in): this run "
            f"refits without them",
            stacklevel=3,
        )
    return [f for f in recorded if f not in missing]


def aux_report(errors: list[np.ndarray], privileged: dict[str, Any]) -> dict[str, Any]:
    """How well the student's auxiliary head read the privileged vector at each episode's first frame: mean
    absolute error per entry, and for the grasp the object position error (m)."""
    if not errors:
        return {}
    e = np.abs(np.stack(errors))
    out: dict[str, Any] = {"aux_mae_at_reset": [float(f"{v:.4g}") for v in e.mean(0)]}
    position = privileged.get("object_position")
    if position is not None and np.allclose(privileged["vector"][:3], position):  # the grasp's layout
        distance = np.linalg.norm(e[:, :3], axis=1)
        out["object_position_error_at_reset_m"] = {
            "median": round(float(np.median(distance)), 4),
            "mean": round(float(distance.mean()), 4),
        }
    return out

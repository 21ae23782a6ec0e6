"""``s2r distill``: a camera student that imitates a privileged teacher with DAgger (Ross et al. 2011).

The teacher sees the state (a state-policy bundle, reading the privileged vector every env reports in
``info["privileged"]["vector"]``, or the scripted expert); the student sees what a robot sees: color, depth and
proprioception, under the full visual randomization of the task. Iteration 0 lets the teacher drive; in
iteration i the student drives with probability 1 - 0.5^i (the teacher otherwise), and the teacher labels every
state visited. The dataset is aggregated across iterations and the student retrained on all of it, with
albumentations colour augmentation of the training images. After each iteration the student is evaluated on
held-out seeds; the best one becomes the bundle, and every iteration's is kept in ``iterations/N`` (the pretrained
student, before DAgger, in ``pretrained``), and every iteration's new samples in ``samples/iteration-N.npz``. A run
can continue a student bundle (``init``): DAgger goes on at the iteration after the bundle's last, with the samples
that student was fitted on aggregated.

Written here rather than taken from a library: the `imitation` package's DAgger is built around its own
trajectory and policy types and a gym-wrapped expert, while our teacher needs the env's privileged info and our
student is a plain torch module that the bundle stores.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import shlex
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import albumentations as A
import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from policies.bundle import code_version, save_bundle
from policies.loader import load
from policies.rollout import make_expert, wilson_interval
from policies.student import RGBDStudent
from policies.train import EVAL_SEED
from robot.spec import BundleError, ObsSpec
from sim.envs.factory import task_env
from sim.randomization.config import load_randomization

DISTILL_SEED = 2_000_000
PRETRAIN_SEED = 3_000_000  # scenes seed + 0 .. N-1: overlaps the mock robots' default scene seeds (s2r demo, deploy)
SCENE_CHUNK = 500  # scenes per unit of parallel collection
SCENE_CACHE_VERSION = 3  # bump when what a chunk holds, or how it is collected, changes
APPROACH_STEPS = 5  # default most teacher steps before a pretraining frame (the approach; frames of older caches)


class SceneChunk(NamedTuple):
    """Scenes ``start .. start + count`` of a run: the unit of parallel collection and of the scene cache."""

    teacher: str
    task: str
    randomization: str
    image_size: int
    camera: dict[str, Any]  # the env's camera options (supersample, crop): Distillation.camera_options
    seed: int
    start: int
    count: int
    detours: float = 0.0  # DistillConfig.detours and detour_steps
    detour_steps: int = 0
    teacher_steps: int = APPROACH_STEPS  # DistillConfig.pretrain_steps

    @property
    def file_name(self) -> str:
        return f"scenes-{self.start:07d}-{self.count}.npz"


@dataclass
class DistillConfig:
    teacher: str  # a state-policy bundle (or run folder), or "expert"
    out: str
    task: str | None = None  # from the teacher bundle; required with "expert"
    steps: int = 30_000  # environment steps collected over all iterations
    iterations: int = 5
    epochs: int = 4  # passes over the aggregated data after each iteration
    seed: int = 0
    randomization: str = "default"
    image_size: int = 64
    # render the camera at this many times image_size and reduce it as the robot reduces real frames (area
    # averaging): sub-pixel detail survives (sim.envs.robot_env.RobotEnv.camera_observation); 1 renders directly
    supersample: int = 1
    # (x, y, width, height) px of the camera's color stream: the region the student sees (None: the whole frame)
    crop: tuple[int, int, int, int] | None = None
    batch_size: int = 128
    learning_rate: float = 5e-4
    eval_episodes: int = 50
    augment: bool = True
    aux_weight: float = 1.0  # weight of the auxiliary privileged-state loss (0: none)
    encoder: str = "cnn"  # or "keypoints" (spatial softmax): policies.student.RGBDStudent
    keep_every: int = 1  # label and keep every K-th visited state: K times the scenes for the same data size
    channels: tuple[int, ...] = (16, 32, 32)  # convolution widths of the student's encoder
    coordinates: bool = False  # pixel-coordinate input channels (CoordConv)
    pretrain_scenes: int = 0  # teacher-driven episodes that each give one early frame, fitted before DAgger
    pretrain_epochs: int = 10  # with the learning rate decaying to a tenth over them (cosine)
    # a pretraining scene's frame is taken after 0 .. pretrain_steps teacher steps, drawn uniformly: 5 shows the
    # approach only; the length of a teacher episode (12-16 steps for the grasp) shows grasp and lift as well
    pretrain_steps: int = APPROACH_STEPS
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))  # processes collecting scenes
    scene_cache: str | None = None  # folder keeping pretraining scene chunks between runs
    # continue from this student bundle (its network, normalization and camera); DAgger goes on at the iteration
    # after its last, with the DAgger samples it was fitted on, and pretraining scenes are aggregated without
    # refitting on them first
    init: str | None = None
    lr_decay: bool = False  # every DAgger fit's learning rate follows a cosine down to a tenth (as pretraining)
    # the share of episodes (DAgger) and scenes (pretraining) that begin with a detour: 1 to detour_steps steps of
    # one random action, so that the student also learns, from the teacher's labels, its way back from states far
    # off the teacher's path (see Detour)
    detours: float = 0.0
    detour_steps: int = 15
    command: str = ""


class Teacher:
    """Labels states: a state bundle fed with proprio + privileged vector, or the scripted expert."""

    def __init__(self, spec: str, task: str | None, env: gym.Env) -> None:
        self.spec = spec
        if spec == "expert":
            if task is None:
                raise ValueError("distilling the scripted expert needs --task")
            self.task, self.bundle, self.expert = task, None, make_expert(task, env)
        else:
            self.bundle = load(spec, robot=env.unwrapped.config)
            if "privileged" not in self.bundle.obs_spec.keys:
                raise ValueError(f"{spec}: the teacher must be a state policy (proprio + privileged)")
            if task is not None and task != self.bundle.task:
                raise ValueError(f"{spec} is a {self.bundle.task!r} policy, not {task!r}")
            self.task, self.expert = self.bundle.task, None

    def reset(self) -> None:
        if self.expert is not None:
            self.expert.reset()

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        if self.expert is not None:
            return np.clip(np.asarray(self.expert.act(obs, info), dtype=np.float32), -1, 1)
        return self.bundle.act({"proprio": obs["proprio"], "privileged": info["privileged"]["vector"]})


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


class Dataset:
    """Aggregated (rgb, depth, proprio, teacher action, privileged) samples, grown in place."""

    FIELDS = ("rgb", "depth", "proprio", "action", "privileged")

    def __init__(self) -> None:
        self.rgb: list[np.ndarray] = []
        self.depth: list[np.ndarray] = []
        self.proprio: list[np.ndarray] = []
        self.action: list[np.ndarray] = []
        self.privileged: list[np.ndarray] = []

    def add(self, obs: dict[str, np.ndarray], action: np.ndarray, privileged: np.ndarray) -> None:
        self.rgb.append(obs["rgb"])
        self.depth.append(obs["depth"].astype(np.float16))
        self.proprio.append(obs["proprio"].astype(np.float32))
        self.action.append(action.astype(np.float32))
        self.privileged.append(np.asarray(privileged, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.action)

    def arrays(self, start: int = 0) -> tuple[np.ndarray, ...]:
        """rgb, depth, proprio, action, privileged of samples ``start ..``."""
        return tuple(np.stack(getattr(self, k)[start:]) for k in self.FIELDS)

    def save(self, path: Path, start: int = 0) -> None:
        """Samples ``start ..`` to ``path`` (.npz)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_npz(path, dict(zip(self.FIELDS, self.arrays(start), strict=True)))

    def load(self, path: Path) -> int:
        """Append the samples of a file written by :meth:`save`; returns how many."""
        with np.load(path) as f:
            arrays = [f[k] for k in self.FIELDS]
        for k, values in zip(self.FIELDS, arrays, strict=True):
            getattr(self, k).extend(values)
        return len(arrays[0])


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
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


class Distillation:
    def __init__(self, config: DistillConfig) -> None:
        if config.keep_every < 1:
            raise ValueError(f"keep_every must be >= 1, got {config.keep_every}")
        if not 0.0 <= config.detours <= 1.0:
            raise ValueError(f"detours is a share of episodes in [0, 1], got {config.detours}")
        if config.detours > 0 and config.detour_steps < 1:
            raise ValueError(f"detour_steps must be >= 1, got {config.detour_steps}")
        if config.pretrain_steps < 0:
            raise ValueError(f"pretrain_steps must be >= 0, got {config.pretrain_steps}")
        self.config = config
        self.code_version = code_version()  # of the code this run started with
        self.out = Path(config.out)
        size = (config.image_size, config.image_size)
        self.env = task_env(
            config.task or self._teacher_task(),
            config.randomization,
            obs_mode="rgbd",
            image_size=size,
            **self.camera_options(),
        )
        self.teacher = Teacher(config.teacher, config.task, self.env)
        self.task = self.teacher.task
        self.obs_spec = ObsSpec.from_space(self.env.observation_space, ["rgb", "depth", "proprio"])
        self.rng = np.random.default_rng(config.seed)
        torch.manual_seed(config.seed)
        action_dim = int(self.env.action_space.shape[0])
        far = float(self.env.unwrapped.camera_config.depth_range[1])
        _, info = self.env.reset(seed=DISTILL_SEED - 1)
        self.priv_dim = len(info["privileged"]["vector"]) if config.aux_weight > 0 else 0
        self.proprio_mean = np.zeros(self.obs_spec.shapes["proprio"], np.float32)
        self.proprio_std = np.ones(self.obs_spec.shapes["proprio"], np.float32)
        self.first_iteration = 0
        # DAgger sample files (as paths relative to the working directory, like --out) in self.data, in order:
        # an --init bundle's (read in run) and then this run's, one per iteration (OUT/samples/iteration-N.npz)
        self.sample_files: list[str] = []
        if config.init is not None:
            self.student = self._initial_student(config.init)
        else:
            self.student = RGBDStudent(
                size,
                self.obs_spec.shapes["proprio"][0],
                action_dim,
                depth_max=min(far, 3.0),
                aux_dim=self.priv_dim,
                encoder=config.encoder,
                channels=tuple(config.channels),
                coordinates=config.coordinates,
            )
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=config.learning_rate)
        self.augment = colour_augmentation() if config.augment else None
        self.data = Dataset()
        self.priv_mean, self.priv_std = 0.0, 1.0
        self.history: list[dict[str, Any]] = []
        self.best = {"success_rate": -1.0, "iteration": None}
        self.episodes = 0
        self.pretraining: dict[str, Any] | None = None

    def _initial_student(self, path: str) -> RGBDStudent:
        """The student of the bundle ``path``, checked against this run (task, observation, camera, auxiliary
        head); its proprioception normalization is kept, and the DAgger iterations continue its count."""
        try:
            bundle = load(path, robot=self.env.unwrapped.config, observation_space=self.env.observation_space)
        except BundleError as e:
            raise BundleError(f"--init {path}: cannot continue this student: {e}") from e
        meta = bundle.meta  # load() checked the robot and the observation shapes
        problems = []
        if not isinstance(bundle.network, RGBDStudent):
            problems.append("it is not a camera student")
        if bundle.task != self.task:
            problems.append(f"its task is {bundle.task!r}, not {self.task!r}")
        camera = meta.get("camera") or {"supersample": 1, "crop": None}
        if camera != self.camera_options():
            problems.append(f"its camera is {camera}, this run's {self.camera_options()} (--supersample, --crop)")
        if int(meta["network"].get("aux_dim", 0)) != self.priv_dim:
            problems.append(f"its auxiliary head reads {meta['network'].get('aux_dim', 0)} values, not {self.priv_dim}")
        if problems:
            raise BundleError(f"--init {path}: cannot continue this student: " + "; ".join(problems))
        mean, std = bundle.normalization
        self.proprio_mean, self.proprio_std = mean.reshape(self.proprio_mean.shape), std.reshape(self.proprio_std.shape)
        self.first_iteration = int(meta["training"].get("iterations_done", 0))
        self.sample_files = self._earlier_samples(path, meta["training"])
        return bundle.network

    def _earlier_samples(self, path: str, training: dict[str, Any]) -> list[str]:
        """The DAgger sample files the --init student was fitted on, which this run aggregates as DAgger does.
        A bundle that records none (made before they were kept), or whose files are gone, is continued with a
        warning: refitting without them loses the earlier iterations' grasp- and lift-phase data (a grasp
        student continued that way fell from 77 to 68 % success)."""
        recorded = training.get("dagger_samples")
        if recorded is None:
            if self.first_iteration > 0:
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

    def camera_options(self) -> dict[str, Any]:
        """The env's camera options (also recorded in the bundle, so evaluations render the same way)."""
        crop = None if self.config.crop is None else [int(v) for v in self.config.crop]
        return {"supersample": int(self.config.supersample), "crop": crop}

    def _teacher_task(self) -> str:
        if self.config.teacher == "expert":
            raise ValueError("distilling the scripted expert needs --task")
        return load(self.config.teacher).task

    # -- student as a policy ---------------------------------------------------------------------------------
    def student_act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.student.eval()
        return self.student.act(obs, self._norm).numpy()

    def _norm(self, proprio: np.ndarray) -> np.ndarray:
        return np.clip((proprio - self.proprio_mean) / self.proprio_std, -10, 10).astype(np.float32)

    # -- DAgger --------------------------------------------------------------------------------------------------
    def collect(self, steps: int, beta: float, progress: bool) -> dict[str, float]:
        """Run episodes until ``steps`` more samples: the teacher drives with probability ``beta``; every
        ``keep_every``-th state of an episode is kept (the frames of one episode show one scene: on 6000 frames
        from 400 episodes the encoder memorized them, held-out object position no better than a guess; from 3600
        episodes, every 5th frame, it fell to 1.4-1.6 cm)."""
        env, n0, wins, episodes = self.env, len(self.data), 0, 0
        bar = tqdm(
            total=steps,
            desc=f"collect (teacher share {beta:.2f})",
            unit="st",
            disable=not progress,
            leave=False,
            mininterval=2.0,
        )
        while len(self.data) - n0 < steps:
            obs, info = env.reset(seed=DISTILL_SEED + self.config.seed * 100_000 + self.episodes)
            self.episodes += 1
            self.teacher.reset()
            detour = Detour(self.rng, self.config.detours, self.config.detour_steps, self.env.action_space.shape[0])
            k = 0
            while True:
                label = self.teacher.act(obs, info)
                if k % self.config.keep_every == 0:
                    self.data.add(obs, label, info["privileged"]["vector"])
                drive = detour.drive(k)
                k += 1
                if drive is None:
                    drive = label if self.rng.random() < beta else self.student_act(obs)
                obs, _, terminated, truncated, info = env.step(drive)
                bar.update(len(self.data) - n0 - bar.n)
                if terminated or truncated:
                    break
            episodes += 1
            wins += bool(info["is_success"])
        bar.close()
        return {"episodes": episodes, "driver_success_rate": wins / episodes, "samples": len(self.data) - n0}

    def collect_scenes(self, scenes: int, progress: bool, chunk: int = SCENE_CHUNK) -> dict[str, float]:
        """One teacher-labelled frame from each of ``scenes`` new episodes, taken after 0 .. ``pretrain_steps``
        teacher steps (with the default 5, the arm on its way and the object still where it was placed; with the
        length of a teacher episode, any phase of the task): many scenes for few samples, so that the encoder learns
        to find the object rather than remember scenes (on 10k such 64x64 grasp frames a CoordConv encoder
        located the object to 1.7 cm on held-out scenes, with no sign of memorizing). Scenes come in fixed chunks
        of ``chunk`` scenes, each from its own seeds, spread over ``config.workers`` processes: the same
        frames whatever the number of workers."""
        cfg = self.config
        chunks = [
            SceneChunk(
                cfg.teacher,
                self.task,
                cfg.randomization,
                cfg.image_size,
                self.camera_options(),
                cfg.seed,
                start,
                min(chunk, scenes - start),
                cfg.detours,
                cfg.detour_steps if cfg.detours > 0 else 0,
                cfg.pretrain_steps,
            )
            for start in range(0, scenes, chunk)
        ]
        cache = self._scene_cache_folder()
        parts: dict[int, dict[str, np.ndarray]] = {}
        if cache is not None:
            for job in chunks:
                path = cache / job.file_name
                if path.exists():
                    with np.load(path) as f:
                        parts[job.start] = {k: f[k] for k in f.files}
        todo = [job for job in chunks if job.start not in parts]
        n0 = len(self.data)
        bar = tqdm(total=scenes, desc="collect scenes", unit="scene", disable=not progress, mininterval=2.0)
        bar.update(sum(len(part["action"]) for part in parts.values()))

        def keep(job: SceneChunk, part: dict[str, np.ndarray]) -> None:
            parts[job.start] = part
            if cache is not None:
                _save_npz(cache / job.file_name, part)
            bar.update(len(part["action"]))

        if cfg.workers > 1 and len(todo) > 1:
            context = multiprocessing.get_context("spawn")  # each worker builds its own PyBullet client
            with ProcessPoolExecutor(min(cfg.workers, len(todo)), mp_context=context) as pool:
                for job, part in zip(todo, pool.map(_scene_chunk, todo), strict=True):
                    keep(job, part)
        else:
            for job in todo:
                keep(job, _scene_chunk(job, worker=False))
        bar.close()
        for job in chunks:  # in chunk order, whichever came from the cache
            self._add_scenes(parts[job.start])
        return {"scenes": scenes, "samples": len(self.data) - n0, "from_cache": scenes - sum(j.count for j in todo)}

    def _scene_cache_folder(self) -> Path | None:
        """``scene_cache/<key>``: the key digests what the frames depend on (the teacher's files, the task, the
        randomization config, the image size, supersampling and crop, the seed and this module's collection scheme),
        so a cache is never read for another teacher or setting."""
        cfg = self.config
        if cfg.scene_cache is None:
            return None
        digest = hashlib.sha256()
        if self.teacher.bundle is None:
            digest.update(b"expert")
        else:
            for f in sorted(Path(self.teacher.bundle.path).iterdir()):
                if f.is_file():
                    digest.update(f.name.encode() + f.read_bytes())
        randomization = load_randomization(cfg.randomization, self.env.unwrapped.task_name).model_dump(mode="json")
        camera = self.camera_options()
        setting = [self.task, randomization, cfg.image_size, camera, cfg.seed, PRETRAIN_SEED, SCENE_CACHE_VERSION]
        if cfg.detours > 0:  # (without detours, the frames of caches made before detours existed)
            setting.append({"detours": cfg.detours, "detour_steps": cfg.detour_steps})
        if cfg.pretrain_steps != APPROACH_STEPS:  # (likewise: the steps before the option existed)
            setting.append({"pretrain_steps": cfg.pretrain_steps})
        digest.update(json.dumps(setting, sort_keys=True).encode())
        folder = Path(cfg.scene_cache) / f"{self.task}-{digest.hexdigest()[:16]}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _add_scenes(self, part: dict[str, np.ndarray]) -> None:
        for i in range(len(part["action"])):
            obs = {"rgb": part["rgb"][i], "depth": part["depth"][i], "proprio": part["proprio"][i]}
            self.data.add(obs, part["action"][i], part["privileged"][i])

    def _set_statistics(self) -> None:
        """Normalization of proprioception, privileged labels and depth from the data collected so far (a
        student continued with ``init`` keeps its proprioception and depth scales: its weights depend on them)."""
        _, _, proprio, _, privileged = self.data.arrays()
        # robust statistics: an object knocked off the table falls for metres and would set the scale
        self.priv_mean = np.median(privileged, axis=0)
        lo, hi = np.percentile(privileged, [5, 95], axis=0)
        self.priv_std = np.maximum((hi - lo) / 3.29, 1e-3)  # the std of a normal spanning 5-95 %
        if self.config.init is not None:
            return
        self.proprio_mean = proprio.mean(0).astype(np.float32)
        self.proprio_std = np.maximum(proprio.std(0), 1e-3).astype(np.float32)
        # a 2 cm object on a table 0.6 m away is 1 % of a 0-2 m depth scale but a tenth of the data's spread
        depth = np.stack(self.data.depth).astype(np.float32)
        valid = depth[depth > 0]
        self.student.with_depth_standardization(float(valid.mean()), float(max(valid.std(), 1e-3)))

    def fit(self, epochs: int, progress: bool, decay: bool = False) -> float:
        """``epochs`` passes over all data; returns the last batch's loss. ``decay``: the learning rate follows a
        cosine from its value down to a tenth over the passes (then is restored)."""
        rgb, depth, proprio, action, privileged = self.data.arrays()
        priv_n = np.clip((privileged - self.priv_mean) / self.priv_std, -5, 5).astype(np.float32)
        proprio_n = np.clip((proprio - self.proprio_mean) / self.proprio_std, -10, 10).astype(np.float32)
        n, bs = len(action), self.config.batch_size
        self.student.train()
        last = float("nan")
        bar = tqdm(
            total=epochs * ((n + bs - 1) // bs),
            desc="fit student",
            unit="batch",
            disable=not progress,
            leave=False,
            mininterval=2.0,
        )
        total = epochs * ((n + bs - 1) // bs)
        base_lr = self.config.learning_rate
        done = 0
        for _ in range(epochs):
            perm = self.rng.permutation(n)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                images = rgb[idx]
                if self.augment is not None:
                    images = np.stack([self.augment(image=im)["image"] for im in images])
                pred, aux = self.student.forward_with_aux(
                    torch.from_numpy(images),
                    torch.from_numpy(depth[idx].astype(np.float32)),
                    torch.from_numpy(proprio_n[idx]),
                )
                loss = ((pred - torch.from_numpy(action[idx])) ** 2).mean()
                if aux is not None:
                    loss = loss + self.config.aux_weight * ((aux - torch.from_numpy(priv_n[idx])) ** 2).mean()
                if decay:
                    for group in self.optimizer.param_groups:
                        group["lr"] = base_lr * (0.1 + 0.45 * (1 + math.cos(math.pi * done / total)))
                done += 1
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                last = float(loss.detach())
                bar.update(1)
        bar.close()
        for group in self.optimizer.param_groups:
            group["lr"] = base_lr
        return last

    def evaluate(self, episodes: int) -> dict[str, Any]:
        """Held-out success of the student driving alone; also how well its auxiliary head reads the privileged
        state from each episode's first frame (physical units; for the grasp, the object position error in m)."""
        env = self.env
        wins, lengths, aux_errors = 0, [], []
        for i in range(episodes):
            obs, info = env.reset(seed=EVAL_SEED + i)
            if self.priv_dim:
                aux_errors.append(self.student_privileged(obs) - info["privileged"]["vector"])
            n = 0
            while True:
                obs, _, terminated, truncated, info = env.step(self.student_act(obs))
                n += 1
                if terminated or truncated:
                    break
            wins += bool(info["is_success"])
            lengths.append(n)
        return {
            "episodes": episodes,
            "success_rate": wins / episodes,
            "success_ci95": list(wilson_interval(wins, episodes)),
            "mean_episode_length": float(np.mean(lengths)),
            **self._aux_report(aux_errors, info["privileged"]),
        }

    def student_privileged(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The student's auxiliary estimate of the privileged vector (physical units) from one observation."""
        self.student.eval()
        with torch.no_grad():
            _, aux = self.student.forward_with_aux(*self.student.inputs(obs, self._norm))
        return aux[0].numpy() * self.priv_std + self.priv_mean

    @staticmethod
    def _aux_report(errors: list[np.ndarray], privileged: dict[str, Any]) -> dict[str, Any]:
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

    def run(self, progress: bool = True) -> dict[str, Any]:
        cfg = self.config
        if (self.out / "report.json").exists():
            raise FileExistsError(f"{self.out} already holds a distillation run; choose another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        per_iteration = max(1, cfg.steps // cfg.iterations)
        if cfg.pretrain_scenes > 0:
            pre = self.collect_scenes(cfg.pretrain_scenes, progress)
            self._set_statistics()
            if cfg.init is None:  # a continued student was fitted on them already
                pre["loss"] = self.fit(cfg.pretrain_epochs, progress, decay=True)
                self.write_bundle(self.out / "pretrained")  # DAgger can start from it later: --init RUN/pretrained
            pre["wall_s"] = round(time.monotonic() - started, 1)
            self.pretraining = pre
            if progress and "loss" in pre:
                tqdm.write(f"pretrained on {pre['samples']} scenes: loss {pre['loss']:.3f}")
        for f in self.sample_files:  # an --init student's DAgger samples
            n = self.data.load(Path(f))
            if progress:
                tqdm.write(f"aggregated {n} DAgger samples of {cfg.init} from {f}")
        for it in range(self.first_iteration, self.first_iteration + cfg.iterations):
            beta = 0.5**it
            n0 = len(self.data)
            collected = self.collect(per_iteration, beta, progress)
            samples = self.out / "samples" / f"iteration-{it}.npz"  # for runs that continue this one (--init)
            self.data.save(samples, start=n0)
            self.sample_files.append(str(samples))
            if it == self.first_iteration:
                self._set_statistics()
            loss = self.fit(cfg.epochs, progress, decay=cfg.lr_decay)
            result = self.evaluate(cfg.eval_episodes)
            result.update(
                iteration=it,
                beta=beta,
                loss=loss,
                samples=len(self.data),
                collect=collected,
                wall_s=round(time.monotonic() - started, 1),
            )
            self.history.append(result)
            if progress:
                where = result.get("object_position_error_at_reset_m")
                located = f", object located to {where['median'] * 100:.1f} cm (median)" if where else ""
                tqdm.write(
                    f"iteration {it}: {len(self.data)} samples, held-out success {result['success_rate']:.2f}{located}"
                )
            if result["success_rate"] > self.best["success_rate"]:
                self.best = {"success_rate": result["success_rate"], "iteration": it}
            kept = self.write_bundle(self.out / "iterations" / str(it))  # all kept: 50-episode figures vary
            if self.best["iteration"] == it:
                shutil.copytree(kept, self.out / "bundle", dirs_exist_ok=True)
            (self.out / "eval.json").write_text(json.dumps({"best": self.best, "history": self.history}, indent=2))
        report = {
            "config": asdict(cfg),
            "best": self.best,
            "pretraining": self.pretraining,
            "history": self.history,
            "wall_s": round(time.monotonic() - started, 1),
            "bundle": str(self.out / "bundle"),
        }
        (self.out / "report.json").write_text(json.dumps(report, indent=2))
        self.env.close()
        return report

    def write_bundle(self, path: Path) -> Path:
        cfg = self.config
        core = self.env.unwrapped
        randomization = load_randomization(cfg.randomization, core.task_name).model_dump(mode="json")
        return save_bundle(
            path,
            network=self.student,
            network_spec=self.student.spec(),
            task=self.task,
            obs_spec=self.obs_spec,
            action_dim=int(self.env.action_space.shape[0]),
            robot=core.config,
            normalization={"mean": self.proprio_mean, "std": self.proprio_std},
            randomization={"source": cfg.randomization, "config": randomization},
            camera=self.camera_options(),
            training={
                "command": cfg.command,
                "method": "dagger",
                "teacher": cfg.teacher,
                "seed": cfg.seed,
                "steps": len(self.data),
                "iterations_done": self.first_iteration + len(self.history),
                "continued_from": cfg.init,
                "dagger_samples": list(self.sample_files),
                "held_out_success": self.best["success_rate"] if self.best["iteration"] is not None else None,
                "code_version": self.code_version,
            },
        )


def _scene_chunk(chunk: SceneChunk, worker: bool = True) -> dict[str, np.ndarray]:
    """Frames of scenes ``start .. start + count`` of a run seeded ``seed`` (see
    :meth:`Distillation.collect_scenes`). The teacher drives a state env (it reads the state, not the camera); the
    camera renders only the frame that is kept. ``worker``: running in a worker process (torch on one core)."""
    if worker:
        torch.set_num_threads(1)
    size = (chunk.image_size, chunk.image_size)
    env = task_env(chunk.task, chunk.randomization, obs_mode="state", image_size=size, **chunk.camera)
    teacher = Teacher(chunk.teacher, chunk.task, env)
    rng = np.random.default_rng([chunk.seed, chunk.start])
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("rgb", "depth", "proprio", "action", "privileged")}
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
            out["proprio"].append(obs["proprio"])
            out["action"].append(teacher.act(obs, info))
            out["privileged"].append(np.asarray(info["privileged"]["vector"], dtype=np.float32))
    finally:
        env.close()
    return {k: np.stack(v) for k, v in out.items()}


def distill(config: DistillConfig, progress: bool = True) -> dict[str, Any]:
    if not config.command:
        config.command = " ".join(shlex.quote(a) for a in ["s2r", *sys.argv[1:]])
    return Distillation(config).run(progress)

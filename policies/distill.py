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

import json
import math
import shlex
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from policies.bundle import code_version, save_bundle
from policies.cluster import Executor, FolderValue, module_bytes, one_thread, run_until
from policies.dagger_episodes import (
    DAGGER_JOB_EPISODES,
    DISTILL_SEED,
    DaggerJob,
    DaggerSetting,
    dagger_episode,
    normalize_proprio,
    run_dagger_job,
)
from policies.distill_config import DistillConfig
from policies.distill_data import (
    SCENE_CHUNK,
    Dataset,
    SceneChunk,
    Teacher,
    TrainingAugmentation,
    aux_report,
    collect_chunks,
    earlier_samples,
    record_surfaces,
    save_npz,
    scene_cache_folder,
)
from policies.episodes import run_episode
from policies.loader import load
from policies.rollout import wilson_interval
from policies.student import RGBDStudent
from policies.train import EVAL_SEED
from robot.config_file import shipped_robot
from robot.spec import BundleError, ObsSpec
from sim.envs.factory import robot_kwargs, task_env
from sim.randomization.config import load_randomization


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
        self.robot = self._teacher_robot()
        self.env = task_env(
            config.task or self._teacher_task(),
            config.randomization,
            obs_mode="rgbd",
            image_size=size,
            **robot_kwargs(self.robot),
            **self.camera_options(),
        )
        record_surfaces(self.env)
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
        self.augment = TrainingAugmentation.for_run(config.augment, config.surface_overlay, config.seed, self.env)
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
        self.sample_files = earlier_samples(path, meta["training"], self.first_iteration > 0)
        return bundle.network

    def camera_options(self) -> dict[str, Any]:
        """The env's camera options (also recorded in the bundle, so evaluations render the same way)."""
        crop = None if self.config.crop is None else [int(v) for v in self.config.crop]
        return {"supersample": int(self.config.supersample), "crop": crop}

    def _teacher_task(self) -> str:
        if self.config.teacher == "expert":
            raise ValueError("distilling the scripted expert needs --task")
        return load(self.config.teacher).task

    def _teacher_robot(self) -> str | None:
        """The robot the teacher bundle was trained on (a shipped hardware config; the student is made for the same
        one), or None for the scripted expert and for a robot without a shipped config (the task's own robot)."""
        if self.config.teacher == "expert":
            return None
        return shipped_robot(load(self.config.teacher).meta["robot"]["name"])

    # -- student as a policy ---------------------------------------------------------------------------------
    def student_act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.student.eval()
        return self.student.act(obs, self._normalize).numpy()

    def _normalize(self, proprio: np.ndarray) -> np.ndarray:
        return normalize_proprio(proprio, self.proprio_mean, self.proprio_std)

    # -- DAgger --------------------------------------------------------------------------------------------------
    def collect(self, steps: int, beta: float, progress: bool) -> dict[str, float]:
        """Run collection episodes (:mod:`policies.dagger_episodes`) until ``steps`` more samples, here or over
        ``config.workers`` processes or a Ray cluster (``config.ray``): the same episodes either way."""
        cfg, n0, first = self.config, len(self.data), self.episodes
        desc = f"collect (teacher share {beta:.2f})"
        bar = tqdm(total=steps, desc=desc, unit="st", disable=not progress, leave=False, mininterval=2.0)
        setting = self._dagger_setting()
        executor = Executor(cfg.workers, cfg.ray)
        if executor.remote or executor.workers > 1:
            student = module_bytes(self.student)
            template = DaggerJob(setting, student, self.proprio_mean, self.proprio_std, beta, 0, 0)
            episodes = run_until(
                run_dagger_job,
                lambda f, count: replace(template, first=first + f, episodes=count),
                lambda episode: episode.size,
                steps,
                executor,
                DAGGER_JOB_EPISODES,
                lambda total: bar.update(min(total, steps) - bar.n),
            )
        else:
            episodes, done = [], 0
            with one_thread():  # as the jobs run: the same numbers
                while done < steps:
                    index = first + len(episodes)
                    episodes.append(dagger_episode(self.env, self.teacher, self.student_act, setting, beta, index))
                    done += episodes[-1].size
                    bar.update(episodes[-1].size)
        bar.close()
        for episode in episodes:
            for i in range(episode.size):
                obs = {k: episode.samples[k][i] for k in ("rgb", "depth", "proprio")}
                self.data.add(obs, *(episode.samples[k][i] for k in ("action", "privileged", "surface")))
        self.episodes += len(episodes)
        wins = sum(e.success for e in episodes)
        return {"episodes": len(episodes), "driver_success_rate": wins / len(episodes), "samples": len(self.data) - n0}

    def _dagger_setting(self) -> DaggerSetting:
        """What the collection episodes depend on; the teacher's files by value for a cluster's workers."""
        cfg, bundle = self.config, self.teacher.bundle
        teacher = FolderValue.read(bundle.path) if cfg.ray is not None and bundle is not None else cfg.teacher
        return DaggerSetting(
            teacher,
            self.task,
            self.env.unwrapped.randomization,
            cfg.image_size,
            self.camera_options(),
            self.robot,
            cfg.keep_every,
            cfg.detours,
            cfg.detour_steps,
            cfg.seed,
        )

    def collect_scenes(self, scenes: int, progress: bool, chunk: int = SCENE_CHUNK) -> dict[str, float]:
        """One teacher-labelled frame from each of ``scenes`` new episodes, taken after 0 .. ``pretrain_steps``
        teacher steps (with the default 5, the arm on its way and the object still where it was placed; with the
        length of a teacher episode, any phase of the task): many scenes for few samples, so that the encoder learns
        to find the object rather than remember scenes (docs/design-notes.md). Scenes come in fixed chunks
        of ``chunk`` scenes, each from its own seeds, spread over ``config.workers`` processes or a Ray cluster
        (``config.ray``; the teacher's files go by value): the same frames whatever the number of workers."""
        cfg = self.config
        bundle = self.teacher.bundle
        teacher = FolderValue.read(bundle.path) if cfg.ray is not None and bundle is not None else cfg.teacher
        chunks = [
            SceneChunk(
                teacher,
                self.task,
                self.env.unwrapped.randomization,  # resolved: by value for a cluster's workers
                cfg.image_size,
                self.camera_options(),
                cfg.seed,
                start,
                min(chunk, scenes - start),
                cfg.detours,
                cfg.detour_steps if cfg.detours > 0 else 0,
                cfg.pretrain_steps,
                self.robot,
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
                save_npz(cache / job.file_name, part)
            bar.update(len(part["action"]))

        collect_chunks(todo, Executor(cfg.workers, cfg.ray), keep)
        bar.close()
        for job in chunks:  # in chunk order, whichever came from the cache
            self._add_scenes(parts[job.start])
        return {"scenes": scenes, "samples": len(self.data) - n0, "from_cache": scenes - sum(j.count for j in todo)}

    def _scene_cache_folder(self) -> Path | None:
        """``scene_cache/<key>`` (:func:`policies.distill_data.scene_cache_folder`), or None without a cache."""
        cfg = self.config
        if cfg.scene_cache is None:
            return None
        teacher = None if self.teacher.bundle is None else Path(self.teacher.bundle.path)
        randomization = load_randomization(cfg.randomization, self.env.unwrapped.task_name).model_dump(mode="json")
        detours = {"detours": cfg.detours, "detour_steps": cfg.detour_steps} if cfg.detours > 0 else None
        setting = [self.task, randomization, cfg.image_size, self.camera_options(), cfg.seed]
        return scene_cache_folder(Path(cfg.scene_cache), self.task, teacher, setting, detours, cfg.pretrain_steps)

    def _add_scenes(self, part: dict[str, np.ndarray]) -> None:
        for i in range(len(part["action"])):
            obs = {"rgb": part["rgb"][i], "depth": part["depth"][i], "proprio": part["proprio"][i]}
            self.data.add(obs, part["action"][i], part["privileged"][i], part["surface"][i])

    def set_statistics(self) -> None:
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

    def network_inputs(self, proprio: np.ndarray, privileged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Samples' proprioception and privileged labels as the network reads and predicts them (normalized)."""
        return self._normalize(proprio), np.clip((privileged - self.priv_mean) / self.priv_std, -5, 5).astype("f4")

    def fit(self, epochs: int, progress: bool, decay: bool = False) -> float:
        """``epochs`` passes over all data; returns the last batch's loss. ``decay``: the learning rate follows a
        cosine from its value down to a tenth over the passes (then is restored)."""
        rgb, depth, proprio, action, privileged = self.data.arrays()
        surfaces = self.data.surfaces() if self.augment.overlay is not None else None  # only when repainting
        proprio_n, priv_n = self.network_inputs(proprio, privileged)
        n, bs = len(action), self.config.batch_size
        self.student.train()
        last = float("nan")
        total = epochs * ((n + bs - 1) // bs)
        bar = tqdm(total=total, desc="fit student", unit="batch", disable=not progress, leave=False, mininterval=2.0)
        base_lr = self.config.learning_rate
        done = 0
        for _ in range(epochs):
            perm = self.rng.permutation(n)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                masks = None if surfaces is None else surfaces[idx]
                images, depths = self.augment(rgb[idx], depth[idx], masks)
                pred, aux = self.student.forward_with_aux(
                    torch.from_numpy(images),
                    torch.from_numpy(depths.astype(np.float32)),
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
        aux_errors: list[np.ndarray] = []

        def aux_error(obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
            if self.priv_dim:
                aux_errors.append(self.student_privileged(obs) - info["privileged"]["vector"])

        runs = [
            run_episode(self.env, lambda obs, info: self.student_act(obs), EVAL_SEED + i, on_reset=aux_error)
            for i in range(episodes)
        ]
        wins = sum(r.success for r in runs)
        return {
            "episodes": episodes,
            "success_rate": wins / episodes,
            "success_ci95": list(wilson_interval(wins, episodes)),
            "mean_episode_length": float(np.mean([r.length for r in runs])),
            **aux_report(aux_errors, runs[-1].info["privileged"]),
        }

    def student_privileged(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The student's auxiliary estimate of the privileged vector (physical units) from one observation."""
        self.student.eval()
        with torch.no_grad():
            _, aux = self.student.forward_with_aux(*self.student.inputs(obs, self._normalize))
        return aux[0].numpy() * self.priv_std + self.priv_mean

    def run(self, progress: bool = True) -> dict[str, Any]:
        cfg = self.config
        if (self.out / "report.json").exists():
            raise FileExistsError(f"{self.out} already holds a distillation run; choose another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        per_iteration = max(1, cfg.steps // cfg.iterations)
        if cfg.pretrain_scenes > 0:
            pre = self.collect_scenes(cfg.pretrain_scenes, progress)
            self.set_statistics()
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
                self.set_statistics()
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


def distill(config: DistillConfig, progress: bool = True) -> dict[str, Any]:
    if not config.command:
        config.command = " ".join(shlex.quote(a) for a in ["s2r", *sys.argv[1:]])
    return Distillation(config).run(progress)

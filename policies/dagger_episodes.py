"""DAgger's collection episodes (:meth:`policies.distill.Distillation.collect`): the teacher labels the states (every
``keep_every``-th is kept), and the teacher drives with probability beta at each step, else the student, unless a
detour opens the episode. Each episode draws from its own generator, seeded by the run's seed and the episode's
index, so an episode is the same whether this process or a worker runs it (``--workers``, ``--ray``: the student's
weights, the teacher's files and the resolved randomization go to the workers by value)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from policies.cluster import FolderValue, module_from_bytes, one_thread
from policies.distill_data import Detour, Teacher, record_surfaces, surface_of
from policies.episodes import run_episode
from policies.student import RGBDStudent
from sim.envs.factory import robot_kwargs, task_env
from sim.randomization.config import RandomizationConfig

DISTILL_SEED = 2_000_000  # DAgger episode i of a run seeded s: env seed DISTILL_SEED + s * 100_000 + i
#: Episodes per DAgger job on workers.
DAGGER_JOB_EPISODES = 4
FIELDS = ("rgb", "depth", "proprio", "action", "privileged", "surface")


def normalize_proprio(proprio: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The student's proprioception input: standardized with the run's statistics, clipped to +-10."""
    return np.clip((proprio - mean) / std, -10, 10).astype(np.float32)


@dataclass(frozen=True)
class DaggerSetting:
    """What every collection episode of a run depends on (but the student and beta)."""

    teacher: str | FolderValue  # a bundle or "expert"; by value for a cluster's workers
    task: str
    randomization: RandomizationConfig
    image_size: int
    camera: dict[str, Any]  # the env's camera options (supersample, crop)
    robot: str | None
    keep_every: int
    detours: float
    detour_steps: int
    seed: int  # the run's seed

    def make_env(self) -> gym.Env:
        size = (self.image_size, self.image_size)
        env = task_env(
            self.task, self.randomization, obs_mode="rgbd", image_size=size, **robot_kwargs(self.robot), **self.camera
        )
        return record_surfaces(env)

    def make_teacher(self, env: gym.Env) -> Teacher:
        spec = self.teacher if isinstance(self.teacher, str) else str(self.teacher.path())
        return Teacher(spec, self.task, env)


@dataclass
class DaggerEpisode:
    samples: dict[str, list[np.ndarray]]  # the kept states: FIELDS, as Dataset.add stores them
    success: bool

    @property
    def size(self) -> int:
        return len(self.samples["action"])


def dagger_episode(
    env: gym.Env,
    teacher: Teacher,
    student_act: Callable[[dict[str, np.ndarray]], np.ndarray],
    setting: DaggerSetting,
    beta: float,
    index: int,
) -> DaggerEpisode:
    """Collection episode ``index`` of the run."""
    rng = np.random.default_rng([DISTILL_SEED, setting.seed, index])
    samples: dict[str, list[np.ndarray]] = {k: [] for k in FIELDS}
    detour = Detour(rng, setting.detours, setting.detour_steps, env.action_space.shape[0])
    step = 0

    def drive(obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        nonlocal step
        label = teacher.act(obs, info)
        if step % setting.keep_every == 0:
            for key in ("rgb", "depth", "proprio"):
                samples[key].append(obs[key])
            samples["action"].append(label)
            samples["privileged"].append(info["privileged"]["vector"])
            samples["surface"].append(surface_of(env, obs["rgb"]))
        action = detour.drive(step)
        step += 1
        if action is None:
            action = label if rng.random() < beta else student_act(obs)
        return action

    teacher.reset()
    ran = run_episode(env, drive, DISTILL_SEED + setting.seed * 100_000 + index)
    return DaggerEpisode(samples, bool(ran.success))


@dataclass(frozen=True)
class DaggerJob:
    """Collection episodes ``first .. first + episodes - 1`` with this student (its weights and the
    proprioception statistics it was fitted with) and teacher share ``beta``."""

    setting: DaggerSetting
    student: bytes  # the RGBDStudent (policies.cluster.module_bytes)
    proprio_mean: np.ndarray
    proprio_std: np.ndarray
    beta: float
    first: int
    episodes: int


def student_policy(student: RGBDStudent, mean: np.ndarray, std: np.ndarray) -> Callable[[dict], np.ndarray]:
    """The student's action for an observation, its proprioception standardized with ``mean`` and ``std``."""
    student.eval()
    return lambda obs: student.act(obs, lambda p: normalize_proprio(p, mean, std)).numpy()


def run_dagger_job(job: DaggerJob) -> list[DaggerEpisode]:
    """The job's episodes, in order (in a worker; torch on one thread, as the collection in the driver)."""
    env = job.setting.make_env()
    try:
        teacher = job.setting.make_teacher(env)
        act = student_policy(module_from_bytes(job.student), job.proprio_mean, job.proprio_std)
        with one_thread():
            return [
                dagger_episode(env, teacher, act, job.setting, job.beta, job.first + i) for i in range(job.episodes)
            ]
    finally:
        env.close()

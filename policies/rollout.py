"""Run a policy for a number of seeded episodes, optionally recording the camera, and summarize the results."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from policies.episodes import run_episode
from real.video import Mp4Writer
from sim import TASK_IDS  # importing sim registers the envs
from sim.envs.factory import robot_kwargs
from sim.randomization.dynamics import DynamicsObservation, DynamicsSpec


class EpisodePolicy(Protocol):
    def reset(self) -> None: ...
    def act(self, obs: dict, info: dict) -> np.ndarray: ...


class BundleEpisodePolicy:
    """Adapts a loaded bundle (``act(observation)``, ``reset()``) to the episode runner (``act(observation, info)``)."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def reset(self) -> None:
        self.policy.reset()

    def act(self, obs: dict, info: dict) -> np.ndarray:
        return self.policy.act(obs)


def make_expert(task: str, env: gym.Env) -> EpisodePolicy:
    """The scripted expert of ``task``, configured from the env's robot (the env's ``scripted_expert()``)."""
    if env.unwrapped.task_name != task:
        raise ValueError(f"an expert for {task!r} asked of a {env.unwrapped.task_name!r} env")
    return env.unwrapped.scripted_expert()


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    length: int
    episode_return: float
    domain: dict[str, Any]


@dataclass
class RolloutSummary:
    task: str
    policy: str
    episodes: int
    success_rate: float
    success_ci95: tuple[float, float]
    mean_episode_length: float
    mean_return: float
    seed: int
    randomization: str = "none"
    per_episode: list[EpisodeResult] = field(default_factory=list)
    estimate_traces: list[dict[str, Any]] = field(default_factory=list)  # online estimates of mu (s2r eval --adapt)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


class VideoRecorder(Mp4Writer):
    """Writes a rollout's RGB frames to an H.264 MP4 file (:class:`real.video.Mp4Writer`)."""


def run_policy(
    task: str,
    episodes: int,
    seed: int,
    make_policy: Callable[[gym.Env], EpisodePolicy],
    policy_name: str,
    obs_mode: str = "state",
    video: Path | None = None,
    video_episodes: int | None = None,
    progress: bool = True,
    randomization: str | Path = "none",
    domain: str | Path | dict | None = None,
    image_size: tuple[int, int] = (64, 64),
    camera: dict[str, Any] | None = None,
    dynamics: DynamicsSpec | None = None,
    on_step: Callable[[int, dict, dict], None] | None = None,
    dataset: Path | None = None,
    robot: str | None = None,
) -> RolloutSummary:
    """Run the policy that ``make_policy(env)`` builds for ``episodes`` episodes with seeds ``seed, seed+1, ...``.

    ``video``: MP4 path for the camera view of the first ``video_episodes`` episodes (all if None).
    ``randomization``: ``"none"`` (the nominal domain), ``"default"`` or a YAML path; ``domain`` pins values.
    ``image_size``: (width, height) of rgbd observations; ``camera``: the env's camera options (``supersample``,
    ``crop``: :meth:`sim.envs.robot_env.RobotEnv.camera_observation`). ``dynamics``: the observation
    also holds the dynamics parameters mu, normalized with these ranges (a universal policy's,
    :mod:`sim.randomization.dynamics`).
    ``on_step(episode, obs, info)`` is called after every action the policy chose, with the observation it chose
    it from. ``dataset``: write the episodes as a LeRobotDataset there (:mod:`real.lerobot_dataset`: joint state,
    commanded joint targets and the camera view of every step). ``robot``: simulate this robot (a hardware config
    name) instead of the task's own.
    """
    if task not in TASK_IDS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_IDS)}")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = gym.make(
        TASK_IDS[task],
        obs_mode=obs_mode,
        render_mode="rgb_array" if video or dataset else None,
        randomization=randomization,
        domain=domain,
        image_size=image_size,
        **(camera or {}),
        **robot_kwargs(robot),
    )
    if dynamics is not None:
        env = DynamicsObservation(env, dynamics)
    policy = make_policy(env)
    recorder = VideoRecorder(video, env.metadata["render_fps"]) if video else None
    recorded: list[dict[str, list]] = []
    results: list[EpisodeResult] = []
    bar = tqdm(
        total=episodes, desc=f"{task} {policy_name}", unit="ep", disable=not progress, leave=False, mininterval=1.0
    )
    try:
        for i in range(episodes):
            filmed = recorder is not None and (video_episodes is None or i < video_episodes)
            hooks = _EpisodeHooks(env, policy, i, recorder if filmed else None, on_step, dataset is not None)
            ran = run_episode(env, policy.act, seed + i, hooks.on_reset, hooks.on_step, hooks.after_step)
            if dataset is not None:
                recorded.append(hooks.recorded)
            results.append(
                EpisodeResult(ran.seed, ran.success, ran.length, ran.episode_return, dict(ran.info["domain"]))
            )
            bar.update(1)
            bar.set_postfix(success=f"{np.mean([r.success for r in results]):.2f}")
    finally:
        bar.close()
        if recorder is not None:
            recorder.close()
        config = env.unwrapped.config
        env.close()
    if dataset is not None:
        from real.lerobot_dataset import write_lerobot

        sources = [
            f"s2r eval: {policy_name} on {task}, seeds {seed}..{seed + episodes - 1}, randomization {randomization}"
        ]
        write_lerobot(recorded, config, task, float(config.control.rate_hz), Path(dataset), sources)
    return summarize(task, policy_name, results, seed, randomization)


def summarize(
    task: str, policy_name: str, results: list[EpisodeResult], seed: int, randomization: str | Path
) -> RolloutSummary:
    """The :class:`RolloutSummary` of episodes ``results`` (in seed order, the first seeded ``seed``)."""
    wins = sum(r.success for r in results)
    return RolloutSummary(
        task=task,
        policy=policy_name,
        episodes=len(results),
        success_rate=wins / len(results),
        success_ci95=wilson_interval(wins, len(results)),
        mean_episode_length=float(np.mean([r.length for r in results])),
        mean_return=float(np.mean([r.episode_return for r in results])),
        seed=seed,
        randomization=str(randomization),
        per_episode=results,
    )


class _EpisodeHooks:
    """What :func:`run_policy` does around each step of episode ``index``: the policy reset, the video frames, the
    caller's ``on_step``, and (``record``) the LeRobot frames: the measured joint state (wheels: velocities) and
    camera view before each action, and the joint targets it commanded."""

    def __init__(
        self,
        env: gym.Env,
        policy: EpisodePolicy,
        index: int,
        recorder: VideoRecorder | None,
        on_step: Callable[[int, dict, dict], None] | None,
        record: bool,
    ) -> None:
        self.env, self.policy, self.index, self.recorder = env, policy, index, recorder
        self.user_on_step, self.record = on_step, record
        self.recorded: dict[str, list] = {"state": [], "action": [], "images": []}

    def on_reset(self, obs: dict, info: dict) -> None:
        self.policy.reset()
        if self.recorder is not None:
            self.recorder.add(self.env.render())

    def on_step(self, obs: dict, info: dict, action: np.ndarray) -> None:
        if self.user_on_step is not None:
            self.user_on_step(self.index, obs, info)
        if self.record:
            base = self.env.unwrapped
            reading = base.robot.read()
            velocity = np.array([m.mode.value == "velocity" for m in base.config.motors])
            self.recorded["state"].append(np.where(velocity, reading.velocity, reading.position))
            self.recorded["images"].append(self.env.render())

    def after_step(self, obs: dict, info: dict) -> None:
        if self.record:
            self.recorded["action"].append(self.env.unwrapped.robot.last_command.copy())
        if self.recorder is not None:
            self.recorder.add(self.env.render())


def run_expert(task: str, episodes: int, seed: int, **kwargs: Any) -> RolloutSummary:
    """Run the scripted expert of ``task`` (see :func:`run_policy` for the keyword arguments)."""
    return run_policy(task, episodes, seed, lambda env: make_expert(task, env), "scripted_expert", **kwargs)

"""``s2r train``: state policies for the randomized tasks with stable-baselines3 (PPO or SAC), shipped as bundles.

What stable-baselines3 provides is used as is: the algorithms, vectorized environments (one subprocess per
core), TensorBoard logging, saving and loading. Built here on top:

- behaviour-cloning warm start (``bc_demos``): the scripted expert's successful episodes, under the same
  randomization, pretrain the actor (and, for PPO, the value function on the demonstrations' discounted returns)
  before reinforcement learning fine-tunes it. PPO from scratch had learned nothing on the grasp task after 80k
  steps (3 minutes here); the warm-started actor starts above 90 % and RL keeps or improves it;
- fixed observation normalization, measured on the demonstrations (or on random-action rollouts) and stored in the
  bundle, so the deployed policy normalizes exactly as in training;
- evaluation on a fixed set of held-out seeds every ``eval_every`` steps, a progress bar with the training success
  rate, checkpoints, ``resume``; the best evaluated policy becomes the bundle (``OUT/bundle``).
"""

from __future__ import annotations

import glob
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor
from torch import nn
from tqdm import tqdm

from policies.bundle import code_version, save_bundle
from policies.episodes import run_episode
from policies.rollout import BundleEpisodePolicy, make_expert, wilson_interval
from policies.sb3_actor import (
    Demonstrations,
    FixedNormalizer,
    FlattenKeys,
    behaviour_clone,
    export_actor,
    load_actor,
    model_actor,
)
from policies.train_callbacks import EPOptFilter, TrainingMonitor
from policies.train_config import TrainConfig
from robot.spec import BundleError, ObsSpec
from sim.envs.factory import robot_kwargs, task_env
from sim.observation_history import memory_readings
from sim.randomization.config import RandomizationConfig, load_randomization
from sim.randomization.dynamics import DynamicsSpec

#: Seeds of held-out evaluation episodes start here; training and demonstrations never use them.
EVAL_SEED = 1_000_000
DEMO_SEED = 500_000
ALGOS = ("ppo", "sac")


def state_spec(env: gym.Env) -> ObsSpec:
    """proprio, then what the env's state mode adds (``scan`` for a base with a scanner, else ``privileged``), and
    dynamics and history when the env provides them (a universal policy, a policy with memory)."""
    spaces = env.observation_space.spaces
    keys = ["proprio", "scan" if "scan" in spaces else "privileged"]
    keys += [k for k in ("dynamics", "history") if k in spaces]
    return ObsSpec.from_space(env.observation_space, keys)


@dataclass(frozen=True)
class StateEnv:
    """How a run's state env is made: the task under its randomization, on its robot (a hardware config name;
    None: the task's own), with mu in the observation (``universal``) and ``history`` steps of memory."""

    task: str
    randomization: str | RandomizationConfig = "default"
    universal: bool = False
    history: int = 0
    robot: str | None = None

    @classmethod
    def of(cls, cfg: TrainConfig, randomization: str | RandomizationConfig | None = None) -> StateEnv:
        """The env of a training run (``randomization``: instead of the run's own, e.g. resolved for Ray)."""
        chosen = cfg.randomization if randomization is None else randomization
        return cls(cfg.task, chosen, cfg.universal, cfg.history, cfg.robot)

    def make(self) -> gym.Env:
        kwargs = robot_kwargs(self.robot)
        return task_env(self.task, self.randomization, universal=self.universal, history=self.history, **kwargs)


def collect_demonstrations(
    state_env: StateEnv,
    episodes: int,
    seed: int,
    gamma: float = 0.99,
    progress: bool = True,
    policy: Any | None = None,
) -> Demonstrations:
    """The scripted expert's successful episodes (flattened state observations, actions, discounted returns); with
    ``policy`` (a loaded bundle) that policy's episodes instead, failures too (the returns a critic should expect of
    it)."""
    task = state_env.task
    env = state_env.make()
    spec = state_spec(env)
    expert = make_expert(task, env) if policy is None else BundleEpisodePolicy(policy)
    xs, ys, gs = [], [], []
    wins = 0
    for i in tqdm(range(episodes), desc=f"{task} demonstrations", unit="ep", disable=not progress, leave=False):
        obs, info = env.reset(seed=seed + i)
        expert.reset()
        ep_x, ep_y, ep_r = [], [], []
        while True:
            action = np.asarray(expert.act(obs, info), dtype=np.float32)
            ep_x.append(spec.flatten(obs))
            ep_y.append(np.clip(action, -1.0, 1.0))
            obs, reward, terminated, truncated, info = env.step(action)
            ep_r.append(float(reward))
            if terminated or truncated:
                break
        wins += bool(info["is_success"])
        if info["is_success"] or policy is not None:
            ret, rets = 0.0, []
            for r in reversed(ep_r):
                ret = r + gamma * ret
                rets.append(ret)
            xs += ep_x
            ys += ep_y
            gs += rets[::-1]
    env.close()
    if not xs:
        raise RuntimeError(f"the {task} expert succeeded in none of {episodes} demonstration episodes")
    return Demonstrations(
        np.asarray(xs, np.float32), np.asarray(ys, np.float32), np.asarray(gs, np.float32), episodes, wins
    )


def random_rollout_stats(state_env: StateEnv, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Observation mean and std under uniformly random actions (normalization when there are no demos)."""
    env = state_env.make()
    spec = state_spec(env)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    xs = []
    for _ in range(steps):
        xs.append(spec.flatten(obs))
        obs, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    x = np.asarray(xs)
    return x.mean(0), x.std(0)


# -- evaluation ------------------------------------------------------------------------------------------------


def evaluate_actor(act: Any, state_env: StateEnv, episodes: int, seed: int = EVAL_SEED) -> dict[str, Any]:
    """Success rate (with a 95 % Wilson interval) of ``act(flat_obs) -> action`` on seeds ``seed + i``."""
    env = state_env.make()
    spec = state_spec(env)
    runs = [run_episode(env, lambda obs, info: act(spec.flatten(obs)), seed + i) for i in range(episodes)]
    env.close()
    wins = sum(r.success for r in runs)
    return {
        "episodes": episodes,
        "success_rate": wins / episodes,
        "success_ci95": list(wilson_interval(wins, episodes)),
        "mean_return": float(np.mean([r.episode_return for r in runs])),
        "mean_episode_length": float(np.mean([r.length for r in runs])),
    }


# -- the run -----------------------------------------------------------------------------------------------------


class TrainingRun:
    """One training run in ``config.out``: run.yaml, eval.json, checkpoints/, tb/ and bundle/."""

    def __init__(self, config: TrainConfig) -> None:
        if config.algo not in ALGOS:
            raise ValueError(f"unknown algorithm {config.algo!r}; expected one of {ALGOS}")
        if config.obs != "state":
            raise ValueError("s2r train learns state policies; camera policies come from `s2r distill`")
        if config.steps < 1:
            raise ValueError(f"steps must be >= 1, got {config.steps}")
        if config.history > 0 and config.universal:
            raise ValueError("--history with --universal: a universal policy's estimator is its memory (s2r train-osi)")
        if config.history > 0 and config.demos:
            raise ValueError("--demos with --history: a logged cycle holds no window of the steps before it")
        if config.epopt_epsilon < 1.0 and config.algo != "ppo":
            raise ValueError("EPOpt (--epopt-epsilon < 1) selects whole episodes of on-policy rollouts: use --algo ppo")
        self.config = config
        self.code_version = code_version()  # of the code this run started with
        self.out = Path(config.out)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"success_rate": -1.0, "step": None}
        self.normalization: dict[str, np.ndarray] = {}
        self.started = time.monotonic()
        self.progress = True
        self._context: tuple[Any, dict[str, Any]] | None = None
        self.dynamics: DynamicsSpec | None = None  # the ranges of mu, for a universal policy (set by run())

    # -- environments ----------------------------------------------------------------------------------------
    def _env_factory(self, rank: int, randomization: str | RandomizationConfig):
        cfg, spec = self.config, self.spec

        def make() -> gym.Env:
            torch.set_num_threads(1)
            return FlattenKeys(StateEnv.of(cfg, randomization).make(), spec)

        return make

    def make_vec_env(self) -> VecEnv:
        """The training envs: in this process (one), local processes, or Ray actors (``config.ray``; the
        randomization config goes to them resolved, by value)."""
        cfg = self.config
        if cfg.ray is not None:
            from policies.ray_vec_env import RayVecEnv

            config = load_randomization(cfg.randomization, cfg.task)
            venv: VecEnv = RayVecEnv([self._env_factory(i, config) for i in range(cfg.n_envs)], cfg.ray)
        else:
            fns = [self._env_factory(i, cfg.randomization) for i in range(cfg.n_envs)]
            venv = SubprocVecEnv(fns) if cfg.n_envs > 1 else DummyVecEnv(fns)
        venv.seed(cfg.seed * 1000)
        return VecMonitor(venv)  # episode return and length: TensorBoard's rollout/ep_rew_mean and ep_len_mean

    # -- model -----------------------------------------------------------------------------------------------
    def _new_model(self, venv: VecEnv) -> BaseAlgorithm:
        cfg = self.config
        norm = {k: v.tolist() for k, v in self.normalization.items()}
        common = {"features_extractor_class": FixedNormalizer, "features_extractor_kwargs": norm}
        tb = str(self.out / "tb")
        if cfg.algo == "ppo":
            kwargs = {**common, "net_arch": {"pi": cfg.hidden, "vf": cfg.hidden}, "activation_fn": nn.Tanh}
            kwargs["log_std_init"] = -1.0 if cfg.bc_demos > 0 else 0.0
            return PPO(
                "MlpPolicy",
                venv,
                learning_rate=cfg.learning_rate,
                n_steps=max(64, 2048 // cfg.n_envs),
                batch_size=256,
                n_epochs=5,
                clip_range=0.1,
                target_kl=0.03,
                normalize_advantage=cfg.epopt_epsilon >= 1.0,  # EPOpt normalizes the episodes it keeps
                policy_kwargs=kwargs,
                tensorboard_log=tb,
                seed=cfg.seed,
                verbose=0,
            )
        kwargs = {**common, "net_arch": cfg.hidden, "activation_fn": nn.ReLU}
        return SAC(
            "MlpPolicy",
            venv,
            learning_rate=cfg.learning_rate,
            buffer_size=300_000,
            learning_starts=1000 if cfg.bc_demos > 0 else 5000,
            batch_size=256,
            train_freq=1,
            gradient_steps=1,
            policy_kwargs=kwargs,
            tensorboard_log=tb,
            seed=cfg.seed,
            verbose=0,
        )

    # -- evaluation, checkpoints, bundle ------------------------------------------------------------------------
    def evaluate_and_keep_best(self, model: BaseAlgorithm, step: int) -> dict[str, Any]:
        cfg = self.config
        result = evaluate_actor(model_actor(model), StateEnv.of(cfg), cfg.eval_episodes, EVAL_SEED)
        result.update(step=int(step), wall_s=round(time.monotonic() - self.started, 1))
        self.history.append(result)
        if result["success_rate"] > self.best["success_rate"]:
            self.best = {"success_rate": result["success_rate"], "step": int(step)}
            self.write_bundle(model, self.out / "bundle", step)
        (self.out / "eval.json").write_text(json.dumps({"best": self.best, "history": self.history}, indent=2))
        return result

    def checkpoint(self, model: BaseAlgorithm) -> None:
        folder = self.out / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / f"model_{model.num_timesteps}")
        model.save(folder / "last")
        state = {"num_timesteps": int(model.num_timesteps), "best": self.best, "history": self.history}
        (folder / "state.json").write_text(json.dumps(state, indent=2))

    def _bundle_context(self) -> tuple[Any, dict[str, Any]]:
        """The robot config and the randomization config (as JSON) every bundle of this run records; read once."""
        if self._context is None:
            env = task_env(self.config.task, self.config.randomization, **robot_kwargs(self.config.robot))
            core = env.unwrapped
            self._context = (
                core.config,
                load_randomization(self.config.randomization, core.task_name).model_dump(mode="json"),
            )
            env.close()
        return self._context

    def write_bundle(self, model: BaseAlgorithm, path: Path, step: int) -> None:
        cfg = self.config
        robot, randomization = self._bundle_context()
        mlp, spec = export_actor(model, cfg.hidden)
        save_bundle(
            path,
            network=mlp,
            network_spec=spec,
            task=cfg.task,
            obs_spec=self.spec,
            action_dim=mlp[-1].out_features,
            robot=robot,
            normalization={"mean": self.normalization["mean"], "std": self.normalization["std"]},
            randomization={"source": cfg.randomization, "config": randomization},
            dynamics=self.dynamics.to_dict() if self.dynamics is not None else None,
            memory={"horizon": cfg.history, "readings": list(memory_readings(self.spec.keys + ("effort",)))}
            if cfg.history > 0
            else None,
            training={
                "command": cfg.command,
                "algo": cfg.algo,
                "seed": cfg.seed,
                "steps": int(step),
                "bc_demos": cfg.bc_demos,
                **({"demos": list(cfg.demos)} if cfg.demos else {}),
                **({"continued_from": cfg.init} if cfg.init else {}),
                "held_out_success": self.best["success_rate"],
                "eval_seeds": [EVAL_SEED, EVAL_SEED + cfg.eval_episodes - 1],
                "code_version": self.code_version,
            },
        )

    # -- the whole run -------------------------------------------------------------------------------------------
    def run(self, resume: bool = False, progress: bool = True) -> dict[str, Any]:
        cfg = self.config
        self.progress = progress
        probe = StateEnv.of(cfg).make()
        self.spec = state_spec(probe)
        self.dynamics = probe.dynamics if cfg.universal else None
        probe.close()
        if resume:
            self.out.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(cfg.seed)
            return self._resume(progress)
        if (self.out / "run.yaml").exists():
            raise FileExistsError(f"{self.out} already holds a run; use --resume to continue it or another --out")
        if cfg.demos and cfg.init:
            raise ValueError(
                "--demos and --init cannot be combined: a bundle's critic is fitted to returns, and a log's are unknown"
            )
        init = self._initial_policy() if cfg.init else None  # refused before anything is written
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        report: dict[str, Any] = {}
        demos = None
        if cfg.bc_demos > 0:
            t0 = time.monotonic()
            demos = collect_demonstrations(
                StateEnv.of(cfg), cfg.bc_demos, DEMO_SEED + cfg.seed * 10_000, progress=progress, policy=init
            )
            report["demonstrations"] = {
                "by": cfg.init or "expert",
                "episodes": demos.episodes,
                "successful": demos.successes,
                "samples": len(demos.obs),
                "wall_s": round(time.monotonic() - t0, 1),
            }
        if cfg.demos:
            demos = self._with_logged_demos(demos, report)
        if demos is not None:
            mean, std = demos.obs.mean(0), demos.obs.std(0)
        else:
            mean, std = random_rollout_stats(StateEnv.of(cfg), 5000, cfg.seed)
        if init is not None:
            mean, std = init.normalization  # the actor's inputs stay as it learned them
        self.normalization = {"mean": mean.astype(np.float32), "std": np.maximum(std, 1e-3).astype(np.float32)}
        self._write_run_yaml()
        venv = self.make_vec_env()
        model = self._new_model(venv)
        if init is not None:
            load_actor(model, init.network)
        if demos is not None and (init is None or cfg.algo == "ppo"):
            # from a bundle only PPO's critic learns the bundle's returns; its actor stays as it is
            report["behaviour_cloning"] = behaviour_clone(model, demos, cfg.bc_epochs, cfg.seed, actor=init is None)
        if demos is not None or init is not None:
            report["after_behaviour_cloning"] = self.evaluate_and_keep_best(model, 0)
        model.learn(cfg.steps, callback=self._callbacks(), tb_log_name=cfg.algo, progress_bar=False)
        return self._finish(model, venv, report)

    def _with_logged_demos(self, demos: Demonstrations | None, report: dict[str, Any]) -> Demonstrations:
        """``demos`` (the expert's, or None) joined by the cycles of the run's logged demonstrations (``demos``)."""
        from policies.log_demos import demonstrations_from_logs

        paths = sorted({str(p) for pattern in self.config.demos for p in glob.glob(pattern)} or set(self.config.demos))
        logged = demonstrations_from_logs(paths, self.config.task, self._bundle_context()[0], self.spec)
        report["logged_demonstrations"] = {"logs": paths, "episodes": logged.episodes, "samples": len(logged.obs)}
        if demos is None:
            return logged
        return Demonstrations(
            np.concatenate([demos.obs, logged.obs]),
            np.concatenate([demos.actions, logged.actions]),
            None,  # the logged cycles' returns are unknown: the critic is not fitted to any
            demos.episodes + logged.episodes,
            demos.successes,
        )

    def _initial_policy(self) -> Any:
        """The ``init`` bundle, checked to fit this run: same task and observation, an MLP of the run's widths and
        activation (PPO's tanh, SAC's relu)."""
        from policies.loader import load

        cfg = self.config
        policy = load(cfg.init)
        network = policy.meta["network"]
        activation = "tanh" if cfg.algo == "ppo" else "relu"
        problems = []
        if policy.task != cfg.task:
            problems.append(f"its task is {policy.task}, this run's {cfg.task}")
        if policy.meta["observation"] != self.spec.to_dict():  # what the network takes (a memory's history too)
            theirs, ours = policy.meta["observation"]["shapes"], self.spec.to_dict()["shapes"]
            problems.append(f"its observation {theirs} is not this run's {ours}")
        if network["type"] != "mlp" or list(network["hidden"]) != list(cfg.hidden):
            problems.append(f"its network {network['type']} {network.get('hidden')} is not an MLP {cfg.hidden}")
        elif network["activation"] != activation:
            problems.append(f"its activation {network['activation']} is not {cfg.algo}'s {activation}")
        if problems:
            raise BundleError(f"--init {cfg.init} cannot start this run: {'; '.join(problems)}")
        return policy

    def _resume(self, progress: bool) -> dict[str, Any]:
        cfg = self.config
        saved = yaml.safe_load((self.out / "run.yaml").read_text())
        self.normalization = {k: np.asarray(v, np.float32) for k, v in saved["normalization"].items()}
        state_file = self.out / "checkpoints" / "state.json"
        if not state_file.exists():
            raise FileNotFoundError(f"{self.out}: no checkpoint to resume from (checkpoints/state.json)")
        state = json.loads(state_file.read_text())
        self.best, self.history = state["best"], state["history"]
        venv = self.make_vec_env()
        algo = PPO if cfg.algo == "ppo" else SAC
        model = algo.load(self.out / "checkpoints" / "last", env=venv, device="cpu")
        remaining = cfg.steps - int(state["num_timesteps"])
        if remaining > 0:
            model.learn(remaining, callback=self._callbacks(), reset_num_timesteps=False, tb_log_name=cfg.algo)
        return self._finish(model, venv, {"resumed_from": int(state["num_timesteps"])})

    def _callbacks(self) -> list[BaseCallback]:
        callbacks: list[BaseCallback] = [TrainingMonitor(self)]
        if self.config.epopt_epsilon < 1.0:
            callbacks.insert(0, EPOptFilter(self.config.epopt_epsilon))
        return callbacks

    def _finish(self, model: BaseAlgorithm, venv: VecEnv, report: dict[str, Any]) -> dict[str, Any]:
        self.checkpoint(model)
        if not self.history or self.history[-1]["step"] != model.num_timesteps:
            self.evaluate_and_keep_best(model, model.num_timesteps)
        venv.close()
        report.update(
            best=self.best,
            final=self.history[-1],
            wall_s=round(time.monotonic() - self.started, 1),
            bundle=str(self.out / "bundle"),
        )
        (self.out / "report.json").write_text(json.dumps(report, indent=2))
        return report

    def _write_run_yaml(self) -> None:
        data = {
            "config": asdict(self.config),
            "normalization": {k: v.tolist() for k, v in self.normalization.items()},
            "observation": self.spec.to_dict(),
        }
        (self.out / "run.yaml").write_text(yaml.safe_dump(data, sort_keys=False, width=120))


def train(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) a training run; returns its report (also written to ``OUT/report.json``)."""
    if not config.command:
        config.command = " ".join(shlex.quote(a) for a in ["s2r", *sys.argv[1:]])
    if resume:
        run_file = Path(config.out) / "run.yaml"
        if not run_file.exists():
            raise FileNotFoundError(f"{config.out}: no run.yaml: nothing to resume")
        saved = yaml.safe_load(run_file.read_text())["config"]
        # the run keeps its own settings; only the total steps and where its envs run may change
        config = TrainConfig(**{**saved, "steps": config.steps, "n_envs": config.n_envs, "ray": config.ray})
    return TrainingRun(config).run(resume=resume)

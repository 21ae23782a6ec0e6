"""Callbacks of a training run (:class:`policies.train.TrainingRun`): progress, held-out evaluation and
checkpoints (:class:`TrainingMonitor`), and EPOpt's worst-episode filter (:class:`EPOptFilter`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm


class TrainingMonitor(BaseCallback):
    """Progress bar with the training success rate; held-out evaluation, best bundle and checkpoints."""

    def __init__(self, run: Any) -> None:  # a policies.train.TrainingRun (its config, evaluation, checkpoints)
        super().__init__()
        self.run = run
        self.successes: list[float] = []
        self.bar: tqdm | None = None

    def _on_training_start(self) -> None:
        cfg = self.run.config
        self.bar = tqdm(
            total=cfg.steps,
            initial=self.num_timesteps,
            desc=f"train {cfg.task} {cfg.algo}",
            unit="st",
            mininterval=2.0,
            disable=not self.run.progress,
        )
        self._next_eval = (self.num_timesteps // cfg.eval_every + 1) * cfg.eval_every
        self._next_ckpt = (self.num_timesteps // cfg.checkpoint_every + 1) * cfg.checkpoint_every

    def _on_step(self) -> bool:
        cfg = self.run.config
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if done:
                self.successes.append(float(info.get("is_success", False)))
        assert self.bar is not None
        self.bar.update(self.training_env.num_envs)
        if self.successes and self.n_calls % 200 == 0:
            rate = float(np.mean(self.successes[-100:]))
            self.bar.set_postfix(success=f"{rate:.2f}", episodes=len(self.successes), refresh=False)
            self.logger.record("rollout/success_rate", rate)
        if self.num_timesteps >= self._next_eval:
            self._next_eval += cfg.eval_every
            result = self.run.evaluate_and_keep_best(self.model, self.num_timesteps)
            self.logger.record("eval/success_rate", result["success_rate"])
            self.bar.write(
                f"step {self.num_timesteps}: held-out success {result['success_rate']:.2f} "
                f"(best {self.run.best['success_rate']:.2f} at step {self.run.best['step']})"
            )
        if self.num_timesteps >= self._next_ckpt:
            self._next_ckpt += cfg.checkpoint_every
            self.run.checkpoint(self.model)
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


class EPOptFilter(BaseCallback):
    """EPOpt-epsilon (Rajeswaran et al. 2017, "EPOpt: Learning Robust Neural Network Policies Using Model
    Ensembles", Algorithm 1): each PPO iteration's rollout covers many episodes, each in its own sampled domain;
    only the ``epsilon`` fraction of episodes with the lowest return trains the policy.

    Applied to the rollout buffer after advantages are computed: the other episodes' advantages are set to zero
    (no policy-gradient contribution; their value targets still train the critic) and the kept advantages are
    normalized here, as PPO's own per-batch normalization is turned off. Episodes cut by the rollout boundary
    count as episodes of their own. ``warmup_steps``: train on every episode first, as the paper does.
    """

    def __init__(self, epsilon: float, warmup_steps: int = 0) -> None:
        super().__init__()
        if not 0.0 < epsilon <= 1.0:
            raise ValueError(f"epsilon must be in (0, 1], got {epsilon}")
        self.epsilon = epsilon
        self.warmup_steps = warmup_steps
        self.kept_fraction: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buf = self.model.rollout_buffer
        adv = buf.advantages  # (n_steps, n_envs)
        if self.epsilon >= 1.0 or self.num_timesteps < self.warmup_steps:
            keep = np.ones_like(adv, dtype=bool)
        else:
            keep = np.zeros_like(adv, dtype=bool)
            segments = []  # (return, env, start, stop)
            for e in range(adv.shape[1]):
                inner = np.flatnonzero(buf.episode_starts[1:, e]) + 1
                starts = [0, *inner.tolist(), adv.shape[0]]
                for a, b in zip(starts[:-1], starts[1:], strict=True):
                    segments.append((float(buf.rewards[a:b, e].sum()), e, a, b))
            segments.sort(key=lambda seg: seg[0])
            n_keep = max(1, int(round(self.epsilon * len(segments))))
            for _, e, a, b in segments[:n_keep]:
                keep[a:b, e] = True
        kept = adv[keep]
        adv[~keep] = 0.0
        adv[keep] = (kept - kept.mean()) / (kept.std() + 1e-8)
        self.kept_fraction.append(float(keep.mean()))
        self.logger.record("epopt/kept_fraction", self.kept_fraction[-1])

"""Stable-Baselines3's vector env with each environment in a Ray actor (``s2r train --ray ADDRESS``): SB3's
algorithms unchanged, the environments stepped on a cluster's CPUs. The actors follow SB3's ``SubprocVecEnv``
protocol step for step (an episode's end resets the env in the actor and hands back the terminal observation in
``info``; seeds and options reach the next reset), so a run with the same seeds gives the same transitions as
with local processes (tests/test_cluster.py).

An environment actor that dies takes its episode's state with it: training stops with an error naming it rather
than go on with an env restarted mid-run (the evaluation and scene jobs of :mod:`policies.cluster`, which hold no
such state, are retried instead)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from policies.cluster import ClusterError, connect


class EnvActor:
    """One environment in a Ray actor; its methods are SubprocVecEnv's worker commands."""

    def __init__(self, make: Callable[[], gym.Env]) -> None:
        self.env = make()

    def spaces(self) -> tuple[gym.Space, gym.Space]:
        return self.env.observation_space, self.env.action_space

    def reset(self, seed: int | None, options: dict | None) -> tuple[Any, dict]:
        return self.env.reset(seed=seed, **({"options": options} if options else {}))

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, dict, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        done = terminated or truncated
        info["TimeLimit.truncated"] = truncated and not terminated
        reset_info: dict = {}
        if done:
            info["terminal_observation"] = observation
            observation, reset_info = self.env.reset()
        return observation, reward, done, info, reset_info

    def render(self) -> Any:
        return self.env.render()

    def env_method(self, name: str, args: tuple, kwargs: dict) -> Any:
        return self.env.get_wrapper_attr(name)(*args, **kwargs)

    def get_attr(self, name: str) -> Any:
        return self.env.get_wrapper_attr(name)

    def has_attr(self, name: str) -> bool:
        try:
            self.env.get_wrapper_attr(name)
        except AttributeError:
            return False
        return True

    def set_attr(self, name: str, value: Any) -> None:
        setattr(self.env, name, value)

    def is_wrapped(self, wrapper_class: type[gym.Wrapper]) -> bool:
        from stable_baselines3.common.env_util import is_wrapped

        return is_wrapped(self.env, wrapper_class)

    def close(self) -> None:
        self.env.close()


class RayVecEnv(VecEnv):
    """``len(env_fns)`` environments, each built by its function in its own actor (one CPU) of the Ray cluster at
    ``address`` (:func:`policies.cluster.connect`)."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], address: str) -> None:
        self._ray = ray = connect(address)
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < len(env_fns):  # an actor that never gets a CPU would leave the first reset waiting for ever
            raise ClusterError(
                f"--ray {address}: {len(env_fns)} environments need as many CPUs; the cluster has {cpus:g}"
            )
        actor = ray.remote(num_cpus=1, max_restarts=0)(EnvActor)
        self.actors = [actor.remote(fn) for fn in env_fns]
        self._pending: list[Any] | None = None
        self.closed = False
        try:  # an env that cannot be built (a bad config) fails here, with its own error
            spaces = ray.get([a.spaces.remote() for a in self.actors])
        except ray.exceptions.RayError:
            self._kill()
            raise
        super().__init__(len(env_fns), *spaces[0])

    def _get(self, refs: Any) -> Any:
        try:
            return self._ray.get(refs)
        except self._ray.exceptions.RayActorError as exc:
            self._pending = None
            raise ClusterError(f"an environment actor died ({exc}); its episode is lost: train again") from None

    def _kill(self) -> None:
        for a in self.actors:
            self._ray.kill(a)

    def step_async(self, actions: np.ndarray) -> None:
        self._pending = [a.step.remote(action) for a, action in zip(self.actors, actions, strict=True)]

    def step_wait(self) -> VecEnvStepReturn:
        assert self._pending is not None, "step_wait without step_async"
        results, self._pending = self._get(self._pending), None
        obs, rewards, dones, infos, self.reset_infos = zip(*results, strict=True)
        return _stack(obs, self.observation_space), np.stack(rewards), np.stack(dones), infos

    def reset(self) -> VecEnvObs:
        refs = [a.reset.remote(self._seeds[i], self._options[i]) for i, a in enumerate(self.actors)]
        obs, self.reset_infos = zip(*self._get(refs), strict=True)
        self._reset_seeds()
        self._reset_options()
        return _stack(obs, self.observation_space)

    def close(self) -> None:
        """Close every env and end its actor (all of them, whatever state a failed run left them in)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._ray.get([a.close.remote() for a in self.actors])
        except self._ray.exceptions.RayError:
            pass  # a dead actor has nothing to close
        finally:
            self._kill()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return self._get([a.render.remote() for a in self.actors])

    def has_attr(self, attr_name: str) -> bool:
        return all(self._get([a.has_attr.remote(attr_name) for a in self.actors]))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._get([self.actors[i].get_attr.remote(attr_name) for i in self._get_indices(indices)])

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._get([self.actors[i].set_attr.remote(attr_name, value) for i in self._get_indices(indices)])

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        actors = [self.actors[i] for i in self._get_indices(indices)]
        return self._get([a.env_method.remote(method_name, method_args, method_kwargs) for a in actors])

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._get([self.actors[i].is_wrapped.remote(wrapper_class) for i in self._get_indices(indices)])


def _stack(obs: Sequence[Any], space: gym.Space) -> VecEnvObs:
    """One batch from the envs' observations, as SubprocVecEnv stacks them (dict spaces key by key)."""
    if isinstance(space, gym.spaces.Dict):
        return {key: np.stack([o[key] for o in obs]) for key in space.spaces}
    return np.stack(obs)

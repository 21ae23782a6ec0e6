"""The dynamics parameters mu that a universal policy takes and online system identification estimates.

mu is a handful of domain values per task (masses, frictions, servo gains and strength, latency; wheel radius and
track for the base), following Yu et al. 2017 ("Preparing for the Unknown: Learning a Universal Policy with Online
System Identification"), who feed the policy the physical parameters it was randomized over. Each value is
normalized to [-1, 1] over its training range (log-scaled for log-uniform terms), and extrapolates linearly beyond
it, so a domain outside the training ranges reads outside [-1, 1] rather than being clipped.

The values are read back from the env's resolved parameters (``info["params"]``), so mu is defined for any
domain, pinned, sampled or nominal: a ``set`` term's value is its target, a ``scale`` term's the target divided
by its default, an ``add`` term's the target minus its default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from sim.randomization.config import Choice, LogUniform, Normal, RandomizationConfig, Uniform


@dataclass(frozen=True)
class DynamicsParam:
    """One component of mu: a domain term, its target and operation, and its training range."""

    name: str
    target: str
    operation: str
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class DynamicsSpec:
    """The ordered components of mu for one task."""

    task: str
    params: tuple[DynamicsParam, ...]

    @property
    def names(self) -> list[str]:
        return [q.name for q in self.params]

    def __len__(self) -> int:
        return len(self.params)

    @classmethod
    def for_task(cls, task: str, config: RandomizationConfig, names: tuple[str, ...]) -> DynamicsSpec:
        """mu of ``task`` with the ranges of ``config``; raises ``ValueError`` naming a term the config lacks."""
        terms = {t.name: t for t in config.terms}
        missing = [n for n in names if n not in terms]
        if missing:
            raise ValueError(
                f"the randomization config does not randomize {missing}: a universal policy needs a range for every "
                f"dynamics parameter it takes ({list(names)})"
            )
        params = []
        for name in names:
            term = terms[name]
            low, high, log = _range(term.distribution)
            if term.size is not None:
                raise ValueError(f"dynamics parameter {name!r} must be a scalar term")
            params.append(DynamicsParam(name, term.target, term.operation, low, high, log))
        return cls(task, tuple(params))

    def values(self, params: dict[str, Any], defaults: dict[str, Any]) -> np.ndarray:
        """Physical values of mu (the domain's units) from an env's resolved ``params`` and its ``defaults``."""
        out = np.empty(len(self.params))
        for i, q in enumerate(self.params):
            value, default = float(params[q.target]), float(defaults[q.target])
            if q.operation == "scale":
                out[i] = value / default if default != 0 else 1.0
            elif q.operation == "add":
                out[i] = value - default
            else:
                out[i] = value
        return out

    def normalize(self, values: np.ndarray) -> np.ndarray:
        """Physical values -> [-1, 1] over the training ranges (extrapolated outside them), float32."""
        v = np.asarray(values, dtype=float)
        out = np.empty_like(v)
        for i, q in enumerate(self.params):
            x, lo, hi = v[..., i], q.low, q.high
            if q.log:
                x, lo, hi = np.log(np.maximum(x, 1e-12)), np.log(lo), np.log(hi)
            out[..., i] = 0.0 if hi == lo else 2.0 * (x - lo) / (hi - lo) - 1.0
        return out.astype(np.float32)

    def denormalize(self, z: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalize`."""
        z = np.asarray(z, dtype=float)
        out = np.empty_like(z)
        for i, q in enumerate(self.params):
            lo, hi = (np.log(q.low), np.log(q.high)) if q.log else (q.low, q.high)
            x = lo + (z[..., i] + 1.0) * 0.5 * (hi - lo)
            out[..., i] = np.exp(x) if q.log else x
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "params": [asdict(q) for q in self.params]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DynamicsSpec:
        return cls(data["task"], tuple(DynamicsParam(**q) for q in data["params"]))


def _range(dist: Any) -> tuple[float, float, bool]:
    """(low, high, log) a distribution covers: uniform and log-uniform bounds, mean +- 2 std, choice extremes."""
    if isinstance(dist, Uniform):
        return float(np.min(dist.low)), float(np.max(dist.high)), False
    if isinstance(dist, LogUniform):
        return float(dist.low), float(dist.high), True
    if isinstance(dist, Normal):
        mean, std = float(np.mean(dist.mean)), float(np.max(dist.std))
        lo, hi = (mean - 2 * std, mean + 2 * std) if dist.clip is None else dist.clip
        return float(lo), float(hi), False
    if isinstance(dist, Choice):
        values = [float(o) for o in dist.options]
        return min(values), max(values), False
    raise TypeError(f"unsupported distribution {dist!r}")


class DynamicsObservation(gym.Wrapper):
    """Adds ``observation["dynamics"]``: this episode's normalized mu, read from the env's resolved parameters
    (the oracle input of a universal policy)."""

    def __init__(self, env: gym.Env, spec: DynamicsSpec) -> None:
        super().__init__(env)
        self.dynamics = spec
        self.observation_space = gym.spaces.Dict(
            {**env.observation_space.spaces, "dynamics": gym.spaces.Box(-np.inf, np.inf, (len(spec),), np.float32)}
        )

    def mu(self) -> np.ndarray:
        core = self.env.unwrapped
        return self.dynamics.normalize(self.dynamics.values(core.params, core.default_params()))

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        return {**obs, "dynamics": self.mu()}, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return {**obs, "dynamics": self.mu()}, reward, terminated, truncated, info

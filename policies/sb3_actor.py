"""The policy inside a stable-baselines3 model: the observation wrappers training uses (flattened keys, fixed
normalization), the actor network read out of PPO or SAC, its export to a bundle's MLP, and behaviour cloning of
it on demonstrations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from policies.bundle import build_mlp
from robot.spec import ObsSpec


@dataclass
class Demonstrations:
    obs: np.ndarray  # (N, obs_dim) float32, flattened
    actions: np.ndarray  # (N, action_dim)
    returns: np.ndarray | None  # (N,) discounted return from each step; None: unknown (logged demonstrations)
    episodes: int
    successes: int


class FlattenKeys(gym.ObservationWrapper):
    """Dict observation -> one float32 vector of ``spec.keys`` in order (what the bundle's policy flattens)."""

    def __init__(self, env: gym.Env, spec: ObsSpec) -> None:
        super().__init__(env)
        self.obs_spec = spec
        self.observation_space = spaces.Box(-np.inf, np.inf, (spec.size,), np.float32)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return self.obs_spec.flatten(observation)


class FixedNormalizer(BaseFeaturesExtractor):
    """(x - mean) / std clipped to +-10, with constants measured before training (stored in the bundle)."""

    def __init__(self, observation_space: spaces.Box, mean: list[float], std: list[float]) -> None:
        super().__init__(observation_space, int(observation_space.shape[0]))
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return torch.clamp((observations - self.mean) / self.std, -10.0, 10.0)


def actor_modules(model: BaseAlgorithm) -> tuple[nn.Module, nn.Module, bool]:
    """(latent network, output layer, tanh-squashed) of the model's deterministic actor."""
    if isinstance(model, PPO):
        return model.policy.mlp_extractor.policy_net, model.policy.action_net, False
    return model.actor.latent_pi, model.actor.mu, True


def actor_forward(model: BaseAlgorithm, obs: torch.Tensor) -> torch.Tensor:
    latent, head, squash = actor_modules(model)
    x = model.policy.actor.features_extractor(obs) if isinstance(model, SAC) else model.policy.extract_features(obs)
    if isinstance(x, tuple):
        x = x[0]
    out = head(latent(x))
    return torch.tanh(out) if squash else out


def export_actor(model: BaseAlgorithm, hidden: list[int]) -> tuple[nn.Sequential, dict[str, Any]]:
    """A plain torch MLP with the actor's weights, and its bundle network spec."""
    latent, head, squash = actor_modules(model)
    activation = "tanh" if isinstance(model, PPO) else "relu"
    n_in = latent[0].in_features
    mlp = build_mlp(n_in, hidden, head.out_features, activation)
    linears = [m for m in latent if isinstance(m, nn.Linear)] + [head]
    targets = [m for m in mlp if isinstance(m, nn.Linear)]
    for src, dst in zip(linears, targets, strict=True):
        dst.load_state_dict(src.state_dict())
    return mlp, {"type": "mlp", "hidden": list(hidden), "activation": activation, "squash": squash}


def load_actor(model: BaseAlgorithm, network: nn.Module) -> None:
    """Copy a bundle's MLP (:func:`export_actor`'s layout) into the model's actor; the shapes must agree."""
    latent, head, _ = actor_modules(model)
    targets = [m for m in latent if isinstance(m, nn.Linear)] + [head]
    sources = [m for m in network.modules() if isinstance(m, nn.Linear)]
    shapes = [tuple(m.weight.shape) for m in targets]
    if [tuple(m.weight.shape) for m in sources] != shapes:
        raise ValueError(
            f"the bundle's layers {[tuple(m.weight.shape) for m in sources]} do not fit the actor's {shapes} "
            "(give the bundle's --hidden widths)"
        )
    for src, dst in zip(sources, targets, strict=True):
        dst.load_state_dict(src.state_dict())


def behaviour_clone(
    model: BaseAlgorithm, demos: Demonstrations, epochs: int, seed: int, actor: bool = True
) -> dict[str, float]:
    """Fit the actor's deterministic output to the expert's actions (MSE); for PPO also fit the value function
    to the demonstrations' discounted returns (when they are known). ``actor=False`` fits the value function only.
    Returns the final losses."""
    torch.manual_seed(seed)
    device = model.device
    x = torch.as_tensor(demos.obs, device=device)
    y = torch.as_tensor(np.clip(demos.actions, -0.999, 0.999), device=device)
    g = None if demos.returns is None else torch.as_tensor(demos.returns, device=device)[:, None]
    latent, head, _ = actor_modules(model)
    params = list(latent.parameters()) + list(head.parameters()) if actor else []
    value_params: list[nn.Parameter] = []
    if isinstance(model, PPO) and g is not None:
        value_params = list(model.policy.mlp_extractor.value_net.parameters()) + list(
            model.policy.value_net.parameters()
        )
    opt = torch.optim.Adam(params + value_params, lr=1e-3)
    losses = {"bc_action_mse": float("nan"), "bc_value_mse": float("nan")}
    n = len(x)
    for _ in range(epochs):
        perm = torch.randperm(n, device=device)
        for i in range(0, n, 256):
            idx = perm[i : i + 256]
            loss = ((actor_forward(model, x[idx]) - y[idx]) ** 2).mean()
            losses["bc_action_mse"] = float(loss.detach())
            if not actor:
                loss = loss.detach()
            if value_params:
                v = model.policy.predict_values(x[idx])
                v_loss = ((v - g[idx]) ** 2).mean()
                losses["bc_value_mse"] = float(v_loss.detach())
                loss = loss + 0.01 * v_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    return losses


def model_actor(model: BaseAlgorithm):
    def act(flat: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = actor_forward(model, torch.as_tensor(flat[None], device=model.device))
        return np.clip(out[0].cpu().numpy(), -1.0, 1.0)

    return act

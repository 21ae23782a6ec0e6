"""A universal policy acting with its online estimator (Yu et al. 2017, "Preparing for the Unknown: Learning a
Universal Policy with Online System Identification"): the estimator network reads the last H steps of
proprioception and actions and estimates the dynamics parameters mu; the universal policy acts on the estimate.
What runs on the robot; :mod:`policies.osi` trains the estimator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from policies.bundle import BundlePolicy, build_mlp, load_weights
from robot.spec import ObsSpec
from sim.observation_history import History, reading
from sim.randomization.dynamics import DynamicsSpec

OSI_WEIGHTS = "osi.pt"  # the estimator's weights in a bundle folder


# -- the estimator ------------------------------------------------------------------------------------------------


def osi_readings(effort: bool) -> tuple[str, ...]:
    """What the estimator reads each step: the proprioception, then the joint efforts when it reads them."""
    return ("proprio", "effort") if effort else ("proprio",)


class OSINet(nn.Module):
    """MLP: a normalized history window -> normalized mu (``mean``/``std`` buffers normalize the window)."""

    def __init__(self, n_in: int, n_out: int, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        self.mlp = build_mlp(n_in, list(hidden), n_out, "relu")
        self.register_buffer("mean", torch.zeros(n_in))
        self.register_buffer("std", torch.ones(n_in))

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.clamp((window - self.mean) / self.std, -10.0, 10.0))


# -- the adaptive policy -------------------------------------------------------------------------------------------


class AdaptivePolicy(BundlePolicy):
    """A universal policy with its online estimator. ``act(observation)`` takes the task's state observation
    (``proprio``, ``privileged``; ``effort`` when the estimator reads it; plus ``dynamics`` in oracle mode), pushes
    the reading into the history, updates ``estimate`` and acts on it."""

    MODES = ("adapt", "oracle")

    def __init__(self, meta: dict[str, Any], network: nn.Module, osi: OSINet, path: Path | None = None) -> None:
        super().__init__(meta, network, path)
        self.universal_spec = self.obs_spec  # what the network takes: proprio, privileged, dynamics
        self.dynamics = DynamicsSpec.from_dict(meta["dynamics"])
        self.osi = osi.eval()
        cfg = meta["osi"]
        self.effort_dim = int(cfg.get("effort_dim", 0))
        self.history = History(int(cfg["history"]), int(cfg["proprio_dim"]) + self.effort_dim, self.action_dim)
        self.set_mode("adapt")
        self.estimate_normalized = np.zeros(len(self.dynamics), np.float32)

    def set_mode(self, mode: str) -> AdaptivePolicy:
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        keys = [k for k in self.universal_spec.keys if mode == "oracle" or k != "dynamics"]
        shapes = {k: self.universal_spec.shapes[k] for k in keys}
        if self.effort_dim:  # the estimator's reading, beside what the network takes
            keys.append("effort")
            shapes["effort"] = (self.effort_dim,)
        self.obs_spec = ObsSpec(tuple(keys), shapes)
        return self

    @property
    def estimate(self) -> dict[str, float]:
        """The current estimate of mu in physical units (name -> value)."""
        values = self.dynamics.denormalize(self.estimate_normalized)
        return {name: float(v) for name, v in zip(self.dynamics.names, values, strict=True)}

    def reset(self) -> None:
        self.history.reset()
        self.estimate_normalized = np.zeros(len(self.dynamics), np.float32)

    @torch.no_grad()
    def act(self, observation: dict[str, Any]) -> np.ndarray:
        self.obs_spec.check(observation)
        self.history.push_reading(reading(observation, osi_readings(self.effort_dim > 0)))
        window = torch.from_numpy(self.history.window())[None]
        self.estimate_normalized = self.osi(window)[0].numpy()
        mu = observation["dynamics"] if self.mode == "oracle" else self.estimate_normalized
        action = self.act_flat(self.universal_spec.flatten({**observation, "dynamics": mu}))
        self.history.push_action(action)
        return action


def load_osi(meta: dict[str, Any], network: nn.Module, path: Path) -> AdaptivePolicy:
    """The :class:`AdaptivePolicy` of a bundle whose ``bundle.yaml`` has an ``osi`` entry."""
    cfg = meta["osi"]
    width = int(cfg["history"]) * (int(cfg["proprio_dim"]) + int(cfg.get("effort_dim", 0)) + int(meta["action"]["dim"]))
    if int(cfg["inputs"]) != width:
        raise ValueError(f"osi.inputs is {cfg['inputs']}; its history of readings and actions holds {width} values")
    osi = OSINet(int(cfg["inputs"]), len(meta["dynamics"]["params"]), tuple(cfg["hidden"]))
    load_weights(osi, path / OSI_WEIGHTS)  # the estimator's weights are checked as the policy's are
    return AdaptivePolicy(meta, network, osi, path)

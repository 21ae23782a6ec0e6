"""Loading a policy bundle: read and check ``bundle.yaml`` against the robot and observation at hand, build the
network, load and check the weights, and probe the policy once. A bundle with an online estimator loads as an
:class:`~policies.adaptive.AdaptivePolicy`, one with memory as a :class:`~policies.memory.MemoryPolicy`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from policies.adaptive import load_osi
from policies.bundle import (
    BUNDLE_FILE,
    WEIGHTS_FILE,
    BundlePolicy,
    build_network,
    bundle_path,
    check_normalization,
    check_spec,
    check_task_fits,
    load_weights,
    read_meta,
    short_error,
)
from policies.memory import MemoryPolicy
from policies.robot_check import check_robot
from robot.description import HardwareConfig
from robot.spec import BundleError


def _probe(policy: BundlePolicy, path: Path) -> None:
    """Run the policy once on a zero observation: its action must be finite and of the action's shape. The
    policy's state (an estimator's history) is reset afterwards."""
    try:
        action = policy.act(policy.obs_spec.zeros())
    except Exception as e:  # anything a network can raise is a broken bundle here
        raise BundleError(f"{path}: the policy fails on a zero observation ({short_error(e)})") from e
    finally:
        policy.reset()
    if np.shape(action) != (policy.action_dim,):
        raise BundleError(
            f"{path}: the policy's action has shape {np.shape(action)} on a zero observation; the bundle says "
            f"({policy.action_dim},)"
        )
    if not np.all(np.isfinite(action)):
        raise BundleError(
            f"{path}: the policy produced a non-finite action on a zero observation ({action.tolist()}): the weights "
            "or normalization are broken"
        )


def _load(path: Path, robot: HardwareConfig | None) -> BundlePolicy:
    meta = read_meta(path)
    file = path / BUNDLE_FILE
    obs_spec = check_spec(meta, file)
    check_normalization(meta, obs_spec, file)
    report: list[str] = []
    if robot is not None:
        report = check_robot(meta, path, robot)
        check_task_fits(meta, obs_spec, robot, file)
    network = build_network(meta["network"], obs_spec, int(meta["action"]["dim"]))
    load_weights(network, path / WEIGHTS_FILE)
    if "osi" in meta:  # a universal policy with its online estimator
        policy: BundlePolicy = load_osi(meta, network, path)
    elif "memory" in meta:  # a policy that keeps a window of its recent readings and actions
        policy = MemoryPolicy(meta, network, path)
    else:
        policy = BundlePolicy(meta, network, path)
    policy.robot_report = report
    _probe(policy, path)
    return policy


def load(path: str | Path, robot: HardwareConfig | None = None, observation_space: Any | None = None) -> BundlePolicy:
    """Load a bundle folder (or a training run folder holding ``bundle/``); check it against ``robot`` and
    ``observation_space`` when given.

    Everything is validated first (bundle.yaml's keys and types, the task, the normalization statistics, the
    weights against the network), and the policy is run once on a zero observation; any problem raises
    :class:`BundleError` naming the bundle and what is wrong, never another exception."""
    path = bundle_path(path)
    try:
        policy = _load(path, robot)
        if observation_space is not None:
            policy.check_observation_space(observation_space)
    except BundleError:
        raise
    except Exception as e:  # a bundle that fails to load is refused in one line, never a traceback
        raise BundleError(f"{path}: the bundle does not load ({short_error(e)})") from e
    return policy

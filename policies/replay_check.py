"""Checking a policy against a hardware log: every logged action recomputed from its logged observation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from policies.loader import load
from real.hardware_log import LogError
from real.replay import log_cycles


def check_policy(path: str | Path, policy_path: str | Path, atol: float = 1e-5) -> dict[str, Any]:
    """Recompute every logged action from its logged observation with the bundle at ``policy_path``; report the
    largest absolute difference, where it happened, and whether it is within ``atol``."""
    policy = load(policy_path)
    cycles = [c for c in log_cycles(path) if "observation" in c and "action" in c]
    if not cycles:
        raise LogError(f"{path}: no logged policy observations and actions to check")
    worst, worst_at, diffs = 0.0, None, []
    episode = None
    for i, c in enumerate(cycles):
        if c["episode"] != episode:
            episode = c["episode"]
            policy.reset()
        obs = {
            k: np.asarray(v, dtype=np.uint8 if k == "rgb" else np.float32).reshape(policy.obs_spec.shapes[k])
            for k, v in c["observation"].items()
            if k in policy.obs_spec.shapes  # a log holds what the robot gave (efforts too), the policy reads its own
        }
        missing = sorted(set(policy.obs_spec.keys) - set(obs))
        if missing:
            raise LogError(f"{path}: the logged observations lack {missing}, which {policy_path} reads")
        diff = float(np.max(np.abs(policy.act(obs) - c["action"])))
        diffs.append(diff)
        if diff > worst:
            worst, worst_at = diff, {"cycle": i, "episode": episode}
    return {
        "log": str(path),
        "policy": str(policy_path),
        "cycles": len(cycles),
        "max_abs_difference": worst,
        "mean_abs_difference": float(np.mean(diffs)),
        "worst": worst_at,
        "atol": atol,
        "matches": worst <= atol,
    }

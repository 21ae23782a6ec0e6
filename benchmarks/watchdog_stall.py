"""A host stall longer than the servos' bus watchdog, once per episode, on the mock arm: the shipped grasp state
policy stalls 0.45 s at its fourth step (the watchdog is 0.3 s). Prints each episode's outcome, the run's ending
and its safety events: a trip the robot does not see freezes the arm until the episode times out.

Usage: python benchmarks/watchdog_stall.py [--episodes N] [--stall-s S] [--json OUT]; prints the JSON too. Uses only
``policies.load`` and ``real.deploy``, so PYTHONPATH can point at another checkout to compare.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from report import emit  # benchmarks/report.py (scripts run from this folder)

import policies
from real.deploy import DeployConfig, deploy

BUNDLE = Path(__file__).resolve().parents[1] / "policies" / "bundles" / "grasp_state"


def stalling(load, stall_s: float, at_step: int):
    """``policies.load`` whose policies sleep ``stall_s`` at step ``at_step`` of every episode."""

    def load_stalling(*args, **kwargs):
        policy = load(*args, **kwargs)
        act, reset, steps = policy.act, policy.reset, [0]

        def act_stalling(obs):
            steps[0] += 1
            if steps[0] == at_step:
                time.sleep(stall_s)
            return act(obs)

        def reset_steps():
            steps[0] = 0
            reset()

        policy.act, policy.reset = act_stalling, reset_steps
        return policy

    return load_stalling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--stall-s", type=float, default=0.45)
    parser.add_argument("--json", help="also write the JSON here")
    args = parser.parse_args()
    policies.load = stalling(policies.load, args.stall_s, at_step=4)
    summary = deploy(DeployConfig("mock/openmanipulator_x", str(BUNDLE), episodes=args.episodes, status=False))
    emit(
        {
            "stall_s": args.stall_s,
            "ended": summary.ended,
            "outcomes": [e.outcome for e in summary.episodes],
            "safety_events": summary.safety_events,
        },
        args.json,
    )


if __name__ == "__main__":
    main()

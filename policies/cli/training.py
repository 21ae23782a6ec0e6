"""``s2r`` commands. Training: state policies (PPO, SAC), camera students (DAgger), online system identification.

Each command is a dataclass (its fields are the flags, their docstrings the help) and a ``run_*`` function."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

import tyro

from policies.adapt_config import AdaptConfig
from policies.cli.common import base_config
from policies.distill_config import DistillConfig
from policies.osi_config import OSIConfig
from policies.train_config import TrainConfig


@dataclass(kw_only=True)
class Train(TrainConfig):
    """Train a state policy (PPO or SAC, warm-started from the expert) into a bundle."""

    out: str = tyro.MISSING  # required here (TrainConfig's own default serves library callers); help: TrainConfig's
    resume: bool = False
    """continue the run in --out up to --steps"""


def run_train(args: Train) -> int:
    from policies.train import train

    cfg = base_config(args, TrainConfig, n_envs=args.n_envs or TrainConfig(task=args.task).n_envs)
    report = train(cfg, resume=args.resume)
    best = report["best"]
    print(
        f"{args.task} {args.algo}: best held-out success {best['success_rate']:.1%} at step {best['step']}; "
        f"bundle {report['bundle']}; {report['wall_s']:.0f} s"
    )
    return 0


@dataclass(kw_only=True)
class Distill(DistillConfig):
    """Train a camera (rgbd) student to imitate a state teacher with DAgger."""

    obs: Literal["rgbd"] = "rgbd"
    """rgbd (state policies: s2r train)"""


def run_distill(args: Distill) -> int:
    from policies.distill import distill

    if args.obs != "rgbd":
        print("s2r distill: only --obs rgbd students exist", file=sys.stderr)
        return 2
    report = distill(base_config(args, DistillConfig))
    best = report["best"]
    print(
        f"student: best held-out success {best['success_rate']:.1%} after iteration {best['iteration']}; "
        f"bundle {report['bundle']}; {report['wall_s']:.0f} s"
    )
    return 0


@dataclass(kw_only=True)
class Adapt(AdaptConfig):
    """Adapt a camera student to a target domain from unlabelled frames of its hardware logs."""


def run_adapt(args: Adapt) -> int:
    from policies.adapt import adapt

    report = adapt(base_config(args, AdaptConfig))
    used = sum(s["used"] for s in report["target_frames"])
    sim = report.get("simulation")
    in_sim = f"; simulation {sim['success_rate']:.1%} over {sim['episodes']} episodes" if sim else ""
    print(
        f"adapted ({args.method}) on {used} target frames: feature domain gap {report['domain_gap_before']:.2f} -> "
        f"{report['domain_gap_after']:.2f} (probe accuracy, 0.5: none){in_sim}; bundle {report['bundle']}; "
        f"{report['wall_s']:.0f} s"
    )
    return 0


@dataclass(kw_only=True)
class TrainOsi(OSIConfig):
    """Train an online system-identification estimator for a universal policy."""


def run_train_osi(args: TrainOsi) -> int:
    import torch

    from policies.osi import train_osi

    # one small forward pass per env step: with more threads they wait on each other (about 4x slower on 2 busy cores)
    torch.set_num_threads(1)

    report = train_osi(base_config(args, OSIConfig))
    err = report["final_error_on_estimate_driven_rollouts"]
    print(
        f"estimator: held-out RMSE {err['rmse_normalized_mean']:.3f} (normalized units, range = 2) over "
        f"{', '.join(report['dynamics'])}; bundle {report['bundle']}; {report['wall_s']:.0f} s"
    )
    for h, e in report["error_by_history"].items():
        print(f"  history {h:>3}: RMSE {e['rmse_normalized_mean']:.3f}")
    return 0

"""``s2r`` commands. Training: state policies (PPO, SAC), camera students (DAgger), online system identification.

Each command is a dataclass (its fields are the flags, their comments the help) and a ``run_*`` function."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Annotated, Literal

import tyro

from policies.cli.types import Crop, NonNegativeInt, PositiveInt, PositiveInts, Share
from policies.distill_config import APPROACH_STEPS


@dataclass(kw_only=True)
class Train:
    """Train a state policy (PPO or SAC, warm-started from the expert) into a bundle."""

    task: Literal["grasp", "navigate"]
    algo: Literal["ppo", "sac"] = "ppo"
    obs: Literal["state"] = "state"
    """state (camera students: s2r distill)"""
    steps: int = 200000
    """environment steps of RL"""
    seed: int = 0
    out: str
    """run folder: run.yaml, eval.json, checkpoints/, tb/, bundle/"""
    randomization: str = "default"
    """none | default | a variant's name (stale_frames, ...) | PATH"""
    n_envs: int = 0
    """parallel environments"""
    bc_demos: int = 300
    """expert episodes for the warm start (0: none)"""
    eval_every: int = 20000
    """steps between held-out evaluations"""
    eval_episodes: int = 50
    """held-out episodes per evaluation"""
    checkpoint_every: int = 50000
    epopt_epsilon: float = 1.0
    """EPOpt: train on the worst fraction of episodes (PPO)"""
    universal: bool = False
    """a universal policy: it also takes the dynamics parameters mu (for s2r train-osi)"""
    resume: bool = False
    """continue the run in --out up to --steps"""


def run_train(args: Train) -> int:
    from policies.train import TrainConfig, train

    cfg = TrainConfig(
        task=args.task,
        algo=args.algo,
        obs=args.obs,
        steps=args.steps,
        seed=args.seed,
        out=args.out,
        randomization=args.randomization,
        n_envs=args.n_envs or TrainConfig(task=args.task).n_envs,
        bc_demos=args.bc_demos,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        checkpoint_every=args.checkpoint_every,
        epopt_epsilon=args.epopt_epsilon,
        universal=args.universal,
    )
    report = train(cfg, resume=args.resume)
    best = report["best"]
    print(
        f"{args.task} {args.algo}: best held-out success {best['success_rate']:.1%} at step {best['step']}; "
        f"bundle {report['bundle']}; {report['wall_s']:.0f} s"
    )
    return 0


@dataclass(kw_only=True)
class Distill:
    """Train a camera (rgbd) student to imitate a state teacher with DAgger."""

    teacher: str
    """state-policy bundle or run folder, or 'expert'"""
    task: Literal["grasp", "navigate"] | None = None
    """needed with --teacher expert"""
    obs: Literal["rgbd"] = "rgbd"
    steps: int = 30000
    """environment steps over all iterations"""
    iterations: int = 5
    """DAgger iterations"""
    epochs: int = 4
    """passes over the aggregated data per iteration"""
    seed: int = 0
    randomization: str = "default"
    """none | default | a variant's name (stale_frames, ...) | PATH"""
    eval_episodes: int = 50
    encoder: Literal["cnn", "keypoints"] = "cnn"
    """image encoder of the student"""
    lr: float = 0.0005
    """Adam learning rate"""
    image_size: int = 64
    """square camera image side in px"""
    supersample: int = 1
    """render the camera at S x the image size and area-average it down, as the robot reduces real frames"""
    crop: Annotated[Crop | None, tyro.conf.arg(metavar="X,Y,W,H")] = None
    """the student sees only this region of the camera's color frame (px; default: the whole frame)"""
    keep_every: int = 1
    """keep every K-th visited state (more scenes per sample; default 1)"""
    channels: PositiveInts = (16, 32, 32)
    """encoder convolution widths"""
    coordinates: bool = False
    """add pixel-coordinate input channels (CoordConv)"""
    pretrain_scenes: int = 0
    """before DAgger, fit on one early teacher-labelled frame from each of N new scenes"""
    pretrain_epochs: int = 10
    """passes over the pretraining scenes"""
    pretrain_steps: Annotated[NonNegativeInt, tyro.conf.arg(metavar="K")] = APPROACH_STEPS
    """a pretraining frame comes after 0 to K teacher steps"""
    detours: Annotated[Share, tyro.conf.arg(metavar="P")] = 0.0
    """share of episodes and scenes that begin with a random detour, so the student learns the way back from states
    off the teacher's path"""
    detour_steps: PositiveInt = 15
    """a detour lasts 1 to this many steps of one random action"""
    workers: int = os.cpu_count() or 1
    """processes collecting scenes"""
    scene_cache: str | None = None
    """folder keeping pretraining scenes between runs (keyed by teacher, task, randomization, size, seed)"""
    init: Annotated[str | None, tyro.conf.arg(metavar="BUNDLE")] = None
    """continue this student (bundle or run folder): its network and normalization (--channels, --coordinates and
    --encoder are ignored); its camera must be this run's; DAgger goes on at the iteration after its last, with
    the DAgger samples it was fitted on, and pretraining scenes join the data without a refit"""
    lr_decay: bool = False
    """each DAgger fit's learning rate follows a cosine down to a tenth"""
    out: str
    """run folder: eval.json, report.json, bundle/, iterations/N/, pretrained/"""


def run_distill(args: Distill) -> int:
    from policies.distill import DistillConfig, distill

    if args.obs != "rgbd":
        print("s2r distill: only --obs rgbd students exist", file=sys.stderr)
        return 2
    report = distill(
        DistillConfig(
            teacher=args.teacher,
            out=args.out,
            task=args.task,
            steps=args.steps,
            iterations=args.iterations,
            epochs=args.epochs,
            seed=args.seed,
            randomization=args.randomization,
            eval_episodes=args.eval_episodes,
            encoder=args.encoder,
            learning_rate=args.lr,
            image_size=args.image_size,
            supersample=args.supersample,
            crop=args.crop,
            keep_every=args.keep_every,
            channels=tuple(args.channels),
            coordinates=args.coordinates,
            pretrain_scenes=args.pretrain_scenes,
            pretrain_epochs=args.pretrain_epochs,
            pretrain_steps=args.pretrain_steps,
            workers=args.workers,
            scene_cache=args.scene_cache,
            init=args.init,
            lr_decay=args.lr_decay,
            detours=args.detours,
            detour_steps=args.detour_steps,
        )
    )
    best = report["best"]
    print(
        f"student: best held-out success {best['success_rate']:.1%} after iteration {best['iteration']}; "
        f"bundle {report['bundle']}; {report['wall_s']:.0f} s"
    )
    return 0


@dataclass(kw_only=True)
class TrainOsi:
    """Train an online system-identification estimator for a universal policy."""

    policy: str
    """universal-policy bundle or run folder (s2r train --universal)"""
    steps: int = 60000
    """environment steps per training stage"""
    history: int = 16
    """steps of proprioception and actions it reads (H)"""
    epochs: int = 30
    """passes over the data (stage 2: half as many)"""
    seed: int = 0
    randomization: str = "default"
    """none | default | a variant's name (stale_frames, ...) | PATH"""
    out: str
    """run folder: report.json, bundle/ (the UP and the estimator)"""


def run_train_osi(args: TrainOsi) -> int:
    import torch

    from policies.osi import OSIConfig, train_osi

    # one small forward pass per env step: with more threads they wait on each other (about 4x slower on 2 busy cores)
    torch.set_num_threads(1)

    cfg = OSIConfig(
        policy=args.policy,
        out=args.out,
        steps=args.steps,
        history=args.history,
        seed=args.seed,
        randomization=args.randomization,
        epochs=args.epochs,
    )
    report = train_osi(cfg)
    err = report["final_error_on_estimate_driven_rollouts"]
    print(
        f"estimator: held-out RMSE {err['rmse_normalized_mean']:.3f} (normalized units, range = 2) over "
        f"{', '.join(report['dynamics'])}; bundle {report['bundle']}; {report['wall_s']:.0f} s"
    )
    for h, e in report["error_by_history"].items():
        print(f"  history {h:>3}: RMSE {e['rmse_normalized_mean']:.3f}")
    return 0

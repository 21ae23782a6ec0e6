"""What ``s2r adapt`` is asked to do: :class:`AdaptConfig` (importable without torch). Its fields are the command's
flags (``policies/cli/training.py``) and their docstrings the help."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Literal

import tyro

from policies.cli.types import NonNegativeInt, PositiveInt

#: dann: domain-adversarial features (Ganin & Lempitsky 2015); match: simulated frames histogram-matched to the
#: target's; finetune: the same fit with neither (the control that tells what the adaptation itself adds).
AdaptMethod = Literal["dann", "match", "finetune"]


@dataclass(kw_only=True)
class AdaptConfig:
    """A camera student adapted to a target domain from unlabelled frames of its hardware logs."""

    student: str
    """the camera student to adapt (a bundle, a run folder or a shipped bundle's name)"""
    frames: tuple[str, ...]
    """hardware logs (MCAP files or glob patterns) whose camera frames are the target domain: the reduced frames a
    camera policy of the same view acted on (/policy/observation/rgb, depth), else the logged camera frames
    (/camera/color, /camera/depth: s2r deploy --log-cameras) cropped and reduced as the robot does"""
    out: str
    """run folder: bundle/ (the adapted student) and report.json"""
    method: AdaptMethod = "dann"
    """dann: a domain classifier on the student's image features through a gradient-reversal layer; match:
    simulated training frames histogram-matched to target frames (albumentations); finetune: neither (control)"""
    max_frames: PositiveInt = 1000
    """target frames used at most, drawn evenly at random from all the logs' frames (seeded)"""
    scenes: PositiveInt = 10_000
    """teacher-labelled simulated scenes the student keeps imitating while it adapts"""
    scene_steps: Annotated[NonNegativeInt, tyro.conf.arg(metavar="K")] = 14
    """a simulated frame comes after 0 to K teacher steps (14: any phase of a grasp, as the target's frames are)"""
    teacher: str | None = None
    """the state teacher that labels the scenes (default: the one the student's bundle records)"""
    epochs: PositiveInt = 4
    """passes over the simulated scenes"""
    batch_size: PositiveInt = 128
    learning_rate: Annotated[float, tyro.conf.arg(name="lr")] = 3e-4
    """Adam learning rate of the student (and of the domain classifier)"""
    adversary_weight: float = 0.1
    """dann: the gradient-reversal weight lambda reached at the end (ramped from 0 as 2 / (1 + exp(-10 p)) - 1 over
    the fit's progress p, Ganin & Lempitsky 2015)"""
    eval_episodes: NonNegativeInt = 30
    """simulated episodes of the adapted student on its training domain (held-out seeds; 0: none)"""
    seed: int = 45
    """seeds the scenes (7,500,000 on for 45: apart from the mock robots' default episodes, 3,000,000 on) and the
    frame draw, batches and classifier"""
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    """processes collecting the simulated scenes"""
    ray: Annotated[str | None, tyro.conf.arg(metavar="ADDRESS")] = None
    """collect the scenes on this Ray cluster instead (docs/cluster.md)"""
    scene_cache: str | None = None
    """folder keeping simulated scenes between runs (shared with s2r distill's)"""
    command: tyro.conf.Suppress[str] = ""
    """the command line that started the run (recorded in the bundle)"""

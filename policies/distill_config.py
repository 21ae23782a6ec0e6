"""What ``s2r distill`` is asked to do: :class:`DistillConfig` (importable without torch). Its fields are the
command's flags (``policies/cli/training.py``) and their docstrings the help."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Literal

import tyro

from policies.cli.types import Crop, NonNegativeInt, PositiveInt, PositiveInts, Share
from robot.tasks import TaskName

#: Default most teacher steps before a pretraining frame (the approach; what caches made before the option hold).
APPROACH_STEPS = 5


@dataclass(kw_only=True)
class DistillConfig:
    """A DAgger distillation of a state teacher into a camera (rgbd) student."""

    teacher: str
    """state-policy bundle or run folder, or 'expert'"""
    out: str
    """run folder: eval.json, report.json, bundle/, iterations/N/, pretrained/"""
    task: TaskName | None = None
    """the teacher bundle's task; needed with --teacher expert"""
    steps: int = 30_000
    """environment steps over all iterations"""
    iterations: int = 5
    """DAgger iterations"""
    epochs: int = 4
    """passes over the aggregated data per iteration"""
    seed: int = 0
    randomization: str = "default"
    """none | default | a variant's name (stale_frames, ...) | PATH"""
    image_size: int = 64
    """square camera image side in px"""
    supersample: int = 1
    """render the camera at S x the image size and area-average it down, as the robot reduces real frames
    (sim.envs.camera_view.CameraView.camera_observation); 1 renders directly"""
    crop: Annotated[Crop | None, tyro.conf.arg(metavar="X,Y,W,H")] = None
    """the student sees only this region of the camera's color frame (px; default: the whole frame)"""
    batch_size: int = 128
    learning_rate: Annotated[float, tyro.conf.arg(name="lr")] = 5e-4
    """Adam learning rate"""
    eval_episodes: int = 50
    augment: bool = True
    """albumentations colour augmentation of the training images"""
    surface_overlay: Annotated[Share, tyro.conf.arg(metavar="P")] = 0.0
    """share of training images whose table is repainted with a random pattern and colours at each pass
    (policies.surface_overlay; needs samples collected with surface masks)"""
    aux_weight: float = 1.0
    """weight of the auxiliary privileged-state loss (0: none)"""
    encoder: Literal["cnn", "keypoints"] = "cnn"
    """image encoder of the student (keypoints: spatial softmax; policies.student.RGBDStudent)"""
    keep_every: PositiveInt = 1
    """label and keep every K-th visited state: K times the scenes for the same data size"""
    channels: PositiveInts = (16, 32, 32)
    """encoder convolution widths"""
    coordinates: bool = False
    """add pixel-coordinate input channels (CoordConv)"""
    pretrain_scenes: int = 0
    """before DAgger, fit on one early teacher-labelled frame from each of N new scenes"""
    pretrain_epochs: int = 10
    """passes over the pretraining scenes, the learning rate decaying to a tenth over them (cosine)"""
    pretrain_steps: Annotated[NonNegativeInt, tyro.conf.arg(metavar="K")] = APPROACH_STEPS
    """a pretraining frame comes after 0 to K teacher steps (5: the approach; a teacher episode's length, 12-16 for
    the grasp: grasp and lift as well)"""
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    """processes collecting the pretraining scenes and DAgger's episodes (the same data whatever the number)"""
    ray: Annotated[str | None, tyro.conf.arg(metavar="ADDRESS")] = None
    """collect the scenes and DAgger's episodes on this Ray cluster instead (auto: the cluster this machine is in;
    local: one started here; the same data; needs the cluster extra; docs/cluster.md)"""
    scene_cache: str | None = None
    """folder keeping pretraining scenes between runs (keyed by teacher, task, randomization, size, seed)"""
    init: Annotated[str | None, tyro.conf.arg(metavar="BUNDLE")] = None
    """continue this student (bundle or run folder): its network and normalization (--channels, --coordinates and
    --encoder are ignored); its camera must be this run's; DAgger goes on at the iteration after its last, with
    the DAgger samples it was fitted on, and pretraining scenes join the data without a refit"""
    lr_decay: bool = False
    """each DAgger fit's learning rate follows a cosine down to a tenth (as pretraining)"""
    detours: Annotated[Share, tyro.conf.arg(metavar="P")] = 0.0
    """share of episodes (DAgger) and scenes (pretraining) that begin with a detour of 1 to detour_steps steps of one
    random action, so that the student learns the way back from states off the teacher's path"""
    detour_steps: PositiveInt = 15
    """a detour lasts 1 to this many steps of one random action"""
    command: tyro.conf.Suppress[str] = ""
    """the command line that started the run (recorded in the bundle)"""

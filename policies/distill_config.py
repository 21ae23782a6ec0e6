"""What ``s2r distill`` is asked to do: :class:`DistillConfig` (importable without torch)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: Default most teacher steps before a pretraining frame (the approach; what caches made before the option hold).
APPROACH_STEPS = 5


@dataclass
class DistillConfig:
    teacher: str  # a state-policy bundle (or run folder), or "expert"
    out: str
    task: str | None = None  # from the teacher bundle; required with "expert"
    steps: int = 30_000  # environment steps collected over all iterations
    iterations: int = 5
    epochs: int = 4  # passes over the aggregated data after each iteration
    seed: int = 0
    randomization: str = "default"
    image_size: int = 64
    # render the camera at this many times image_size and reduce it as the robot reduces real frames (area
    # averaging): sub-pixel detail survives (sim.envs.robot_env.RobotEnv.camera_observation); 1 renders directly
    supersample: int = 1
    # (x, y, width, height) px of the camera's color stream: the region the student sees (None: the whole frame)
    crop: tuple[int, int, int, int] | None = None
    batch_size: int = 128
    learning_rate: float = 5e-4
    eval_episodes: int = 50
    augment: bool = True
    aux_weight: float = 1.0  # weight of the auxiliary privileged-state loss (0: none)
    encoder: str = "cnn"  # or "keypoints" (spatial softmax): policies.student.RGBDStudent
    keep_every: int = 1  # label and keep every K-th visited state: K times the scenes for the same data size
    channels: tuple[int, ...] = (16, 32, 32)  # convolution widths of the student's encoder
    coordinates: bool = False  # pixel-coordinate input channels (CoordConv)
    pretrain_scenes: int = 0  # teacher-driven episodes that each give one early frame, fitted before DAgger
    pretrain_epochs: int = 10  # with the learning rate decaying to a tenth over them (cosine)
    # a pretraining scene's frame is taken after 0 .. pretrain_steps teacher steps, drawn uniformly: 5 shows the
    # approach only; the length of a teacher episode (12-16 steps for the grasp) shows grasp and lift as well
    pretrain_steps: int = APPROACH_STEPS
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))  # processes collecting scenes
    scene_cache: str | None = None  # folder keeping pretraining scene chunks between runs
    # continue from this student bundle (its network, normalization and camera); DAgger goes on at the iteration
    # after its last, with the DAgger samples it was fitted on, and pretraining scenes are aggregated without
    # refitting on them first
    init: str | None = None
    lr_decay: bool = False  # every DAgger fit's learning rate follows a cosine down to a tenth (as pretraining)
    # the share of episodes (DAgger) and scenes (pretraining) that begin with a detour: 1 to detour_steps steps of
    # one random action, so that the student also learns, from the teacher's labels, its way back from states far
    # off the teacher's path (see Detour)
    detours: float = 0.0
    detour_steps: int = 15
    command: str = ""

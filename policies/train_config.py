"""What ``s2r train`` is asked to do: :class:`TrainConfig` (importable without torch; saved as ``OUT/run.yaml``).
Its fields are the command's flags (``policies/cli/training.py``) and their docstrings the help."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Literal

import tyro

from robot.tasks import TaskName


@dataclass(kw_only=True)
class TrainConfig:
    """Everything that defines a training run of a state policy."""

    task: TaskName
    robot: str | None = None
    """simulate this robot (a hardware config name, e.g. so101) instead of the task's own"""
    algo: Literal["ppo", "sac"] = "ppo"
    obs: Literal["state"] = "state"
    """state (camera students: s2r distill)"""
    steps: int = 200_000
    """environment steps of RL"""
    seed: int = 0
    out: str = "runs/policy"
    """run folder: run.yaml, eval.json, checkpoints/, tb/, bundle/"""
    randomization: str = "default"
    """none | default | a variant's name (stale_frames, ...) | PATH"""
    n_envs: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    """parallel environments (0: one per core)"""
    ray: Annotated[str | None, tyro.conf.arg(metavar="ADDRESS")] = None
    """step the N_ENVS environments in actors on this Ray cluster (auto: the cluster this machine is in; local: one
    started here; the same transitions as local processes; needs the cluster extra; docs/cluster.md)"""
    demos: list[str] = field(default_factory=list)
    """hardware logs (paths or globs; teleoperated or deployed, s2r teleop --log) whose cycles join the
    behaviour-cloning warm start (a state policy needs a mock robot's logs: they hold the privileged state)"""
    bc_demos: int = 300
    """expert episodes for the warm start (0: none)"""
    bc_epochs: int = 50
    """behaviour-cloning passes over the demonstrations"""
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    """hidden layer widths of the actor and critic"""
    learning_rate: float = 1e-4
    eval_every: int = 20_000
    """steps between held-out evaluations"""
    eval_episodes: int = 50
    """held-out episodes per evaluation"""
    checkpoint_every: int = 50_000
    epopt_epsilon: float = 1.0
    """EPOpt: train on the worst fraction of episodes (PPO; 1: all)"""
    init: Annotated[str | None, tyro.conf.arg(metavar="BUNDLE")] = None
    """a state bundle of this task to fine-tune: its actor and normalization start the run, and --bc-demos of its
    own episodes (failures too) fit the critic instead of the expert's"""
    universal: bool = False
    """a universal policy: the observation also holds the dynamics parameters mu (for s2r train-osi)"""
    history: int = 0
    """a policy with memory: it also reads the last this many steps of proprioception, joint efforts (a base's scan
    too) and its own actions (0: none)"""
    command: tyro.conf.Suppress[str] = ""
    """the command line that started the run"""

"""What ``s2r train-osi`` is asked to do: :class:`OSIConfig` (importable without torch). Its fields are the
command's flags (``policies/cli/training.py``) and their docstrings the help."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import tyro


@dataclass(kw_only=True)
class OSIConfig:
    """An online system-identification estimator for a universal policy, trained in two stages."""

    policy: str
    """universal-policy bundle or run folder (s2r train --universal)"""
    out: str
    """run folder: report.json, bundle/ (the UP and the estimator)"""
    steps: int = 60_000
    """environment steps per training stage"""
    history: int = 16
    """steps of proprioception and actions it reads (H)"""
    compare_histories: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    """shorter histories trained on the same data, to show how the error falls with H"""
    epochs: int = 30
    """passes over the data (stage 2: half as many)"""
    effort: bool = False
    """the estimator also reads each joint's effort as the servos report it (the ``effort`` observation), after the
    proprioception"""
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    """hidden layer widths of the estimator"""
    seed: int = 0
    randomization: str = "default"
    """none | default | a variant's name (stale_frames, ...) | PATH"""
    eval_episodes: int = 100
    """held-out episodes of the adaptive policy"""
    workers: int = 1
    """run the rollouts over this many local processes (the same data)"""
    ray: Annotated[str | None, tyro.conf.arg(metavar="ADDRESS")] = None
    """run the rollouts on this Ray cluster instead (auto: the cluster this machine is in; local: one started here;
    the same data; needs the cluster extra; docs/cluster.md)"""
    command: tyro.conf.Suppress[str] = ""
    """the command line that started the run"""

"""What ``s2r parity`` is asked to do: :class:`ParityConfig` (light to import). Its fields are the command's flags
(``policies/cli/robot.py``) and their docstrings the help."""

from __future__ import annotations

from dataclasses import dataclass

import tyro


@dataclass
class ParityConfig:
    """The same seeded episodes in simulation and through a mock robot's hardware path."""

    policy: str
    """policy bundle or run folder, or a shipped bundle's name"""
    robot: str
    """mock hardware config (e.g. mock/openmanipulator_x)"""
    reality: str | None = None
    """domain file of the reality, pinned in the simulation too (default: the nominal domain)"""
    episodes: int = 10
    seed: int = 3_000_000
    """episode k uses seed SEED + k on both paths"""
    max_steps: int | None = None
    """control steps per episode on both paths (default: the task's episode length)"""
    log: str | None = None
    """keep the mock robot's hardware log (MCAP) here (default: a temporary file)"""
    progress: tyro.conf.Suppress[bool] = False
    """progress bar and status line"""

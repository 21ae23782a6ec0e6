"""Simulation side: PyBullet robots built from hardware configs, the tasks, and their gymnasium envs.

Importing ``sim`` registers ``s2r/Grasp-v0`` and ``s2r/Navigate-v0`` with gymnasium, and imports pybullet
without the build-time banner its C module writes to stderr on every import (every command, every worker).
"""

import os
import sys

from gymnasium.envs.registration import register, registry


def _import_pybullet_quietly() -> None:
    """Import pybullet with file descriptor 2 pointed at /dev/null (the banner is written below Python's
    ``sys.stderr``); an import error is raised after stderr is restored."""
    if "pybullet" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import pybullet  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_pybullet_quietly()

#: Short task names (as the s2r command takes them) -> gymnasium ids.
TASK_IDS = {"grasp": "s2r/Grasp-v0", "navigate": "s2r/Navigate-v0"}

for _id, _entry in (
    (TASK_IDS["grasp"], "sim.envs.grasp_env:GraspEnv"),
    (TASK_IDS["navigate"], "sim.envs.navigate_env:NavigateEnv"),
):
    if _id not in registry:
        # Episode limits are enforced by the envs themselves (max_episode_steps argument).
        register(id=_id, entry_point=_entry)

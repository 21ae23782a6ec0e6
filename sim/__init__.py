"""Simulation side: PyBullet robots built from hardware configs, the task envs (``sim/envs``) and domain
randomization (``sim/randomization``).

Importing ``sim`` registers each task of :mod:`robot.tasks` with gymnasium as ``s2r/<Task>-v0`` (``s2r/Grasp-v0``,
``s2r/Navigate-v0``): the env of task ``name`` is the class ``<Name>Env`` in ``sim/envs/<name>_env.py``. It also
imports pybullet without the build-time banner its C module writes to stderr on every import (every command, every
worker).
"""

import os
import sys

from gymnasium.envs.registration import register, registry

from robot.tasks import task_names


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
TASK_IDS = {name: f"s2r/{name.capitalize()}-v0" for name in task_names()}

for _name, _id in TASK_IDS.items():
    if _id not in registry:
        # Episode limits are enforced by the envs themselves (max_episode_steps argument).
        register(id=_id, entry_point=f"sim.envs.{_name}_env:{_name.capitalize()}Env")

"""Simulation side: PyBullet robots built from hardware configs, the tasks, and their gymnasium envs.

Importing ``sim`` registers ``s2r/Grasp-v0`` and ``s2r/Navigate-v0`` with gymnasium.
"""

from gymnasium.envs.registration import register, registry

for _id, _entry in (
    ("s2r/Grasp-v0", "sim.envs.grasp_env:GraspEnv"),
    ("s2r/Navigate-v0", "sim.envs.navigate_env:NavigateEnv"),
):
    if _id not in registry:
        # Episode limits are enforced by the envs themselves (max_episode_steps argument).
        register(id=_id, entry_point=_entry)

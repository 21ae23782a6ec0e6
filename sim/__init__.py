"""Simulation side: PyBullet robots built from hardware configs, the tasks, and their gymnasium envs.

Importing ``sim`` registers ``s2r/Grasp-v0`` and ``s2r/Navigate-v0`` with gymnasium.
"""

from gymnasium.envs.registration import register, registry

#: Short task names (as the s2r command takes them) -> gymnasium ids.
TASK_IDS = {"grasp": "s2r/Grasp-v0", "navigate": "s2r/Navigate-v0"}

for _id, _entry in (
    (TASK_IDS["grasp"], "sim.envs.grasp_env:GraspEnv"),
    (TASK_IDS["navigate"], "sim.envs.navigate_env:NavigateEnv"),
):
    if _id not in registry:
        # Episode limits are enforced by the envs themselves (max_episode_steps argument).
        register(id=_id, entry_point=_entry)

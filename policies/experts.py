"""Scripted experts that use privileged state: the demo's policies and the teachers of later distillation. Each
task's expert lives beside its env (``sim/envs/<task>_env.py``, the env's ``scripted_expert()``); they are named
here too."""

from __future__ import annotations

from sim.envs.grasp_env import GraspExpert
from sim.envs.navigate_env import NavigateExpert

__all__ = ["GraspExpert", "NavigateExpert"]

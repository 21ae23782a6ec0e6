"""Task code shared by the simulated and the hardware robots: action mapping, odometry, observations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot.joint_state import JointState
from robot.tasks.grasp import GraspTask
from robot.tasks.navigate import DiffDriveKinematics, NavigateTask


def _js(q, qd=None) -> JointState:
    q = np.asarray(q, dtype=float)
    return JointState(q, np.zeros_like(q) if qd is None else np.asarray(qd, float), np.zeros_like(q), 0)


def test_diff_drive_kinematics_round_trip():
    k = DiffDriveKinematics(0.033, 0.160)
    left, right = k.wheel_velocities(0.2, 1.0)
    assert (left, right) == pytest.approx(((0.2 - 0.08) / 0.033, (0.2 + 0.08) / 0.033))
    assert k.body_velocity(left, right) == pytest.approx((0.2, 1.0))


def test_navigate_action_scaling(base_config):
    task = NavigateTask(base_config)
    full_ahead = task.action_to_targets(np.array([1.0, 0.0]))
    assert full_ahead == pytest.approx([base_config.base.max_linear / 0.033] * 2)
    spin = task.action_to_targets(np.array([0.0, 1.0]))
    assert spin[0] == pytest.approx(-spin[1]) and spin[1] > 0  # counter-clockwise: right wheel forward
    assert task.action_to_targets(np.array([5.0, 0.0])) == pytest.approx(full_ahead)  # clipped


def test_odometry_follows_an_arc_and_reports_the_goal(base_config):
    task = NavigateTask(base_config)
    task.reset(_js([0.0, 0.0]), goal=np.array([1.0, 0.0]))
    k = task.kin
    v, w, dt, n = 0.1, 0.5, 0.1, 40  # a 4 s arc of radius 0.2 m
    left, right = k.wheel_velocities(v, w)
    for i in range(1, n + 1):
        task.update(_js([left * dt * i, right * dt * i]))
    theta = w * dt * n
    expected = np.array([v / w * math.sin(theta), v / w * (1 - math.cos(theta))])
    np.testing.assert_allclose(task.pose[:2], expected, atol=1e-9)
    assert task.pose[2] == pytest.approx(theta - 2 * math.pi if theta > math.pi else theta)
    g = task.goal_in_robot_frame()
    assert np.hypot(*g) == pytest.approx(np.hypot(*(np.array([1.0, 0.0]) - expected)))
    obs = task.proprio(_js([0, 0], [left, right]))
    assert obs.dtype == np.float32 and obs.shape == (NavigateTask.proprio_dim,)
    assert obs[2:4] == pytest.approx([v, w], rel=1e-5)


def test_grasp_action_moves_the_tool_target_by_max_step(arm_config):
    task = GraspTask(arm_config)
    q0 = task.kin.inverse(np.array([0.15, 0.0, 0.08]), math.pi / 2, task.rest)
    task.reset(_js(q0))
    start = task.ee_target.copy()
    q = task.action_to_targets(np.array([1.0, -0.5, -1.0, -1.0]))
    np.testing.assert_allclose(task.ee_target - start, [0.02, -0.01, -0.02], atol=1e-12)
    pos, pitch = task.kin.forward(q)
    np.testing.assert_allclose(pos, task.ee_target, atol=1e-9)
    assert pitch == pytest.approx(math.pi / 2)
    assert q[task.gripper_index] == pytest.approx(arm_config.arm.gripper_open)
    q = task.action_to_targets(np.array([0.0, 0.0, 0.0, 1.0]))
    assert q[task.gripper_index] == pytest.approx(arm_config.arm.gripper_closed)


def test_grasp_target_stays_in_the_workspace(arm_config):
    task = GraspTask(arm_config)
    q0 = task.kin.inverse(np.array([0.15, 0.0, 0.08]), math.pi / 2, task.rest)
    task.reset(_js(q0))
    for _ in range(50):
        q = task.action_to_targets(np.array([1.0, 1.0, 1.0, 0.0]))
        assert np.all(task.ee_target <= task.workspace.high) and np.all(task.ee_target >= task.workspace.low)
        pos, _ = task.kin.forward(q)
        np.testing.assert_allclose(pos, task.ee_target, atol=1e-9)  # tilts the tool to stay reachable
    for _ in range(50):
        task.action_to_targets(np.array([-1.0, -1.0, -1.0, 0.0]))
    assert task.ee_target[2] == pytest.approx(task.workspace.low[2])


def test_tasks_refuse_the_wrong_robot(arm_config, base_config):
    with pytest.raises(ValueError, match="needs an arm"):
        GraspTask(base_config)
    with pytest.raises(ValueError, match="needs a diff_drive base"):
        NavigateTask(arm_config)


def test_every_task_module_follows_the_task_protocol(arm_config, base_config):
    """Tasks are found by their module in robot/tasks; each defines what the Task protocol asks, and its env's
    episode length is the task's."""
    import inspect

    from robot.tasks import task_class, task_names
    from robot.tasks.base import Task
    from sim.envs.grasp_env import GraspEnv
    from sim.envs.navigate_env import NavigateEnv

    assert task_names() == ["grasp", "navigate"]
    configs = {"arm": arm_config, "diff_drive": base_config}
    envs = {"grasp": GraspEnv, "navigate": NavigateEnv}
    wanted = {name for name, _ in inspect.getmembers(Task) if not name.startswith("_")}
    wanted |= set(Task.__annotations__)
    for name in task_names():
        cls = task_class(name)
        task = cls(configs[cls.robot_kind])
        assert wanted <= set(dir(task)), (name, wanted - set(dir(task)))
        default = inspect.signature(envs[name].__init__).parameters["max_episode_steps"].default
        assert default == cls.episode_steps
    with pytest.raises(ValueError, match="unknown task 'fly'; known: grasp, navigate"):
        task_class("fly")


def test_every_task_in_the_folder_comes_with_its_env_expert_and_terms():
    """A task is one module in robot/tasks plus its env (sim/envs/<task>_env.py, <Task>Env): the gym id, the
    commands' task choices, the scripted expert and the universal policy's terms all follow from those two."""
    import typing

    from policies.train_config import TrainConfig
    from robot.tasks import TaskName, task_class, task_names
    from sim import TASK_IDS
    from sim.envs.factory import env_class, universal_terms

    assert set(TASK_IDS) == set(task_names()) == set(typing.get_args(TaskName)) == {"grasp", "navigate"}
    assert typing.get_type_hints(TrainConfig)["task"] == TaskName
    for task in task_names():
        env = env_class(task)
        assert env.task_name == task and env.__name__ == f"{task.capitalize()}Env"
        assert callable(env.scripted_expert) and len(universal_terms(task)) >= 5
        assert task_class(task).scene_dims > 0

"""``s2r deploy``: a policy bundle on a robot. Loads the robot's description and the bundle, refuses what cannot
work before anything moves (a bundle for another robot or task, a state policy on real hardware, an estimator
without ``--adapt``, a reality term the mock path cannot apply), and runs :class:`real.deploy_loop.Deployment`.

Mock robots (configs with a ``mock`` section, ``hardware_configs/mock/``) start their hardware
(:class:`mock.hardware.MockHardware`) inside the run: a reality of the task in the domain given by ``reality``,
served to the real driver code by the servo emulator on the config's pseudo-terminal and to librealsense by a
software device.
"""

from __future__ import annotations

from typing import Any

from policies.adaptive import AdaptivePolicy
from policies.loader import load
from real.deploy_config import DeployConfig, DeploySummary
from real.deploy_goals import load_goals, parse_goal
from real.deploy_loop import Deployment, MockWorld
from real.stop_signals import stdin_terminal
from robot.config_file import load_hardware_config

__all__ = ["DeployConfig", "DeploySummary", "deploy"]


def deploy(cfg: DeployConfig, hardware: Any | None = None, restore_signals: bool = True) -> DeploySummary:
    """Run the deployment; returns (and never raises for) how it went, unless the setup itself fails.
    ``hardware``: a mock robot's :class:`mock.hardware.MockHardware` already started by the caller (who closes it,
    and can look at its servo emulator afterwards); by default a mock config starts and closes its own.
    ``restore_signals``: False leaves the stop handlers installed, ignoring further stop signals (a command that
    only prints the summary and exits after this: a Ctrl-C still held down cannot interrupt the printing)."""
    config = load_hardware_config(cfg.robot)
    policy = load(cfg.policy, robot=config)
    if isinstance(policy, AdaptivePolicy):
        if not cfg.adapt:
            raise ValueError(f"{cfg.policy} has an online estimator: deploy it with --adapt")
        policy.set_mode("adapt")
    elif cfg.adapt:
        raise ValueError(f"--adapt needs a bundle with an online estimator (s2r train-osi), not {cfg.policy}")
    keys = policy.obs_spec.keys
    if "privileged" in keys and config.mock is None:
        raise ValueError(
            f"{cfg.policy} is a state policy: it takes the simulator's privileged state, which only a mock robot's "
            "reality provides. On real hardware deploy a camera (rgbd) policy."
        )
    if config.mock is not None and config.mock.task != policy.task:
        raise ValueError(f"{cfg.robot} is a mock {config.mock.task} robot; {cfg.policy} is a {policy.task} policy")
    if "scan" in keys and not config.lidars:
        raise ValueError(f"{cfg.policy} reads a laser scan; {cfg.robot} has no lidars section")
    real_robot = config.mock is None and hardware is None
    goals = route_goals(cfg, policy.task, real_robot)
    if goals is not None and hardware is not None and getattr(hardware.reality, "goals", None) != goals:
        raise ValueError("--goal/--goals with mock hardware started by the caller: start it with the same goals")
    if real_robot and cfg.episodes > 1 and cfg.stop_keys_fd is None and stdin_terminal() is None:
        raise ValueError(
            f"{cfg.episodes} episodes on a real robot need its operator at a terminal between them (to set the "
            "scene up and label each episode): run s2r deploy in a terminal, or one episode per run"
        )
    period = 1.0 / config.control.rate_hz
    summary = DeploySummary(robot=config.name, policy=str(cfg.policy), log=cfg.log)
    summary.notes += [f"calibration: {line}" for line in policy.robot_report]
    max_frame_age_s = cfg.max_frame_age_s
    if max_frame_age_s is None:
        max_frame_age_s = max(policy.trained_frame_age_s, period)
        if "rgb" in keys and policy.trained_frame_age_s < period:
            summary.notes.append(
                f"the policy trained on frames at most {policy.trained_frame_age_s * 1e3:.0f} ms old; "
                f"frames up to one control period ({period * 1e3:.0f} ms) are acted on"
            )
    start_mock = None
    if config.mock is not None or hardware is not None:
        from mock.hardware import MockHardware, check_domain

        summary.engine = cfg.engine if hardware is None else getattr(hardware, "engine", "pybullet")
        if hardware is None:
            # a reality term the mock path cannot apply is refused here, before anything starts (RealityError)
            for name in check_domain(config.mock.task, cfg.reality, cfg.engine):
                summary.notes.append(f"reality term {name}: the control loop's own timing stands in for it")

        def start_mock() -> MockWorld:
            world = hardware or MockHardware(config, cfg.reality, cfg.seed, cfg.engine, goals=goals)
            world.set_bus_faults(cfg.bus_faults or {}, cfg.seed)
            return world

    run = Deployment(
        cfg, config, policy, summary, max_frame_age_s, start_mock, close_mock=hardware is None, goals=goals
    )
    return run.run(restore_signals)


def route_goals(cfg: DeployConfig, task: str, real_robot: bool) -> list[list[float]] | None:
    """The navigation route of ``--goal`` / ``--goals`` (m, start frame), None without; ValueError for a route on
    another task, both flags, or a navigation policy on a real base without a goal."""
    if cfg.goal is not None and cfg.goals is not None:
        raise ValueError("give --goal or --goals, not both")
    if cfg.goal is None and cfg.goals is None:
        if task == "navigate" and real_robot:
            raise ValueError("a navigation policy on a real base needs its goal: --goal X,Y or --goals FILE (m)")
        return None
    if task != "navigate":
        raise ValueError(f"--goal/--goals are for navigation policies; this is a {task} policy")
    return [parse_goal(cfg.goal)] if cfg.goal is not None else load_goals(cfg.goals)

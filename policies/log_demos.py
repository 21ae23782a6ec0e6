"""Hardware logs as behaviour-cloning demonstrations: a teleoperated (or deployed) robot's log becomes the
(observation, action) pairs of a task, for the warm start of ``s2r train --demos``.

Per control cycle the observation is the task's, built by the task code from the logged joint state (``proprio``)
and, for a state policy, the privileged state a mock robot's reality logged (``/reality/privileged``; a real robot
has none, so its logs train camera students, not state policies); the action is the one that moves the task's joint
targets from the cycle before's sent command to this cycle's (the task's ``targets_to_action``). The returns are
unknown: the critic is not fitted to them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from policies.sb3_actor import Demonstrations
from real.log_reader import read_log
from robot.description import HardwareConfig
from robot.joint_state import JointState
from robot.spec import BundleError, ObsSpec
from robot.tasks import task_class


def demonstrations_from_logs(
    paths: list[str | Path], task: str, config: HardwareConfig, spec: ObsSpec
) -> Demonstrations:
    """The cycles of every episode of the logs at ``paths`` as demonstrations of ``task`` on ``config``, flattened
    as ``spec`` flattens observations; BundleError naming what a log lacks."""
    code = task_class(task)(config)
    if not hasattr(code, "targets_to_action"):
        raise BundleError(f"the {task} task cannot turn logged commands into actions (no targets_to_action)")
    xs, ys, episodes = [], [], 0
    for path in paths:
        cycles = _cycles(Path(path), "privileged" in spec.keys)
        for cycle_list in cycles:
            episodes += 1
            before = None
            for joints, sent, privileged in cycle_list:
                obs = {"proprio": code.proprio(joints)}
                if privileged is not None:
                    obs["privileged"] = privileged
                previous = joints.position if before is None else before
                xs.append(spec.flatten(obs))
                ys.append(code.targets_to_action(previous, sent))
                before = sent
    if not xs:
        raise BundleError(f"no control cycles in {', '.join(map(str, paths))}")
    return Demonstrations(np.asarray(xs, np.float32), np.asarray(ys, np.float32), None, episodes, 0)


def _cycles(path: Path, privileged: bool) -> list[list[tuple[JointState, np.ndarray, np.ndarray | None]]]:
    """Per episode, each cycle's (joints read, targets sent, the reality's privileged vector) in log order: a cycle
    logs its joints, its command, then the privileged state its observation held (deploy's and teleop's order)."""
    episodes: list[list[list]] = []
    joints: JointState | None = None
    open_cycle = False
    for m in read_log(path, topics=["/episode", "/joint_states", "/command", "/reality/privileged"]):
        if m.topic == "/episode" and m.data.get("event") == "start":
            episodes.append([])
        elif m.topic == "/joint_states":
            d = m.data
            joints = JointState(
                np.asarray(d["position"]), np.asarray(d["velocity"]), np.asarray(d["effort"]), m.stamp_ns
            )
            open_cycle = False
        elif m.topic == "/command" and episodes and joints is not None:
            episodes[-1].append([joints, np.asarray(m.data["sent"], dtype=float), None])
            open_cycle = True
        elif m.topic == "/reality/privileged" and open_cycle:
            episodes[-1][-1][2] = np.asarray(m.data["vector"], dtype=np.float32)
            open_cycle = False
    if privileged and any(c[2] is None for e in episodes for c in e):
        raise BundleError(f"{path}: a state policy's demonstrations need /reality/privileged (a mock robot's log)")
    return [[tuple(c) for c in e] for e in episodes if e]

"""The picture of ``s2r gap``: joint (or base path) traces of both engines under the same commands, the object's
height in the scripted grasp, and the camera frame of each engine side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robot.description import HardwareConfig

COLORS = {"pybullet": "tab:blue", "mujoco": "tab:orange"}


def plot_gap(config: HardwareConfig, traces: dict[str, Any], report: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arm = config.mock.task == "grasp"
    frames = traces.get("frames")
    rows = 3 if frames else 2
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4 * rows), squeeze=False)
    if arm:
        steps = traces["steps"]
        t = np.arange(len(steps["targets"])) * 0.01
        for j, name in enumerate(config.joint_names[:-1]):
            ax = axes[0][0] if j < 2 else axes[0][1]
            ax.plot(t, steps["targets"][:, j], "k--", lw=0.8)
            for e in ("pybullet", "mujoco"):
                ax.plot(
                    t, steps[e]["joints"][:, j], color=COLORS[e], lw=1, label=f"{e} {name}" if j in (0, 2) else None
                )
            ax.set(xlabel="s", ylabel="rad", title="0.3 rad steps, one joint after another (dashed: command)")
        for ax in axes[0]:
            ax.legend(fontsize=7)
        grasp = traces["grasp"]
        t = np.arange(len(grasp["targets"])) * 0.01
        for e in ("pybullet", "mujoco"):
            axes[1][0].plot(t, grasp[e]["pose"][:, 2], color=COLORS[e], label=e)
            axes[1][1].plot(t, grasp[e]["joints"][:, -1] * 1e3, color=COLORS[e], label=e)
        axes[1][0].set(xlabel="s", ylabel="object z (m)", title="scripted grasp: the object's height")
        axes[1][1].plot(t, grasp["targets"][:, -1] * 1e3, "k--", lw=0.8)
        axes[1][1].set(xlabel="s", ylabel="gripper (mm)", title="scripted grasp: the gripper (dashed: command)")
        for ax in axes[1]:
            ax.legend(fontsize=7)
    else:
        for col, name in enumerate(("steps", "sine")):
            for e in ("pybullet", "mujoco"):
                pose = traces[name][e]["pose"]
                axes[0][col].plot(pose[:, 0], pose[:, 1], color=COLORS[e], label=e)
            axes[0][col].set(xlabel="x (m)", ylabel="y (m)", title=f"base path, {name} wheel commands")
            axes[0][col].legend(fontsize=7)
            t = np.arange(len(traces[name]["targets"])) * 0.01
            for e in ("pybullet", "mujoco"):
                axes[1][col].plot(t, np.unwrap(traces[name][e]["pose"][:, 2]), color=COLORS[e], label=e)
            axes[1][col].set(xlabel="s", ylabel="yaw (rad)", title=f"heading, {name}")
    if frames:
        for col, e in enumerate(("pybullet", "mujoco")):
            stats = report["camera"][e]
            axes[2][col].imshow(frames[e].color)
            axes[2][col].set_title(f"{e}: RGB mean {stats['rgb_mean']}, valid depth {stats['depth_valid']:.0%}")
            axes[2][col].axis("off")
    fig.suptitle(f"{config.name}: the same commands on PyBullet and MuJoCo (seed {report['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

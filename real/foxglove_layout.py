"""Foxglove layouts for our hardware logs, built with the ``foxglove-sdk``'s layout classes: the robot in 3D (its URDF
from the log's ``/robot_description`` channel, posed by the ``/tf`` frames), the camera with its calibration, and the
joint positions over time. ``python -m real.foxglove_layout`` writes one per shipped robot to ``docs/foxglove/``
(Foxglove: Layouts > Import from file); ``s2r log view LOG`` says how to open a log with it."""

from __future__ import annotations

import json
from pathlib import Path

import foxglove.layouts as fl

from real.frames import WORLD
from robot.config_file import load_hardware_config
from robot.description import HardwareConfig

LAYOUT_DIR = Path(__file__).resolve().parents[1] / "docs" / "foxglove"
ROBOTS = ("openmanipulator_x", "turtlebot3_burger")


def layout(config: HardwareConfig) -> fl.Layout:
    """The layout of ``config``'s logs (topics as :mod:`real.deploy_log` writes them)."""
    urdf = fl.BaseRendererUrdfLayerSettings(
        layer_id="foxglove.Urdf", label=f"{config.name} (URDF)", source_type="topic", topic="/robot_description"
    )
    three_d = fl.ThreeDeePanel(
        config=fl.ThreeDeeConfig(fixed_frame=WORLD if config.kind == "arm" else None, layers={"robot": urdf})
    )
    image = fl.ImagePanel(
        config=fl.ImageConfig(
            image_mode=fl.ImageModeConfig(image_topic="/camera/color", calibration_topic="/camera/calibration")
        )
    )
    plot = fl.PlotPanel(
        config=fl.PlotConfig(
            paths=[
                fl.PlotSeries(value=f"/joint_states.position[{i}]", label=name)
                for i, name in enumerate(config.joint_names)
            ]
        )
    )
    right = fl.SplitContainer(
        direction="column", items=[fl.SplitItem(proportion=1, content=image), fl.SplitItem(proportion=1, content=plot)]
    )
    return fl.Layout(
        content=fl.SplitContainer(
            direction="row",
            items=[fl.SplitItem(proportion=3, content=three_d), fl.SplitItem(proportion=2, content=right)],
        )
    )


def layout_json(config: HardwareConfig) -> str:
    """The layout as the indented JSON file Foxglove imports."""
    return json.dumps(json.loads(layout(config).to_json()), indent=2) + "\n"


def layout_path(robot: str) -> Path:
    return LAYOUT_DIR / f"{robot}.json"


def main() -> None:
    LAYOUT_DIR.mkdir(parents=True, exist_ok=True)
    for robot in ROBOTS:
        layout_path(robot).write_text(layout_json(load_hardware_config(robot)))
        print(f"wrote {layout_path(robot)}")


if __name__ == "__main__":
    main()

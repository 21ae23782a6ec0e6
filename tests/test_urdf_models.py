"""Our simple-shape URDFs: consistent with the hardware configs and with the reference robot descriptions."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pybullet as p
import pytest

from robot.description import urdf_path
from sim.pybullet_robot import urdf_mimic_joints


def _joints(path) -> dict[str, ET.Element]:
    return {j.get("name"): j for j in ET.parse(path).getroot().iter("joint")}


def _links(path) -> dict[str, ET.Element]:
    return {link.get("name"): link for link in ET.parse(path).getroot().iter("link")}


def _vec(el, attr="xyz") -> np.ndarray:
    return np.array([float(v) for v in el.get(attr, "0 0 0").split()])


def _mass(link: ET.Element) -> float:
    return float(link.find("inertial/mass").get("value"))


@pytest.mark.parametrize("fixture", ["arm_config", "base_config"])
def test_urdf_loads_with_config_joints_and_limits(fixture, request):
    config = request.getfixturevalue(fixture)
    path = urdf_path(config)
    joints = _joints(path)
    client = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(str(path), physicsClientId=client)
        names = [
            p.getJointInfo(body, i, physicsClientId=client)[1].decode()
            for i in range(p.getNumJoints(body, physicsClientId=client))
        ]
    finally:
        p.disconnect(client)
    for motor in config.motors:
        assert motor.joint in names
        limit = joints[motor.joint].find("limit")
        if limit is not None and joints[motor.joint].get("type") != "continuous":
            # The config's software limits sit inside the model's mechanical range.
            assert float(limit.get("lower")) <= motor.limits.lower
            assert motor.limits.upper <= float(limit.get("upper"))
    # Only boxes, cylinders and spheres: cheap to render and to randomize.
    root = ET.parse(path).getroot()
    assert not list(root.iter("mesh"))


def test_gripper_fingers_mimic(arm_config):
    assert urdf_mimic_joints(urdf_path(arm_config)) == {"gripper_sub": ("gripper", 1.0, 0.0)}


def test_openmanipulator_matches_reference(arm_config, shared_data):
    ref_path = shared_data / "robot_references/open_manipulator_x/open_manipulator_x.urdf"
    ref, ours = _joints(ref_path), _joints(urdf_path(arm_config))
    pairs = {
        "joint1": "joint1",
        "joint2": "joint2",
        "joint3": "joint3",
        "joint4": "joint4",
        "gripper": "gripper_left_joint",
        "gripper_sub": "gripper_right_joint",
        "end_effector_joint": "end_effector_joint",
    }
    for mine, theirs in pairs.items():
        np.testing.assert_allclose(_vec(ours[mine].find("origin")), _vec(ref[theirs].find("origin")), atol=1e-6)
        if ours[mine].get("type") != "fixed":
            np.testing.assert_allclose(_vec(ours[mine].find("axis")), _vec(ref[theirs].find("axis")))
            for bound in ("lower", "upper"):
                assert float(ours[mine].find("limit").get(bound)) == pytest.approx(
                    float(ref[theirs].find("limit").get(bound)), abs=1e-3
                )
    ref_links, our_links = _links(ref_path), _links(urdf_path(arm_config))
    for link in ("link1", "link2", "link3", "link4", "link5"):
        assert _mass(our_links[link]) == pytest.approx(_mass(ref_links[link]), rel=0.01)


def test_turtlebot_matches_reference(base_config, shared_data):
    ref_path = next((shared_data / "robot_references/turtlebot3_burger").glob("*.urdf"))
    ref, ours = _joints(ref_path), _joints(urdf_path(base_config))
    ref_links, our_links = _links(ref_path), _links(urdf_path(base_config))
    for wheel in ("wheel_left_joint", "wheel_right_joint"):
        np.testing.assert_allclose(_vec(ours[wheel].find("origin")), _vec(ref[wheel].find("origin")), atol=1e-6)
        radius = float(our_links[wheel.replace("joint", "link")].find("collision/geometry/cylinder").get("radius"))
        ref_radius = float(ref_links[wheel.replace("joint", "link")].find("collision/geometry/cylinder").get("radius"))
        assert radius == ref_radius == base_config.base.wheel_radius
    separation = _vec(ours["wheel_left_joint"].find("origin"))[1] - _vec(ours["wheel_right_joint"].find("origin"))[1]
    assert separation == pytest.approx(base_config.base.track)
    # base_link sits 0.010 m above the floor in the reference: wheel centre height = radius.
    ref_base = _vec(ref["base_joint"].find("origin"))[2]
    assert ref_base + _vec(ours["wheel_left_joint"].find("origin"))[2] == pytest.approx(base_config.base.wheel_radius)
    assert _mass(our_links["base_link"]) == pytest.approx(_mass(ref_links["base_link"]), rel=0.01)

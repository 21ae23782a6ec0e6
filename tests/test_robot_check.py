"""A bundle's robot check after calibration: what makes a policy wrong must match, what calibration measures (the
camera's mount and intrinsics, the joint limits) is judged against what the policy was trained under; the shipped
camera policy deploys on a mock arm whose config the calibration commands have updated."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from board_scene import BOARD_SPEC

from policies.loader import load
from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config
from robot.description import HardwareConfig
from robot.intrinsics import d435_color_intrinsics
from robot.spec import BundleError


def _moved(config: HardwareConfig, dxyz=(0.0, 0.0, 0.0), drpy=(0.0, 0.0, 0.0)) -> HardwareConfig:
    cam = config.cameras[0]
    mount = cam.mount.model_copy(
        update={"xyz": list(np.add(cam.mount.xyz, dxyz)), "rpy": list(np.add(cam.mount.rpy, drpy))}
    )
    return config.model_copy(update={"cameras": [cam.model_copy(update={"mount": mount})]})


def _limits(config: HardwareConfig, joint: str, lower: float, upper: float) -> HardwareConfig:
    motors = [
        m.model_copy(update={"limits": m.limits.model_copy(update={"lower": lower, "upper": upper})})
        if m.joint == joint
        else m
        for m in config.motors
    ]
    return config.model_copy(update={"motors": motors})


def test_a_mount_inside_the_trained_offsets_is_accepted_and_reported():
    arm = load_hardware_config("openmanipulator_x")
    # the table camera's mount is rotated (looking back and down): offsets are judged in the mount's own frame,
    # where the student was trained with +-0.025 m and +-0.131 rad
    R = np.array([[np.cos(0.75), 0, np.sin(0.75)], [0, 1, 0], [-np.sin(0.75), 0, np.cos(0.75)]])
    flip = np.diag([-1.0, -1.0, 1.0])  # yaw pi
    world = flip @ R @ np.array([0.01, 0.0, 0.0])  # 1 cm along the camera's own x
    policy = load("grasp_rgbd", robot=_moved(arm, world))
    assert len(policy.robot_report) == 1 and "mount x +0.01 m" in policy.robot_report[0]
    assert "(trained -0.025 .. +0.025 m; 40 % of the way)" in policy.robot_report[0]
    near = load("grasp_rgbd", robot=_moved(arm, drpy=(0.0, 0.12, 0.0))).robot_report
    assert near[0].startswith("warning: camera table mount pitch +0.12 rad") and "92 % of the way" in near[0]


def test_a_mount_20_cm_off_is_refused_with_the_value_and_the_trained_range():
    arm = load_hardware_config("openmanipulator_x")
    refused = (
        r"camera table is mounted 0\.200 m from the trained .*mount z \+0\.1463 m .*\(trained -0\.025 \.\. \+0\.025 m"
    )
    with pytest.raises(BundleError, match=refused):
        load("grasp_rgbd", robot=_moved(arm, (0.0, 0.0, 0.2)))
    assert load("grasp_state", robot=_moved(arm, (0.0, 0.0, 0.2))).robot_report == []  # it does not see the camera


def test_intrinsics_are_judged_against_the_trained_camera_model(tmp_path):
    text = (HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml").read_text()
    k = d435_color_intrinsics(640, 480)
    for scale, shift, ok in ((1.02, 5.0, True), (1.05, 0.0, False), (1.0, 12.0, False)):
        calib = tmp_path / f"k{scale}_{shift}.yaml"
        data = {"width": 640, "height": 480, "fx": k.fx * scale, "fy": k.fy * scale, "cx": k.cx + shift, "cy": k.cy}
        calib.write_text(yaml.safe_dump({**data, "distortion_model": "plumb_bob", "distortion": [0.0] * 5}))
        path = tmp_path / "arm.yaml"
        path.write_text(text.replace("    model: D435\n", f"    model: D435\n    intrinsics: {calib}\n", 1))
        config = load_hardware_config(path)
        assert config.cameras[0].intrinsics is not None
        if ok:
            report = load("grasp_rgbd", robot=config).robot_report
            assert any("fx +0.02 x" in line and "67 % of the way" in line for line in report), report
            assert any("cx +5 px" in line for line in report), report
        else:
            with pytest.raises(BundleError, match=r"calibrated outside .*(fx \+0\.05 x|cx \+12 px)"):
                load("grasp_rgbd", robot=config)


def test_limits_may_narrow_but_not_widen():
    arm = load_hardware_config("openmanipulator_x")
    report = load("grasp_state", robot=_limits(arm, "joint1", -2.6, 2.6)).robot_report
    assert report == ["joint joint1 limits [-2.600, 2.600] keep 93 % of the trained range"]
    assert load("grasp_state", robot=_limits(arm, "joint1", -1.0, 1.0)).robot_report[0].startswith("warning: ")
    with pytest.raises(BundleError, match=r"joint joint2 limits \[-1\.700, 1\.500\] reach beyond the trained"):
        load("grasp_state", robot=_limits(arm, "joint2", -1.7, 1.5))
    # narrower, but no longer holding the grasp task's first pose (joint4 at 1.881): refused before anything moves
    with pytest.raises(BundleError, match=r"grasp task's start pose is outside its joint limits .*joints \[0\.0"):
        load("grasp_state", robot=_limits(arm, "joint4", -1.6, 1.87))
    with pytest.raises(BundleError, match="joints"):  # what makes a policy wrong still has to match exactly
        load("grasp_state", robot=arm.model_copy(update={"motors": arm.motors[::-1]}))


#: How far the scripted hand sweeps each joint of the mock arm while `s2r calibrate motors` records (joint units):
#: inside the end stops, as a careful operator would (joint4 to 1.96: the grasp task starts at 1.881 and homing keeps
#: a margin inside the swept range).
SWEEP = {"joint1": (-2.6, 2.6), "joint2": (-1.45, 1.45), "joint3": (-1.45, 1.35), "joint4": (-1.65, 1.96)}


@pytest.mark.slow
@pytest.mark.realsense
def test_the_shipped_bundles_deploy_on_a_mock_arm_calibrated_by_the_calibration_commands(tmp_path, monkeypatch):
    """A copy of the mock arm's config is calibrated as a lab would: `s2r calibrate motors` (its prompts answered by a
    scripted hand, joints read through the real driver bytes) writes the measured offsets and ranges; samples
    captured through librealsense with the homed config feed `s2r calibrate hand-eye --save`, which writes the mount
    it found. The shipped arm bundles then load against the calibrated file, reporting what they judged, and the
    grasp student grasps on the mock arm it describes."""
    from hand_eye_capture import capture_held_arm, true_mount
    from held_arm import HeldArm, ScriptedOperator

    from calibration.config_edit import flow_list, set_camera_fields
    from calibration.hand_eye import pose_error
    from calibration.motors import LIMIT_MARGIN_RAD
    from policies.cli import main
    from policies.deploy import DeployConfig, deploy
    from real.dynamixel.emulator import EmulatorThread, emulator_for_config

    # The mock arm is the nominal robot (its reality is built from the task, not from this file); the file starts out
    # wrong, as a drawing can be: joint3's horn 0.05 rad off, the camera 11 mm and 0.03 rad from where it is.
    # Calibration must bring both back; left wrong, the offset alone costs the camera student 3 of 4 grasps.
    truth = load_hardware_config("mock/openmanipulator_x")
    path = tmp_path / "openmanipulator_x.yaml"
    text = (HARDWARE_CONFIG_DIR / "mock" / "openmanipulator_x.yaml").read_text()
    joint3 = "joint: joint3, mode: position, direction: 1, offset: 0.0,"
    path.write_text(text.replace(joint3, joint3.replace("offset: 0.0", "offset: 0.05")))
    cam = truth.camera("table")
    xyz, rpy = np.add(cam.mount.xyz, [0.008, -0.006, 0.005]), np.add(cam.mount.rpy, [0.0, 0.03, -0.015])
    mount = f"{{xyz: {flow_list(xyz)}, rpy: {flow_list(rpy)}}}"
    set_camera_fields(path, "table", {"parent": cam.parent, "mount": mount}, lambda c: True)
    drawn = load_hardware_config(path)
    assert drawn.motors[2].offset == 0.05
    drawn_deg, drawn_m = pose_error(true_mount(drawn, "table"), true_mount(truth, "table"))
    assert drawn_deg > 1.5 and drawn_m > 0.01  # what the calibration has to correct

    plant = HeldArm(truth)
    monkeypatch.setattr("builtins.input", ScriptedOperator(plant, SWEEP).console(dict(truth.arm.rest), []))
    with EmulatorThread(emulator_for_config(truth, plant), truth.bus.port):
        assert main(["calibrate", "motors", "--robot", str(path)]) == 0
    homed = load_hardware_config(path)
    assert homed.motors[2].offset == pytest.approx(0.0, abs=0.01)  # the horn's true offset, found and written
    assert homed.motors[0].limits.upper == pytest.approx(2.6 - LIMIT_MARGIN_RAD, abs=0.05)  # the swept range
    index = capture_held_arm(homed, truth, "table", tmp_path / "samples")
    args = ["calibrate", "hand-eye", "--robot", str(path), "--camera", "table", "--samples", str(index.parent)]
    args += ["--board", BOARD_SPEC, "--out", str(tmp_path / "hand_eye.yaml"), "--save"]
    assert main(args) == 0
    calibrated = load_hardware_config(path)
    rotation_deg, translation_m = pose_error(true_mount(calibrated, "table"), true_mount(truth, "table"))
    assert rotation_deg < 0.5 and translation_m < 0.005, (rotation_deg, translation_m)  # issue 9's targets
    print(f"hand-eye on the homed mock arm: {rotation_deg:.3f} deg, {translation_m * 1e3:.2f} mm from the true mount")

    assert any("joint joint1 limits" in line for line in load("grasp_state", robot=calibrated).robot_report)
    assert any("mount" in line for line in load("grasp_rgbd", robot=calibrated).robot_report)
    # 5 episodes, 3 to succeed: a wrong offset (about 1 grasp in 4) passes 10 % of the time, a calibrated arm at the
    # student's 27-30/30 fails under 1 % (3 episodes with 2 to succeed failed a CI run: 2 timeouts, a busy host)
    summary = deploy(DeployConfig(robot=str(path), policy="grasp_rgbd", episodes=5, status=False))
    notes = [n for n in summary.notes if n.startswith("calibration: ")]
    assert any("mount" in n for n in notes) and any("joint joint1 limits" in n for n in notes), notes
    assert summary.ended == "completed", summary.message
    assert sum(e.success for e in summary.episodes) >= 3, [e.outcome for e in summary.episodes]

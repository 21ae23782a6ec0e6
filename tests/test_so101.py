"""The SO-101 from its description to the bus: the URDF against the reference, its kinematics, the grasp task and
expert in simulation, and the robot lifecycle through the project's Feetech driver over a pseudo-terminal to the
emulated servos (torque read back, homing offset applied the firmware's way, a servo alert during a run)."""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mock.plants import make_plant
from mock.servo_emulators import emulator_for_config
from real.feetech.bus import FeetechBus
from real.feetech.control_table import MODELS, POSITION_CENTER
from real.robot import Lifecycle, Robot
from real.safety import SafetyStop
from real.serial_emulator import EmulatorThread
from robot.config_file import load_hardware_config, urdf_problems
from robot.description import urdf_path
from robot.kinematics import ArmKinematics

REFERENCE = Path(__file__).resolve().parents[2] / "shared/data/robot_references/so101/so101_new_calib.urdf"
STS = MODELS["STS3215"]


@pytest.fixture(scope="module")
def so101():
    return load_hardware_config("so101")


def test_the_config_matches_its_urdf_and_the_mock_matches_the_robot(so101):
    assert urdf_problems(so101, urdf_path(so101)) == []
    mocked = load_hardware_config("mock/so101")
    assert mocked.bus.protocol == so101.bus.protocol == "feetech" and [m.id for m in so101.motors] == [1, 2, 3, 4, 5, 6]
    assert mocked.motors == so101.motors and mocked.arm == so101.arm and mocked.mock.robot == "so101"


@pytest.mark.skipif(not REFERENCE.exists(), reason="needs ../shared/data (the reference SO-101 URDF)")
def test_the_tool_point_follows_the_reference_urdf_in_any_pose(so101):
    from scipy.spatial.transform import Rotation

    joints = {j.get("name"): j for j in ET.parse(REFERENCE).getroot().iter("joint") if j.get("type")}
    chain = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper_frame_joint"]

    def reference_tool(q: np.ndarray) -> np.ndarray:
        """The reference's gripper_frame_link in its base frame, the joints turned about their own axes."""
        frame = np.eye(4)
        for k, name in enumerate(chain):
            o, turn = joints[name].find("origin"), np.eye(4)
            step = np.eye(4)
            step[:3, :3] = Rotation.from_euler("xyz", [float(v) for v in o.get("rpy").split()]).as_matrix()
            step[:3, 3] = [float(v) for v in o.get("xyz").split()]
            if k < 5:
                axis = np.array([float(v) for v in joints[name].find("axis").get("xyz").split()])
                turn[:3, :3] = Rotation.from_rotvec(axis * q[k]).as_matrix()
            frame = frame @ step @ turn
        return frame[:3, 3]

    kin = ArmKinematics(so101)
    pan_axis = [float(v) for v in joints["shoulder_pan"].find("origin").get("xyz").split()]
    rng = np.random.default_rng(0)
    lower, upper = kin.lower[:5], kin.upper[:5]
    for _ in range(20):  # ours puts the base origin under the pan axis and the tool point on the roll axis (8 mm)
        q = np.append(rng.uniform(lower, upper), 0.0)
        ours, pitch = kin.forward(q)
        theirs = reference_tool(q) - [pan_axis[0], pan_axis[1], 0.0]
        assert np.linalg.norm(ours - theirs) < 0.0085, (q, ours, theirs)
        assert pitch == pytest.approx(q[1] + q[2] + q[3])


def test_inverse_kinematics_reaches_the_grasp_workspace(so101):
    kin = ArmKinematics(so101)
    rest = np.array([so101.arm.rest[j] for j in so101.joint_names])
    for target in [(0.13, 0.0, 0.01), (0.2, 0.1, 0.01), (0.26, 0.16, 0.004), (0.08, -0.16, 0.004)]:
        for pitch in (math.pi / 2, math.pi / 2 - 0.26):
            try:
                q = kin.inverse(np.array(target), pitch, rest)
            except ValueError:
                continue
            np.testing.assert_allclose(kin.forward(q)[0], target, atol=1e-9)
            assert q[4] == rest[4]  # the roll keeps its seed: it does not move the tool point
            break
        else:
            pytest.fail(f"{target} unreachable")


def test_the_scripted_expert_grasps_with_the_so101():
    from policies.experts import GraspExpert
    from sim.envs.grasp_env import GraspEnv

    env = GraspEnv(robot="so101", randomization="default")
    expert = GraspExpert(max_step=env.task.max_step)
    successes = 0
    for seed in range(70000, 70040):  # default randomization, seeds no measurement used
        obs, info = env.reset(seed=seed)
        expert.reset()
        for _ in range(env.task.episode_steps):
            obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
            if terminated or truncated:
                break
        successes += bool(info["is_success"])
    env.close()
    assert successes >= 36, f"{successes}/40"  # >= 90 %


# -- the robot over the Feetech driver -------------------------------------------------------------------------------
@pytest.fixture
def so101_bus(tmp_path, so101):
    """The six emulated STS3215 with first-order motion, served on a pty; the config pointed at it."""
    emulator = emulator_for_config(so101, make_plant(so101, "simple"))
    link = tmp_path / "ttySO101"
    with EmulatorThread(emulator, link):
        yield emulator, so101.model_copy(update={"bus": so101.bus.model_copy(update={"port": str(link)})})


def _torque(emulator) -> list[int]:
    return [s.get("torque_enable") for s in emulator.servos.values()]


def test_the_lifecycle_drives_the_feetech_servos_and_reads_torque_off_back(so101_bus):
    emulator, config = so101_bus
    robot = Robot(config)
    start = robot.configure()
    assert robot.state == Lifecycle.inactive and _torque(emulator) == [0] * 6
    servos = emulator.servos.values()
    assert all(s.get("response_status_level") == 1 and s.get("return_delay_time") == 0 for s in servos)
    limits = emulator.servos[1].get("min_position_limit"), emulator.servos[1].get("max_position_limit")
    assert limits == (STS.register("goal_position").from_si(-1.9), STS.register("goal_position").from_si(1.9))
    robot.activate()
    assert _torque(emulator) == [1] * 6
    sent, events = robot.write(start.position + np.array([0.0, 0.0, 0.6, 0.0, 0.0, 0.0]))
    assert sent[2] == pytest.approx(start.position[2] + 0.25) and events[0].kind == "step_limit"
    for _ in range(8):
        time.sleep(0.05)
        reading = robot.read()
    assert reading.position[2] == pytest.approx(sent[2], abs=0.005)
    robot.deactivate()
    assert robot.parked and _torque(emulator) == [0] * 6
    assert robot.torque_report.confirmed and robot.torque_report.off == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(robot.read().position, robot.rest, atol=0.02)
    robot.shutdown()
    assert robot.state == Lifecycle.finalized


def test_the_homing_offset_is_written_and_joint_values_follow_the_firmware(so101_bus):
    emulator, config = so101_bus
    motors = list(config.motors)
    motors[1] = motors[1].model_copy(update={"homing_offset": -700})  # the horn 700 counts off the joint's zero
    config = config.model_copy(update={"motors": motors})
    servo = emulator.servos[2]
    servo.position = -700 * STS.register("present_position").unit + 0.3  # actual count: 2048 - 700 + 0.3 rad
    servo.set("lock", 0)  # as LeRobot leaves it: EEPROM writes would be saved
    with Robot(config) as robot:
        reading = robot.configure()
        assert servo.get("homing_offset") == -700 and servo.get("lock") == 1
        assert servo.flash["homing_offset"] == 0  # written with Lock at 1: in effect, not saved over its own
        assert servo.get("present_position") == POSITION_CENTER + round(0.3 / STS.register("present_position").unit)
        assert reading.position[1] == pytest.approx(0.3, abs=0.002)  # Present = actual - offset: 0.3 rad past zero
        with FeetechBus(config.bus.port) as probe:  # what the vendor's convention reads: the same count
            raw = probe.read(2, STS.register("present_position"))
        assert raw == servo.get("present_position")


def test_a_servo_alert_during_the_run_stops_it_and_torque_goes_off(so101_bus):
    emulator, config = so101_bus
    with pytest.raises(SafetyStop, match=r"motor 3 \(elbow_flex\).*overload"), Robot(config) as robot:
        robot.configure()
        robot.activate()
        robot.write(robot.read().position)
        emulator.servos[3].faults.hardware_error = 0x20  # overload, raised in the middle of the run
        for _ in range(5):
            robot.read()
            time.sleep(0.02)
    assert _torque(emulator) == [0] * 6 and robot.torque_report.confirmed


def test_mock_bus_serves_the_so101_to_the_vendor_sdk(tmp_path):
    """`s2r mock-bus --config so101` (the PyBullet arm behind the Feetech emulator): scservo_sdk pings the six
    servos, and reads the shoulder fallen to its limit under gravity (torque off, as the servos power up)."""
    import signal
    import subprocess
    import sys

    scs = pytest.importorskip("scservo_sdk")
    link = tmp_path / "ttySO101"
    s2r = Path(sys.executable).with_name("s2r")
    bus = subprocess.Popen(
        [str(s2r), "mock-bus", "--config", "so101", "--link", str(link)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert "emulating so101" in bus.stdout.readline()
        deadline = time.monotonic() + 10
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        port, packets = scs.PortHandler(str(link)), scs.PacketHandler(0)
        assert port.openPort() and port.setBaudRate(1_000_000)
        try:
            assert [packets.ping(port, i)[0] for i in range(1, 7)] == [777] * 6
            time.sleep(1.0)
            raw, result, error = packets.read2ByteTxRx(port, 2, STS.register("present_position").address)
            assert result == scs.COMM_SUCCESS and error == 0
            assert STS.register("present_position").to_si(raw) == pytest.approx(-1.74, abs=0.05)  # its lower limit
        finally:
            port.closePort()
    finally:
        bus.send_signal(signal.SIGINT)
        bus.communicate(timeout=30)
    assert bus.returncode == 0


def test_the_shipped_state_policy_grasps_on_the_mock_so101():
    """so101_grasp_state through the real Feetech driver bytes to the emulated servos of the PyBullet SO-101, judged
    by the reality; every exit parks and turns torque off, read back."""
    from policies.deploy import deploy
    from real.deploy_config import DeployConfig

    summary = deploy(DeployConfig(robot="mock/so101", policy="so101_grasp_state", episodes=3, status=False))
    assert summary.ended == "completed", summary.message
    assert sum(e.success for e in summary.episodes) >= 2 and summary.loop["overruns"] <= 2
    assert summary.torque_off == {"off": [1, 2, 3, 4, 5, 6], "unreachable": {}} and summary.parked is True


def test_a_pitch_axis_along_minus_y_turns_the_other_way(tmp_path, so101):
    """The kinematics take a pitch joint about -y as one about +y with its angle negated (FK and IK)."""
    from robot.description import urdf_path

    text = urdf_path(so101).read_text()
    elbow = text.index('<joint name="elbow_flex"')
    flipped = text[:elbow] + text[elbow:].replace('<axis xyz="0 1 0"/>', '<axis xyz="0 -1 0"/>', 1)
    (tmp_path / "flipped.urdf").write_text(flipped)
    other = so101.model_copy(update={"sim": so101.sim.model_copy(update={"urdf": str(tmp_path / "flipped.urdf")})})
    kin, kin_flipped = ArmKinematics(so101), ArmKinematics(other)
    assert kin_flipped.chain.signs == (-1.0, 1.0, -1.0, 1.0)
    rng = np.random.default_rng(1)
    for _ in range(10):
        q = np.append(rng.uniform(-0.8, 0.8, 5), 0.0)
        mirrored = q * [1, 1, -1, 1, 1, 1]
        np.testing.assert_allclose(kin_flipped.forward(mirrored)[0], kin.forward(q)[0], atol=1e-12)
    rest = np.array([so101.arm.rest[j] for j in so101.joint_names])
    target = np.array([0.2, 0.05, 0.02])
    q = kin_flipped.inverse(target, math.pi / 2, rest * [1, 1, -1, 1, 1, 1])
    np.testing.assert_allclose(kin_flipped.forward(q)[0], target, atol=1e-9)

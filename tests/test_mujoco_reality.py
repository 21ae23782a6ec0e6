"""The MuJoCo reality (issue 25): both robots load from their URDFs, servos driven by their registers track a step
in both engines, the vendor SDK talks to the emulator with the MuJoCo plant, a MuJoCo-rendered frame arrives through
librealsense, and a short deploy through the real driver bytes is judged by the MuJoCo world.

The physics tests need only the ``mujoco`` wheel; the camera tests also need an OpenGL (Mesa EGL) library and skip,
saying so, where there is none.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

# through the scene module, which picks the offscreen GL backend before MuJoCo is imported
scene = pytest.importorskip("mock.mujoco_scene", reason="the MuJoCo reality needs the mujoco wheel (.[mujoco])")
mujoco = scene.mujoco

from mock.mujoco_reality import MujocoReality  # noqa: E402
from mock.reality import RealityError, check_reality_domain  # noqa: E402
from mock.servo_firmware import MotorConstants, Registers, ServoFirmware  # noqa: E402
from real.dynamixel.control_table import MODELS, OperatingMode  # noqa: E402
from real.dynamixel.emulator import EmulatedServo  # noqa: E402
from robot.config_file import load_hardware_config  # noqa: E402
from robot.description import SERVO_MODELS  # noqa: E402
from robot.lidar import reduce_scan  # noqa: E402


def _render_ok() -> str | None:
    try:
        model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>")
        mujoco.Renderer(model, 8, 8).close()
    except Exception as e:  # noqa: BLE001 - whatever the GL backend raises where it cannot start
        return f"MuJoCo cannot render here ({type(e).__name__}: {e}); install Mesa's EGL (Debian libegl1 libgl1)"
    return None


NO_RENDER = _render_ok()
needs_render = pytest.mark.skipif(NO_RENDER is not None, reason=NO_RENDER or "")


@pytest.fixture(scope="module")
def grasp_world():
    world = MujocoReality("grasp", seed=11)
    yield world
    world.close()


@pytest.fixture(scope="module")
def room_world():
    world = MujocoReality("navigate", seed=5)
    yield world
    world.close()


def _servos(config, torque: bool = True) -> dict[int, EmulatedServo]:
    servos = {m.id: EmulatedServo(m.id, m.model) for m in config.motors}
    for m in config.motors:
        if m.mode == "velocity":
            servos[m.id].set("operating_mode", int(OperatingMode.VELOCITY))
        servos[m.id].set("torque_enable", int(torque))
    return servos


def _goal(servo: EmulatedServo, motor, joint_value: float) -> None:
    """Set ``servo``'s goal so that its joint goes to ``joint_value`` (the host's conversion)."""
    angle = motor.direction * joint_value / motor.scale + motor.offset
    servo.set("goal_position", servo.model.register("goal_position").from_si(angle))


def test_arm_loads_from_its_urdf_with_the_sampled_scene(grasp_world):
    m, config, info = grasp_world.model, grasp_world.config, grasp_world.core.object_info
    assert [m.actuator(i).name for i in range(m.nu)] == config.joint_names  # a torque motor per configured joint
    assert m.neq == 1 and m.joint(m.eq_obj1id[0]).name == "gripper_sub"  # the right finger mimics the left
    assert m.body("link5").mass[0] == pytest.approx(0.1433, rel=1e-6)  # the URDF's inertials, not made up here
    # the object the task sampled, where it sampled it, resting on the table after the settle
    pos = grasp_world.data.body("object").xpos
    # a mesh (a rock-like shape, as here) rocks onto a stable face while it settles, in the simulator too
    assert np.hypot(*(pos[:2] - info["xy"])) < (0.012 if info["kind"] == "mesh" else 0.002)
    lowest = min(
        grasp_world.data.geom_xpos[g][2]
        for g in range(grasp_world.model.ngeom)
        if grasp_world.model.geom_bodyid[g] == grasp_world.model.body("object").id
    )
    assert 0.0 < grasp_world.object_start_z < info["height"] and lowest < info["height"]
    assert grasp_world.outcome() == (False, False)
    priv = grasp_world.privileged()
    assert priv.shape == (13,) and np.allclose(priv[:3], pos, atol=1e-6)
    assert np.isclose(np.linalg.norm(priv[3:7]), 1.0)


def test_base_loads_in_its_room_and_scans_it(room_world):
    m, core = room_world.model, room_world.core
    assert [m.actuator(i).name for i in range(m.nu)] == room_world.config.joint_names
    pose = room_world.robot_pose()
    assert np.allclose(pose[:2], core.start_pose[:2], atol=0.01)
    assert abs(math.remainder(pose[2] - core.start_pose[2], 2 * math.pi)) < 0.02
    priv = room_world.privileged()
    assert priv.shape == (20,)
    # the goal relative to the base and the scan (before the sensor's noise) agree with the simulator's own
    # reading of the same room
    sim_priv = core.privileged_state()
    assert np.allclose(priv[:2], sim_priv[:2], atol=0.02)
    mount = core.lidar_mount
    clean, sim_clean = room_world.sensor_scan(), core.lidar_scan(core.robot_pose())
    assert np.allclose(reduce_scan(clean, *mount), reduce_scan(sim_clean, *mount), atol=0.03)
    assert room_world.outcome() == (False, False)


def _contact_friction(world, body_a: str, body_b: str) -> list[float]:
    """Sliding friction of each contact now between bodies ``body_a`` and ``body_b``."""
    m, d = world.model, world.data
    a, b = m.body(body_a).id, m.body(body_b).id
    pairs = [(m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2], c.friction[0]) for c in d.contact[: d.ncon]]
    return [float(f) for g1, g2, f in pairs if {g1, g2} == {a, b}]


def test_contacts_combine_friction_as_the_simulator_does(grasp_world):
    """The same domain values give the same contact coefficients as in PyBullet (the product of the two bodies'):
    the object rests on the table with object x table friction; MuJoCo's own rule (the larger) would give 1.0."""
    prm = grasp_world.params
    expected = prm["object.lateral_friction"] * prm["table.lateral_friction"]
    found = _contact_friction(grasp_world, "object", "table")
    assert found and np.allclose(found, expected), (found, expected)


def test_base_rolls_on_its_wheels_without_dragging_its_caster():
    """Both wheels held at 4 rad/s by their firmware: the base moves at wheel speed x radius (no slip), and the
    caster, frictionless in the URDF, touches the floor without friction (it dragged with the floor's before)."""
    world = MujocoReality("navigate", seed=5)
    try:
        config = world.config
        servos = _servos(config)
        for motor in config.motors:
            s = servos[motor.id]
            s.set("goal_velocity", s.model.register("goal_velocity").from_si(motor.direction * 4.0 / motor.scale))
        world.step(1.5, servos)  # up to speed
        before, t0 = world.robot_pose(), world.data.time
        world.step(0.5, servos)
        speed = np.hypot(*(world.robot_pose()[:2] - before[:2])) / (world.data.time - t0)
        wheel = float(np.mean(np.abs(world.joints().velocity)))
        assert wheel == pytest.approx(4.0, abs=0.1)
        assert speed == pytest.approx(wheel * config.base.wheel_radius, rel=0.03), (speed, wheel)
        caster = _contact_friction(world, "caster_back_link", "world")
        assert caster and max(caster) < 1e-3, caster
    finally:
        world.close()


def _step_response(plant_step, config, servos, joint: int, target: float, seconds: float, read) -> np.ndarray:
    motor = config.motors[joint]
    _goal(servos[motor.id], motor, target)
    out = []
    for _ in range(int(seconds / 0.01)):
        plant_step(0.01, servos)
        out.append(read()[joint])
    return np.array(out)


def test_servo_step_is_tracked_in_both_engines():
    """joint1 of the arm steps by 0.5 rad in each engine, driven only by its registers: both settle within 10 mrad
    of the goal in 1 s, and their rise times (to 90 %) agree within 0.15 s."""
    from mock.pybullet_plant import PyBulletPlant

    config = load_hardware_config("mock/openmanipulator_x")
    hold = [config.arm.rest[j] for j in config.joint_names]
    results = {}
    world = MujocoReality("grasp", seed=2)
    try:
        servos = _servos(config)
        for motor, q in zip(config.motors, hold, strict=True):
            _goal(servos[motor.id], motor, q)
        world.step(0.5, servos)  # torque on at the rest pose, settled
        start = world.joints().position[0]
        trace = _step_response(world.step, config, servos, 0, start + 0.5, 1.0, lambda: world.joints().position)
        results["mujoco"] = (start, trace)
    finally:
        world.close()
    plant = PyBulletPlant(config)
    try:
        servos = _servos(config)
        for motor, q in zip(config.motors, hold, strict=True):
            _goal(servos[motor.id], motor, q)
        plant.step(0.5, servos)
        start = plant.robot.read().position[0]
        trace = _step_response(plant.step, config, servos, 0, start + 0.5, 1.0, lambda: plant.robot.read().position)
        results["pybullet"] = (start, trace)
    finally:
        plant.close()
    rise = {}
    for engine, (start, trace) in results.items():
        assert abs(trace[-1] - (start + 0.5)) < 0.01, (engine, trace[-1] - start)
        rise[engine] = 0.01 * (1 + int(np.argmax(trace - start >= 0.45)))
    assert abs(rise["mujoco"] - rise["pybullet"]) < 0.15, rise


def test_firmware_follows_its_control_table():
    """Torque off gives no torque; the velocity loop reaches its goal; the current limit caps the torque; the P gain
    sets the stiffness as the e-manual's formula says."""
    servo = EmulatedServo(1, "XM430-W350")
    fw = ServoFirmware("XM430-W350", 12.0)
    regs = Registers.read(servo)
    assert fw.torque(regs, True, 1.0, 0.0, 0.0, 0.002) == 0.0  # factory default: torque off
    servo.set("torque_enable", 1)
    regs = fw.registers(servo)
    m = MotorConstants.of("XM430-W350")
    small = 0.01  # rad: below saturation, torque = kt / R * V * KPP * error / TICK / 885
    expected = m.kt / m.resistance * 12.0 * 800 / 128 * small / (2 * math.pi / 4096) / 885
    fw.reset()
    assert fw.torque(regs, True, small, 0.0, 0.0, 0.002) == pytest.approx(expected, rel=1e-6)
    assert fw.torque(regs, False, small, 0.0, 0.0, 0.002) == 0.0  # no power (a hardware error)
    fw.reset()
    stall = fw.torque(regs, True, 3.0, 0.0, 0.0, 0.002)
    assert stall == pytest.approx(SERVO_MODELS["XM430-W350"]["stall_torque"], rel=0.01)  # full duty at standstill
    servo.set("current_limit", 200)  # 0.54 A
    fw.reset()
    limited = fw.torque(fw.registers(servo), True, 3.0, 0.0, 0.0, 0.002)
    assert limited == pytest.approx(0.538 * 4.1 / 2.3, rel=0.01)
    # velocity mode on an inertia: the PI loop brings it to the goal speed
    wheel = EmulatedServo(2, "XL430-W250")
    wheel.set("operating_mode", int(OperatingMode.VELOCITY))
    wheel.set("torque_enable", 1)
    fw = ServoFirmware("XL430-W250", 12.0)
    regs = fw.registers(wheel)
    w, inertia = 0.0, 0.01
    for _ in range(1500):
        w += 0.002 * fw.torque(regs, True, 3.0, 0.0, w, 0.002) / inertia
    assert abs(w - 3.0) < 0.05
    assert MODELS["XL430-W250"].registers.get("current_limit") is None


@needs_render
def test_a_patterned_table_is_drawn_by_both_engines():
    """A pinned table pattern is drawn by MuJoCo from the simulator's own texture (sim.randomization.textures.
    element_appearance): dark and light stripes across the table in the frame of either engine, along the same
    axis. MuJoCo spans each face with the whole texture (the simulator's intent); PyBullet's TinyRenderer maps a box
    face to a quarter of it (Bullet's cube atlas), so its stripes are wider: a difference in look, like the
    lighting's."""
    from mock.hardware import REALITIES, MockHardware
    from robot.intrinsics import camera_intrinsics

    config = load_hardware_config("mock/openmanipulator_x")
    cam = config.camera("table")
    k = camera_intrinsics(cam.color.width, cam.color.height, cam.intrinsics)
    domain = {"table_texture": "stripes", "table_color2": [0.05, 0.05, 0.05], "table_texture_frequency": 3.0}
    bands = {}
    for engine in ("pybullet", "mujoco"):
        hw = MockHardware(config, domain, seed=11, engine=engine)
        try:
            frame = REALITIES[engine].renderer(hw, "table", cam.depth_range)(k, np.zeros(3))
        finally:
            hw.close()
        column = frame.color[cam.color.height // 4 :, 40, :].astype(float).mean(axis=1)  # down the table's left
        row = frame.color[cam.color.height * 3 // 4, 40:-40, :].astype(float).mean(axis=1)  # across it
        assert column.min() < 40 and column.max() > 100, (engine, column.min(), column.max())
        assert np.ptp(row) < 40, (engine, np.ptp(row))  # the stripes run across the image: one band per row
        bands[engine] = int(np.count_nonzero(np.diff((column < 60).astype(int))))
    assert bands["mujoco"] > bands["pybullet"] >= 1, bands


def test_vendor_sdk_talks_to_the_mujoco_emulator(tmp_path):
    """The ROBOTIS dynamixel-sdk pings, writes and reads the emulator whose plant is the MuJoCo arm; the joint it
    moves arrives, read back through the SDK."""
    sdk = pytest.importorskip("dynamixel_sdk")
    from mock.plants import make_plant
    from real.dynamixel.emulator import EmulatorThread, emulator_for_config

    config = load_hardware_config("mock/openmanipulator_x")
    plant = make_plant(config, "mujoco")
    emulator = emulator_for_config(config, plant)
    try:
        with EmulatorThread(emulator, tmp_path / "ttyMJ") as server:
            port = sdk.PortHandler(str(server.link))
            assert port.openPort() and port.setBaudRate(1_000_000)
            ph = sdk.PacketHandler(2.0)
            try:
                assert ph.ping(port, 11) == (1020, sdk.COMM_SUCCESS, 0)
                here, comm, err = ph.read4ByteTxRx(port, 11, 132)
                assert (comm, err) == (sdk.COMM_SUCCESS, 0)
                assert ph.write1ByteTxRx(port, 11, 64, 1)[:2] == (sdk.COMM_SUCCESS, 0)
                goal = (here + 400) & 0xFFFFFFFF  # 0.61 rad about the vertical axis
                assert ph.write4ByteTxRx(port, 11, 116, goal)[:2] == (sdk.COMM_SUCCESS, 0)
                time.sleep(1.0)
                now, comm, err = ph.read4ByteTxRx(port, 11, 132)
                assert (comm, err) == (sdk.COMM_SUCCESS, 0)
                assert abs(now - goal) <= 12, (here, now, goal)  # P-only firmware: a few pulses of droop
            finally:
                port.closePort()
    finally:
        plant.close()


@needs_render
@pytest.mark.realsense
def test_a_mujoco_frame_arrives_through_librealsense():
    """The mock arm's table camera, rendered by MuJoCo, read by the real RealSense code: the frame has the stream's
    size, the object is where its pose projects with the stream's intrinsics, and its depth there is metric."""
    from mock.hardware import MockHardware

    config = load_hardware_config("mock/openmanipulator_x")
    hw = MockHardware(config, None, seed=11, engine="mujoco")
    camera = hw.camera("table")
    try:
        with camera:
            for _ in range(3):
                frame = camera.read(timeout=3.0)
            k = camera.intrinsics
    finally:
        hw.close()
    cam = config.camera("table")
    assert frame.color.shape == (cam.color.height, cam.color.width, 3) and frame.depth.dtype == np.float32
    pos = hw.reality.data.geom("object").xpos  # the shape's centre (a mesh's body origin may lie outside it)
    t, rotation = hw.reality.camera_mounts["table"]
    p = rotation.T @ (pos - t)  # camera_link: x forward, y left, z up
    u, v = k.cx - k.fx * p[1] / p[0], k.cy - k.fy * p[2] / p[0]
    patch = frame.color[int(v) - 1 : int(v) + 2, int(u) - 1 : int(u) + 2].reshape(-1, 3).astype(float)
    assert np.all(patch[:, 0] > patch[:, 1] + 60), patch  # the red object is at its projected pixel
    depth = frame.depth[int(v), int(u)]
    assert p[0] - 0.03 < depth < p[0] + 0.001, (depth, p[0])  # its near surface, metres along the optical axis


def test_short_deploy_on_mujoco_through_the_driver_bytes(tmp_path):
    """s2r deploy of the shipped grasp_state on the MuJoCo arm: episodes judged by the MuJoCo world, torque off read
    back from the servos, the engine named in the summary."""
    from policies.cli import main as s2r

    out = tmp_path / "deploy.json"
    rc = s2r(
        [
            "deploy",
            "--robot",
            "mock/openmanipulator_x",
            "--policy",
            "grasp_state",
            "--engine",
            "mujoco",
            "--episodes",
            "2",
            "--quiet",
            "--json",
            str(out),
        ]
    )
    summary = json.loads(out.read_text())
    assert rc == 0 and summary["ended"] == "completed" and summary["engine"] == "mujoco"
    assert len(summary["episodes"]) == 2 and all(e["success"] is not None for e in summary["episodes"])
    assert summary["success_rate"] >= 0.5  # the state policy grasps in MuJoCo too (3/3 when first tried)
    assert sorted(summary["torque_off"]["off"]) == [11, 12, 13, 14, 15] and summary["parked"]


def test_soft_servos_settle_at_the_start_pose_and_the_episode_runs(tmp_path):
    """Half the position gain (the bottom of the trained range) on MuJoCo's firmware servos: the P-only loop holds
    joint 2 tens of mrad short of the start pose under gravity, beyond the 20 mrad park tolerance. The robot takes
    a settled arm within SETTLE_TOLERANCE as arrived (before, the deploy stopped before its first episode), runs
    the episode and parks with torque off, read back."""
    from policies.cli import main as s2r
    from real.robot import PARK_TOLERANCE, SETTLE_TOLERANCE

    reality = Path(__file__).resolve().parents[1] / "hardware_configs/mock/realities/arm_soft_servos.yaml"
    out = tmp_path / "deploy.json"
    args = ["deploy", "--robot", "mock/openmanipulator_x", "--policy", "grasp_state", "--engine", "mujoco"]
    args += ["--reality", str(reality), "--episodes", "1", "--max-steps", "5", "--quiet", "--json", str(out)]
    assert s2r(args) == 0
    summary = json.loads(out.read_text())
    assert summary["ended"] == "completed" and len(summary["episodes"]) == 1, summary.get("ended")
    assert sorted(summary["torque_off"]["off"]) == [11, 12, 13, 14, 15]
    assert PARK_TOLERANCE < SETTLE_TOLERANCE <= 0.06


@needs_render
def test_gap_report_drives_both_engines_alike(tmp_path):
    """s2r gap on the mock arm: the same register commands in both engines track within 50 mrad RMS of each other,
    both lift the object in the scripted grasp, both cameras see the same scene depth, and the plot is written."""
    from policies.cli import main as s2r

    out, plot = tmp_path / "gap.json", tmp_path / "gap.png"
    args = ["gap", "--robot", "mock/openmanipulator_x", "--seed", "1", "--plot", str(plot), "--json", str(out)]
    assert s2r(args) == 0
    report = json.loads(out.read_text())
    for name in ("steps", "sine", "grasp"):
        assert max(report["sequences"][name]["joint_rms_difference"].values()) < 0.05, name
    grasp = report["sequences"]["grasp"]
    assert grasp["pybullet_object"]["max_lift_m"] > 0.05 and grasp["mujoco_object"]["max_lift_m"] > 0.05
    cam = report["camera"]
    assert abs(cam["pybullet"]["depth_valid"] - cam["mujoco"]["depth_valid"]) < 0.05
    assert abs(cam["pybullet"]["depth_mean_m"] - cam["mujoco"]["depth_mean_m"]) < 0.02
    assert cam["pybullet"]["rgb_mean"] != cam["mujoco"]["rgb_mean"]  # another renderer: another look
    assert plot.stat().st_size > 10_000


def _fingerprint(world: MujocoReality) -> bytes:
    """Everything a domain term can change in a MuJoCo world and its sensors: the compiled model's physical and
    visual fields, the servo firmware's settings, the camera's errors (what the mock hardware draws frames with,
    mock.sensor_model), the servo readings' noise (encoders and effort) and the base's pushes."""
    from mock.sensor_model import CameraSensor

    m, plant = world.model, world.plant
    camera = CameraSensor(world.params, 0)
    sensors = (camera.noise, camera.focal_scale, camera.principal_offset)
    encoder = world.encoder
    sensors += (encoder.position_std.tolist(), encoder.velocity_std.tolist(), world.pushes.force.tolist())
    sensors += (encoder.effort_std.tolist(), encoder.effort_scale)
    fields = ("body_mass", "body_inertia", "body_ipos", "body_pos", "geom_friction", "geom_rgba", "geom_solref")
    fields += ("geom_size", "cam_pos", "cam_quat", "light_dir", "light_ambient", "light_diffuse", "light_specular")
    fields += ("light_castshadow", "light_pos", "dof_damping", "geom_matid", "tex_data", "geom_condim")
    parts = [np.asarray(getattr(m, f)).tobytes() for f in fields]
    firmware = [(fw.strength, fw.gain_scale, fw.velocity_gain_scale) for fw in plant.firmware]
    return b"".join(parts) + repr((plant.latency, firmware, sensors)).encode()


@pytest.mark.parametrize("task", ["grasp", "navigate"])
def test_every_domain_term_is_applied_or_refused(task):
    """Each term of the default randomization, pinned off its nominal value in a MuJoCo reality, either changes the
    world (model or servo firmware) or is refused by name: none is silently dropped."""
    from mock.reality import HOST_TARGETS
    from sim.randomization.config import load_randomization

    world = MujocoReality(task, seed=4)
    try:
        nominal = _fingerprint(world)
        targets = world.core.targets
        dropped, refused, host = [], [], []
        for term in load_randomization("default", task).terms:
            if term.target.startswith(HOST_TARGETS):
                host.append(term.name)
                continue
            if term.target == "light.shadow":
                value: object = 1.0
            elif term.target == "image.noise_std":
                value = 0.05  # the simulation's bound is 0.125
            elif term.operation == "scale":
                value = 1.4
            elif term.operation == "add":
                value = [0.01] * term.size if term.size else 0.01
            else:
                base = targets[term.target].nominal
                if isinstance(base, str):
                    value = "checker"
                elif isinstance(base, list):
                    value = [min(1.0, 0.8 * b + 0.15) for b in base]
                else:
                    value = 0.3 if base == 0 else base * 1.2
            try:
                check_reality_domain(task, {term.name: value})
            except RealityError as e:
                assert term.name in str(e)
                refused.append(term.name)
                continue
            # restitution bounces a contact with the product of its two bodies' (as Bullet combines it): a term
            # shows against a partner that bounces
            partner = {"object_restitution": "table_restitution", "table_restitution": "object_restitution"}
            base = {partner[term.name]: 0.5} if term.name in partner else {}
            if term.target.endswith((".color2", ".frequency")):  # they shape a pattern: on a checkered element
                base = {term.name.replace("_color2", "_texture").replace("_texture_frequency", "_texture"): "checker"}
            world.domain = base
            world.new_episode(4)
            before = _fingerprint(world) if base else nominal
            world.domain = {**base, term.name: value}
            world.new_episode(4)
            if _fingerprint(world) == before:
                dropped.append(term.name)
        assert dropped == [], f"applied by neither engine path nor refused: {dropped}"
        assert host == ["control_period_jitter"]
        # what is refused is the look of patterns, the light's distance and the wheels' spinning friction
        physical = {n for n in refused if not n.endswith(("_texture", "_color2", "_texture_frequency"))}
        assert physical <= {"wheel_spinning_friction", "light_distance"}, refused
    finally:
        world.close()


def test_restitution_combines_as_pybullet_combines_it():
    """A contact bounces with the product of the two bodies' restitution (Bullet's combination): the object-table
    contact takes the object's solref (its contact priority), set from the product; with the object's nominal 0 a
    bouncy table does not bounce it, in either engine."""
    from mock.mujoco_scene import restitution_solref

    world = MujocoReality("grasp", seed=4)
    try:
        obj = world.model.geom("object")
        for pins, product in (
            ({"object_restitution": 0.5, "table_restitution": 0.6}, 0.3),
            ({"table_restitution": 0.6}, 0.0),
        ):
            world.domain = pins
            world.new_episode(4)
            obj = world.model.geom("object")
            np.testing.assert_allclose(obj.solref, restitution_solref(product))
            assert obj.priority[0] > world.model.geom("table").priority[0]
    finally:
        world.close()


def test_the_gripper_stops_at_the_object_in_both_engines():
    """The OpenManipulator's fingers are one rack: MuJoCo holds the mimic finger rigidly to the driven one, and its
    stiff pads stop both at the object as PyBullet's rigid contacts do (they sank about a centimetre into it with
    MuJoCo's default soft constraints while the servo squeezed at stall torque)."""
    from mock.gap import DT, EngineRun, arm_sequences, command

    seed = 3  # a cylinder of 24 mm
    closed = {}
    for engine in ("pybullet", "mujoco"):
        run = EngineRun(engine, "grasp", seed)
        try:
            for q in arm_sequences(run.config, run.object_pose())["grasp"]:
                command(run.config, run.servos, q)
                (run.world if engine == "mujoco" else run.world.plant).step(DT, run.servos)
            closed[engine] = float(run.joints()[-1])
            if engine == "mujoco":
                m, d = run.world.model, run.world.data
                mimic = float(d.qpos[m.joint("gripper_sub").qposadr[0]])
                assert abs(mimic - closed["mujoco"]) < 0.001  # the linkage holds
            assert run.object_pose()[2] > 0.09  # lifted in both
        finally:
            run.world.close()
    assert abs(closed["mujoco"] - closed["pybullet"]) < 0.003, closed
    assert closed["mujoco"] > -0.008  # stopped by the object, well short of the -10 mm command

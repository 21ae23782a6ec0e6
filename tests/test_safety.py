"""The safety filter: limits, per-cycle change, non-finite targets, Cartesian limits, the host watchdog, servo errors
and servo health, on the shipped robot configs."""

from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

from real.safety import SafetyFilter, SafetyStop
from robot.config_file import load_hardware_config
from robot.description import WorkspaceLimits, urdf_path
from robot.kinematics import ArmKinematics, UnreachableError
from robot.tasks.grasp import PITCHES, Workspace


@pytest.fixture
def arm():
    f = SafetyFilter(load_hardware_config("openmanipulator_x"))
    f.reset(np.array([0.0, -1.0, 0.7, 0.3, 0.019]))
    return f


def test_targets_within_limits_and_steps_pass_unchanged(arm):
    want = np.array([0.1, -0.9, 0.65, 0.35, 0.015])
    out, events = arm.filter(want)
    np.testing.assert_allclose(out, want)
    assert events == []


def test_position_limits_and_change_per_cycle_are_enforced(arm):
    # joint1 asks for 3.5 rad (limit 2.8) from 0: clamped to the limit, then to max_step 0.25 rad this cycle
    out, events = arm.filter(np.array([3.5, -1.0, 0.7, 0.3, 0.019]))
    assert out[0] == pytest.approx(0.25)
    assert {e.kind for e in events} == {"position_limit", "step_limit"} and events[0].joints == ("joint1",)
    for _ in range(20):
        out, _ = arm.filter(np.array([3.5, -1.0, 0.7, 0.3, 0.019]))
    assert out[0] == pytest.approx(2.8)  # reaches the limit, never beyond
    # the gripper (0.07 m/s at 10 Hz) may move 7 mm per cycle, whatever max_step says
    out, events = arm.filter(np.array([2.8, -1.0, 0.7, 0.3, -0.010]))
    assert out[4] == pytest.approx(0.019 - 0.007) and events[0].joints == ("gripper",)


def test_non_finite_targets_hold_the_joint(arm):
    out, events = arm.filter(np.array([np.nan, -1.0, np.inf, 0.3, 0.019]))
    np.testing.assert_allclose(out, [0.0, -1.0, 0.7, 0.3, 0.019])
    assert events[0].kind == "non_finite" and events[0].joints == ("joint1", "joint3")
    with pytest.raises(ValueError, match="5 joints"):
        arm.filter(np.zeros(4))


def test_late_cycles_hold_then_stop(arm):
    arm.filter(np.array([0.2, -1.0, 0.7, 0.3, 0.019]))
    for _ in range(arm.max_overruns - 1):
        out, events = arm.filter(np.array([0.4, -1.0, 0.7, 0.3, 0.019]), late_s=0.2)
        assert out[0] == pytest.approx(0.2) and events[0].kind == "watchdog_hold"
    out, events = arm.filter(np.array([0.4, -1.0, 0.7, 0.3, 0.019]), late_s=0.01)  # on time again: counter resets
    assert out[0] == pytest.approx(0.4) and arm.overruns == 0
    for _ in range(arm.max_overruns - 1):
        arm.filter(out, late_s=0.5)
    with pytest.raises(SafetyStop, match="5 consecutive cycles"):
        arm.filter(out, late_s=0.5)


def test_servo_hardware_errors_stop_naming_motor_and_error(arm):
    arm.check_hardware_errors({11: 0, 12: 0})
    with pytest.raises(SafetyStop, match=r"motor 13 \(joint3\): overheating error, overload error"):
        arm.check_hardware_errors({11: 0, 13: 0b100100})


def test_wheels_are_limited_in_velocity_and_acceleration():
    base = SafetyFilter(load_hardware_config("turtlebot3_burger"))
    base.reset(np.array([12.3, -4.0]))  # wheel angles: velocity joints start at rest whatever they read
    np.testing.assert_allclose(base.hold(), [0.0, 0.0])
    limit = base.velocity[0]
    out, events = base.filter(np.array([100.0, -1.0]))
    assert out[0] == pytest.approx(min(limit, base.config.safety.max_step)) and out[1] == pytest.approx(-1.0)
    assert "velocity_limit" in {e.kind for e in events}
    for _ in range(20):
        out, _ = base.filter(np.array([100.0, -1.0]))
    assert out[0] == pytest.approx(limit)


def test_filter_needs_a_start_state():
    f = SafetyFilter(load_hardware_config("openmanipulator_x"))
    with pytest.raises(RuntimeError, match="reset"):
        f.filter(np.zeros(5))
    with pytest.raises(SafetyStop, match="measured state"):
        f.reset(np.array([0.0, np.nan, 0.0, 0.0, 0.0]))


# -- wheels: no command means braking ----------------------------------------------------------------------------


@pytest.fixture
def base():
    f = SafetyFilter(load_hardware_config("turtlebot3_burger"))
    f.reset(np.zeros(2))
    return f


def _drive(f: SafetyFilter, speed: float) -> None:
    for _ in range(10):
        out, _ = f.filter(np.array([speed, speed]))
    np.testing.assert_allclose(out, [speed, speed])


def test_non_finite_wheel_commands_brake_to_rest_within_the_acceleration_limit(base):
    _drive(base, 5.0)
    accel = base.config.safety.max_step  # rad/s per cycle
    prev = np.array([5.0, 5.0])
    stopped_at = None
    for cycle in range(1, 101):
        out, events = base.filter(np.array([np.nan, np.inf]))
        assert np.all(np.abs(out - prev) <= accel + 1e-12), (cycle, out, prev)
        assert events[0].kind == "non_finite" and events[0].joints == ("wheel_left_joint", "wheel_right_joint")
        if stopped_at is None and np.all(out == 0.0):
            stopped_at = cycle
        if stopped_at is not None:
            np.testing.assert_array_equal(out, [0.0, 0.0])  # and it stays at rest
        prev = out
    assert stopped_at is not None and stopped_at <= math.ceil(5.0 / accel)


def test_no_command_brakes_the_wheels_and_holds_the_arm(base, arm):
    _drive(base, -5.0)
    np.testing.assert_array_equal(base.idle(), [0.0, 0.0])
    out, events = base.filter(base.idle())
    assert out == pytest.approx([-5.0 + base.config.safety.max_step] * 2)  # braking, not a jump to 0
    assert "non_finite" not in {e.kind for e in events}
    arm.filter(np.array([0.2, -0.9, 0.7, 0.3, 0.019]))
    np.testing.assert_allclose(arm.idle(), [0.2, -0.9, 0.7, 0.3, 0.019])
    out, events = arm.filter(arm.idle())
    np.testing.assert_allclose(out, [0.2, -0.9, 0.7, 0.3, 0.019])
    assert events == []


def test_late_cycles_brake_the_wheels(base):
    _drive(base, 5.0)
    out, events = base.filter(np.array([5.0, 5.0]), late_s=0.5)
    assert events[0].kind == "watchdog_hold"
    np.testing.assert_allclose(out, [5.0 - base.config.safety.max_step] * 2)


# -- Cartesian limits --------------------------------------------------------------------------------------------

REST = np.array([0.0, -1.0, 0.7, 0.3, 0.019])


def _with_workspace(min_z: float, max_radius: float):
    config = load_hardware_config("openmanipulator_x")
    safety = config.safety.model_copy(update={"workspace": WorkspaceLimits(min_z=min_z, max_radius=max_radius)})
    return config.model_copy(update={"safety": safety})


def _points(kin: ArmKinematics, q: np.ndarray) -> np.ndarray:
    return np.array(kin.planar_points(q))  # (elbow, wrist, tool) x (r, z)


def test_targets_below_the_table_or_out_of_reach_are_not_sent(arm):
    ws = arm.config.safety.workspace
    kin = ArmKinematics(arm.config)
    # the tool straight down 3 cm into the table: the pitch joints stop where the tool touches min_z
    below = kin.inverse(np.array([0.2, 0.05, -0.03]), math.pi / 2, REST)
    for _ in range(30):
        out, events = arm.filter(below)
        assert _points(kin, out)[:, 1].min() >= ws.min_z - 1e-12
    assert "workspace_limit" in {e.kind for e in events}
    hit = next(e for e in events if e.kind == "workspace_limit")
    assert set(hit.joints) <= {"joint2", "joint3", "joint4"} and "end_effector_link" in hit.detail
    assert out[0] == pytest.approx(below[0])  # the yaw is free: it changes neither height nor radius
    assert kin.forward(out)[0][2] < ws.min_z + 0.002  # it went as far down as allowed, not just held
    # stretched out horizontally beyond max_radius
    far = np.array([0.0, 1.2, -1.2, 0.0, 0.019])
    assert _points(kin, far)[:, 0].max() > ws.max_radius
    for _ in range(30):
        out, events = arm.filter(far)
        assert np.abs(_points(kin, out)[:, 0]).max() <= ws.max_radius + 1e-12
        assert _points(kin, out)[:, 1].min() >= ws.min_z - 1e-12
    assert "workspace_limit" in {e.kind for e in events}
    assert np.abs(_points(kin, out)[:, 0]).max() > ws.max_radius - 0.002


def test_an_inside_target_is_reached_although_per_joint_clipping_would_dip_below_the_table(arm):
    """Two IK poses of the grasp task 2 cm apart at different tool pitches: clipping each joint's step separately
    puts the tool 1.5 cm under the table on the way; the filter goes on the straight line instead, and arrives."""
    kin = ArmKinematics(arm.config)
    a = kin.inverse(np.array([0.16, 0.0, 0.024]), 0.916, REST)
    b = kin.inverse(np.array([0.16, 0.0, 0.004]), math.pi / 4, REST)
    assert kin.forward(a + np.clip(b - a, -arm.max_change, arm.max_change))[0][2] < -0.01
    arm.reset(a)
    prev = a
    for _ in range(5):
        out, _ = arm.filter(b)
        assert kin.forward(out)[0][2] >= 0.0 and np.all(np.abs(out - prev) <= arm.max_change + 1e-12)
        prev = out
    np.testing.assert_allclose(out, b)


def test_a_start_outside_the_workspace_may_move_back_in_but_not_further_out():
    f = SafetyFilter(_with_workspace(min_z=0.12, max_radius=0.32))
    kin = f.kin
    low = kin.inverse(np.array([0.2, 0.0, 0.05]), math.pi / 2, REST)  # tool 7 cm below min_z
    f.reset(low)
    lower = kin.inverse(np.array([0.2, 0.0, 0.04]), math.pi / 2, REST)
    out, events = f.filter(lower)
    np.testing.assert_allclose(out[1:4], low[1:4])  # deeper: the pitch joints hold
    assert events[-1].kind == "workspace_limit"
    higher = kin.inverse(np.array([0.2, 0.0, 0.07]), math.pi / 2, REST)
    out, events = f.filter(higher)
    np.testing.assert_allclose(out, higher)  # back toward the workspace: passes as asked
    assert events == []
    turned = higher.copy()
    turned[0] += 0.2
    out, events = f.filter(turned)  # a turn of the base changes nothing of the violation
    np.testing.assert_allclose(out, turned)
    assert events == []


def test_the_grasp_task_and_the_rest_pose_are_inside_the_shipped_workspace(arm):
    """Every tool target the grasp task's action can produce (its workspace box, at each tool pitch it tries)
    passes the shipped Cartesian limits, so the filter never blocks a legitimate grasp target; and from each of
    them the arm parks (eases to the rest pose through the filter) in a few cycles."""
    kin = ArmKinematics(arm.config)
    box = Workspace()
    assert arm.workspace_violation(REST) == 0.0
    reached = 0
    for x in np.linspace(box.low[0], box.high[0], 5):
        for y in np.linspace(box.low[1], box.high[1], 5):
            for z in (box.low[2], box.high[2]):
                for pitch in PITCHES:
                    try:
                        q = kin.inverse(np.array([x, y, z]), pitch, REST)
                    except UnreachableError:
                        continue
                    reached += 1
                    assert arm.workspace_violation(q) == 0.0, (x, y, z, pitch)
                    arm.reset(q)
                    for _ in range(10):
                        out, _ = arm.filter(REST)
                    np.testing.assert_allclose(out, REST, err_msg=f"parking from {(x, y, z, pitch)}")
    assert reached > 100


def test_a_rest_pose_outside_the_workspace_is_refused():
    with pytest.raises(ValueError, match=r"rest pose \(arm.rest\) is outside safety.workspace: link4 at z 0.149"):
        SafetyFilter(_with_workspace(min_z=0.16, max_radius=0.32))


# -- servo health ------------------------------------------------------------------------------------------------


def test_servo_health_stops_naming_every_motor_out_of_range(arm):
    arm.check_health({11: 35.0, 12: 69.0, 15: 70.0}, {11: 12.0, 12: 10.0, 15: 14.8})
    with pytest.raises(SafetyStop) as err:
        arm.check_health({11: 35.0, 13: 74.0, 14: float("nan")}, {11: 12.0, 12: 9.8, 15: 15.2})
    msg = str(err.value)
    for part in (
        "motor 12 (joint2): 9.8 V below the 10 V minimum",
        "motor 13 (joint3): 74 °C above the 70 °C limit",
        "motor 14 (joint4): temperature reading nan",
        "motor 15 (gripper): 15.2 V above the 14.8 V maximum",
    ):
        assert part in msg, msg
    assert "motor 11" not in msg


def test_servo_health_uses_the_robots_voltage_range(base):
    base.check_health({1: 40.0, 2: 41.0}, {1: 12.6, 2: 12.6})  # a charged LiPo 3S, above the XL430's 12.0 V
    with pytest.raises(SafetyStop, match=r"motor 2 \(wheel_right_joint\): 10.4 V below the 10.5 V minimum"):
        base.check_health({1: 40.0, 2: 41.0}, {1: 11.1, 2: 10.4})


# -- property: whatever the policy asks ------------------------------------------------------------------------


def _random_targets(rng: np.random.Generator, f: SafetyFilter, last: np.ndarray) -> np.ndarray:
    """Anything: near the last target, anywhere in (and past) the joint range, huge, NaN or inf."""
    n = len(f.joints)
    lo = np.where(np.isfinite(f.lower), f.lower, -f.velocity) - 0.5
    hi = np.where(np.isfinite(f.upper), f.upper, f.velocity) + 0.5
    kind = rng.integers(4)
    if kind == 0:
        t = last + rng.normal(0.0, 0.1, n)
    elif kind == 1:
        t = rng.uniform(lo, hi)
    elif kind == 2:
        t = rng.normal(0.0, 100.0, n)
    else:
        t = rng.uniform(lo, hi)
        t[rng.random(n) < 0.5] = rng.choice([np.nan, np.inf, -np.inf])
    return t


def test_fuzzed_targets_are_always_finite_limited_and_inside_the_workspace(arm):
    """4000 random cycles; the workspace is checked on PyBullet's own forward kinematics of the URDF."""
    config = arm.config
    ws = config.safety.workspace
    client = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(str(urdf_path(config)), useFixedBase=True, physicsClientId=client)
        index = {}
        for j in range(p.getNumJoints(body, physicsClientId=client)):
            info = p.getJointInfo(body, j, physicsClientId=client)
            index[info[1].decode()] = j  # joint name -> index
            index[info[12].decode()] = j  # child link name -> the same index
        checked = [index[link] for link in ("link4", "link5", config.arm.ee_link)]
        rng = np.random.default_rng(0)
        prev = arm.hold()
        late = 0
        for _ in range(4000):
            late = late + 1 if rng.random() < 0.05 and late < arm.max_overruns - 1 else 0
            out, _ = arm.filter(_random_targets(rng, arm, prev), late_s=1.0 if late else 0.0)
            assert np.all(np.isfinite(out))
            assert np.all(out >= arm.lower) and np.all(out <= arm.upper)
            assert np.all(np.abs(out - prev) <= arm.max_change + 1e-12)
            for name, q in zip(config.joint_names[:4], out[:4], strict=True):
                p.resetJointState(body, index[name], q, physicsClientId=client)
            axis = np.array(p.getLinkState(body, index["link2"], physicsClientId=client)[4][:2])  # on the yaw axis
            for link in checked:
                pos = np.array(p.getLinkState(body, link, computeForwardKinematics=True, physicsClientId=client)[4])
                assert pos[2] >= ws.min_z - 1e-6  # 1 µm: PyBullet keeps the URDF in single precision
                assert np.hypot(*(pos[:2] - axis)) <= ws.max_radius + 1e-6
            prev = out
    finally:
        p.disconnect(client)


def test_fuzzed_wheel_commands_are_always_finite_and_limited(base):
    rng = np.random.default_rng(1)
    prev = base.hold()
    for _ in range(4000):
        out, _ = base.filter(_random_targets(rng, base, prev), late_s=0.5 if rng.random() < 0.05 else 0.0)
        assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= base.velocity)
        assert np.all(np.abs(out - prev) <= base.max_change + 1e-12)
        prev = out

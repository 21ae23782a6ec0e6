"""The safety filter: limits, per-cycle change, non-finite targets, the host watchdog and servo errors, on the
shipped robot configs."""

from __future__ import annotations

import numpy as np
import pytest

from real.hardware_config import load_hardware_config
from real.safety import SafetyFilter, SafetyStop


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

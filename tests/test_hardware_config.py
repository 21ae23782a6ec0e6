"""Robot descriptions: the shipped files validate, and bad files fail with file, field path and expectation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from policies.cli import main as s2r
from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config
from robot.description import ConfigError


def test_shipped_arm_config(arm_config):
    assert arm_config.kind == "arm"
    assert arm_config.joint_names == ["joint1", "joint2", "joint3", "joint4", "gripper"]
    assert [m.id for m in arm_config.motors] == [11, 12, 13, 14, 15]
    assert {m.model for m in arm_config.motors} == {"XM430-W350"}
    assert arm_config.bus.baudrate == 1_000_000 and arm_config.bus.protocol == "dynamixel2"
    assert arm_config.camera().model == "D435"
    assert 10 <= arm_config.control.rate_hz <= 20


def test_shipped_base_config(base_config):
    assert base_config.kind == "diff_drive"
    assert base_config.base.wheel_radius == pytest.approx(0.033)
    assert base_config.base.track == pytest.approx(0.160)
    assert {m.model for m in base_config.motors} == {"XL430-W250"}
    assert all(m.mode.value == "velocity" for m in base_config.motors)
    assert base_config.camera().parent == "base_link"


def test_every_shipped_config_validates():
    files = sorted(HARDWARE_CONFIG_DIR.glob("*.yaml"))
    assert len(files) >= 2
    for f in files:
        load_hardware_config(f)


def _write_variant(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load((HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml").read_text())
    edit(data)
    path = tmp_path / "bad_robot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["motors"][2].pop("model"), ["motors.2.model", "Field required"]),
        (lambda d: d["motors"][0].update(id=300), ["motors.0.id", "less than or equal to 252", "300"]),
        (
            lambda d: d["motors"][1].update(model="XM999"),
            ["motors.1.model", "unknown servo model", "XM430-W350"],
        ),
        (lambda d: d["motors"][1]["limits"].update(lower=2.0, upper=1.0), ["motors.1.limits", "lower (2.0)"]),
        (lambda d: d["motors"][1].update(id=11), ["repeated: [11]"]),
        (lambda d: d["cameras"][0]["color"].update(fps=45), ["cameras.0", "640x480@45 is not a D435 mode"]),
        (lambda d: d["control"].update(rate_hz=-5), ["control.rate_hz", "greater than 0"]),
        (lambda d: d["bus"].update(baudrate=12345), ["bus.baudrate", "1000000"]),
        (lambda d: d["arm"].update(gripper_joint="claw"), ["'claw'", "which no motor drives"]),
        (lambda d: d.update(colour="red"), ["colour", "Extra inputs are not permitted"]),
        # non-finite numbers: YAML's .inf and .nan
        (lambda d: d["safety"].update(max_step=math.inf), ["safety.max_step", "finite number", "inf"]),
        (lambda d: d["safety"].update(watchdog_s=math.nan), ["safety.watchdog_s", "finite number", "nan"]),
        (lambda d: d["safety"]["workspace"].update(min_z=-math.inf), ["safety.workspace.min_z", "finite number"]),
        (lambda d: d["safety"].update(max_temperature_c=math.inf), ["safety.max_temperature_c", "finite number"]),
        (lambda d: d["cameras"][0]["mount"]["xyz"].__setitem__(2, math.nan), ["cameras.0.mount.xyz.2", "finite"]),
        (lambda d: d["cameras"][0]["mount"]["rpy"].__setitem__(0, math.inf), ["cameras.0.mount.rpy.0", "finite"]),
        (lambda d: d["motors"][2].update(offset=math.nan), ["motors.2.offset", "finite number"]),
        (lambda d: d["motors"][4].update(scale=math.inf), ["motors.4.scale", "finite number"]),
        (lambda d: d["motors"][1]["limits"].update(lower=math.nan), ["motors.1.limits", "must be numbers", "nan"]),
        # position joints need finite position limits
        (
            lambda d: d["motors"][1]["limits"].pop("lower"),
            ["motors.1:", "joint 'joint2' in mode 'position' needs finite limits.lower and limits.upper", "-inf"],
        ),
        (
            lambda d: d["motors"][4]["limits"].update(upper=math.inf),
            ["motors.4:", "joint 'gripper'", "needs finite limits.lower and limits.upper", "upper=inf"],
        ),
        # the new safety fields
        (lambda d: d["safety"].update(input_voltage_v=[13.0, 11.0]), ["safety.input_voltage_v", "0 < min < max"]),
        (lambda d: d["safety"].update(health_period_s=0), ["safety.health_period_s", "greater than 0"]),
        (lambda d: d["safety"]["workspace"].update(max_radius=-0.1), ["safety.workspace.max_radius", "greater"]),
        (lambda d: d["safety"]["workspace"].pop("min_z"), ["safety.workspace.min_z", "Field required"]),
    ],
)
def test_bad_config_names_file_field_and_expectation(tmp_path, edit, expected):
    path = _write_variant(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        load_hardware_config(path)
    msg = str(err.value)
    assert str(path) in msg
    for part in expected:
        assert part in msg, msg


def test_yaml_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\nmotors: [\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_hardware_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_hardware_config(listy)
    with pytest.raises(ConfigError, match="no hardware config of that name.*openmanipulator_x"):
        load_hardware_config("no_such_robot")


def test_wheels_must_be_velocity_mode(tmp_path):
    data = yaml.safe_load((HARDWARE_CONFIG_DIR / "turtlebot3_burger.yaml").read_text())
    data["motors"][0]["mode"] = "position"
    data["motors"][0]["limits"].update(lower=-3.0, upper=3.0)  # without them: "needs finite limits" first
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="must use mode 'velocity'"):
        load_hardware_config(path)


def test_lookup_helpers(arm_config):
    assert arm_config.motor("gripper").id == 15
    assert arm_config.control_period == pytest.approx(1 / arm_config.control.rate_hz)
    with pytest.raises(KeyError, match="no motor drives joint 'elbow'"):
        arm_config.motor("elbow")
    with pytest.raises(KeyError, match="no camera 'wrist'"):
        arm_config.camera("wrist")
    assert math.isfinite(arm_config.motor("joint1").limits.lower)


def test_check_config_command(tmp_path, capsys):
    assert s2r(["check-config", "openmanipulator_x", "turtlebot3_burger"]) == 0
    out = capsys.readouterr().out
    assert "openmanipulator_x (arm)" in out and "turtlebot3_burger (diff_drive)" in out
    bad = _write_variant(tmp_path, lambda d: d["motors"][0].pop("joint"))
    assert s2r(["check-config", str(bad)]) == 1
    assert "motors.0.joint" in capsys.readouterr().err


def test_check_config_compares_the_motors_with_the_urdf(tmp_path, capsys):
    def widen(d: dict) -> None:
        d["motors"][0]["limits"].update(upper=3.5)  # the URDF's joint1 stops at 3.1416 rad
        d["motors"][3]["limits"].update(effort=6.0)  # and allows 4.1 N*m

    assert s2r(["check-config", str(_write_variant(tmp_path, widen))]) == 1
    err = capsys.readouterr().err
    assert "disagrees with its URDF" in err and "limits [-2.8, 3.5] go beyond the URDF's [-3.1416, 3.1416]" in err
    assert "motor 14 (joint4): effort limit 6 exceeds the URDF's 4.1" in err
    base = yaml.safe_load((HARDWARE_CONFIG_DIR / "turtlebot3_burger.yaml").read_text())
    base["motors"][1]["joint"] = base["base"]["right_wheel"] = "caster_back_joint"  # fixed in the URDF
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(base))
    assert s2r(["check-config", str(path)]) == 1
    assert "joint 'caster_back_joint' is not a movable joint of turtlebot3_burger.urdf" in capsys.readouterr().err
    base["sim"]["urdf"] = "missing.urdf"
    path.write_text(yaml.safe_dump(base))
    assert s2r(["check-config", str(path)]) == 1
    assert "missing.urdf does not exist" in capsys.readouterr().err


def test_velocity_joints_may_keep_infinite_position_limits(tmp_path, base_config):
    data = yaml.safe_load((HARDWARE_CONFIG_DIR / "turtlebot3_burger.yaml").read_text())
    data["motors"][0]["limits"].update(lower=-math.inf, upper=math.inf)
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_hardware_config(path).motor("wheel_left_joint").limits.lower == -math.inf
    assert base_config.motor("wheel_right_joint").limits.upper == math.inf


def test_workspace_needs_an_arm_and_its_rest_pose_inside(tmp_path):
    data = yaml.safe_load((HARDWARE_CONFIG_DIR / "turtlebot3_burger.yaml").read_text())
    data["safety"]["workspace"] = {"min_z": 0.0, "max_radius": 0.3}
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"base.yaml.*\n.*safety.workspace: Cartesian limits need an arm"):
        load_hardware_config(path)
    path = _write_variant(tmp_path, lambda d: d["safety"]["workspace"].update(min_z=0.16))  # the elbow rests at 0.149
    with pytest.raises(ConfigError) as err:
        load_hardware_config(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "rest pose (arm.rest) is outside safety.workspace" in msg, msg
    assert "link4 at z 0.149 m, below min_z 0.16 m" in msg


def test_servo_health_thresholds(arm_config, base_config, tmp_path):
    assert arm_config.safety.max_temperature_c == 70.0 and arm_config.safety.health_period_s == 1.0
    assert arm_config.input_voltage_v == (10.0, 14.8)  # unset: the XM430-W350's input voltage range
    assert base_config.input_voltage_v == (10.5, 12.8)  # the TurtleBot3's battery, set in its file
    path = _write_variant(tmp_path, lambda d: d["safety"].update(input_voltage_v=[11.0, 13.0]))
    assert load_hardware_config(path).input_voltage_v == (11.0, 13.0)


def test_check_config_reports_non_finite_values_and_missing_limits(tmp_path, capsys):
    bad = _write_variant(tmp_path, lambda d: d["safety"].update(max_step=math.inf))
    assert s2r(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{bad}: invalid hardware config (1 problem(s))",
        "  safety.max_step: Input should be a finite number (got inf)",
    ]
    bad = _write_variant(tmp_path, lambda d: d["motors"][0]["limits"].pop("upper"))
    assert s2r(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "motors.0: Value error, joint 'joint1' in mode 'position' needs finite limits.lower" in err
    assert "Traceback" not in err

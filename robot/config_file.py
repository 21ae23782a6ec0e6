"""Reading a robot description file: found by name or path, validated, its relative paths resolved, checked
against its URDF."""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import ValidationError

from robot.description import ConfigError, HardwareConfig, format_validation_error, read_yaml
from robot.kinematics import rest_pose_workspace_problem

#: Folder holding the robot descriptions shipped with the project (read from the clone).
HARDWARE_CONFIG_DIR = Path(__file__).resolve().parents[1] / "hardware_configs"


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path as given if it exists, else ``hardware_configs/<name>.yaml``."""
    p = Path(name_or_path)
    if p.exists():
        return p
    candidate = HARDWARE_CONFIG_DIR / (p if p.suffix else p.with_suffix(".yaml"))  # also mock/<name>
    if candidate.exists():
        return candidate
    configs = [*HARDWARE_CONFIG_DIR.glob("*.yaml"), *(HARDWARE_CONFIG_DIR / "mock").glob("*.yaml")]  # not realities
    known = ", ".join(sorted(str(q.relative_to(HARDWARE_CONFIG_DIR).with_suffix("")) for q in configs))
    raise ConfigError(f"{name_or_path}: no such file, and no hardware config of that name; known: {known}")


def shipped_robot(name: str) -> str | None:
    """The shipped hardware config a bundle's robot name refers to (the robot its policy was trained on; a mock
    robot's name means its real one), or None when no shipped config has that name."""
    name = name.removesuffix("_mock")
    return name if (HARDWARE_CONFIG_DIR / f"{name}.yaml").is_file() else None


def load_hardware_config(name_or_path: str | Path) -> HardwareConfig:
    """Load and validate a robot description (a path, or a name in ``hardware_configs/``)."""
    path = resolve_config_path(name_or_path)
    data = read_yaml(path, ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        config = HardwareConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, "hardware config", e)) from None
    if config.sim.servo_model is not None:
        file = (path.parent / config.sim.servo_model).resolve()
        if not file.is_file():
            raise ConfigError(f"{path}: sim.servo_model: {file} does not exist")
        config = config.model_copy(update={"sim": config.sim.model_copy(update={"servo_model": str(file)})})
    cameras = []
    for cam in config.cameras:
        if cam.intrinsics is not None:
            file = (path.parent / cam.intrinsics).resolve()
            if not file.is_file():
                raise ConfigError(f"{path}: cameras[{cam.name}].intrinsics: {file} does not exist")
            cam = cam.model_copy(update={"intrinsics": str(file)})
        cameras.append(cam)
    config = config.model_copy(update={"cameras": cameras})
    if config.safety.workspace is not None:  # checked on the URDF's kinematics, which the safety filter uses
        try:
            problem = rest_pose_workspace_problem(config)
        except KeyError as e:
            raise ConfigError(f"{path}: safety.workspace: {config.sim.urdf} has no joint or link {e}") from None
        except (ValueError, OSError) as e:
            raise ConfigError(f"{path}: safety.workspace: {e}") from None
        if problem:
            raise ConfigError(f"{path}: safety.workspace: {problem}")
    return config


def urdf_problems(config: HardwareConfig, urdf: Path) -> list[str]:
    """What in ``config`` disagrees with its URDF (empty when nothing): the file is missing or unreadable, a motor's
    joint is not a movable URDF joint, or a motor's limits go beyond the URDF's (position, velocity, effort; a
    continuous joint has no position limits to exceed). Read with the standard library's XML parser, so the check
    needs no simulator."""
    import xml.etree.ElementTree as ET

    if not urdf.is_file():
        return [f"sim.urdf: {urdf} does not exist"]
    try:
        root = ET.parse(urdf).getroot()
    except ET.ParseError as e:
        return [f"sim.urdf: {urdf} is not readable XML ({e})"]
    joints = {j.get("name"): j for j in root.iter("joint")}
    problems = []
    for motor in config.motors:
        joint = joints.get(motor.joint)
        if joint is None or joint.get("type") == "fixed":
            movable = sorted(n for n, j in joints.items() if n and j.get("type") != "fixed")
            problems.append(
                f"motor {motor.id}: joint {motor.joint!r} is not a movable joint of {urdf.name} ({movable})"
            )
            continue
        limit = joint.find("limit")
        if limit is None:
            continue
        ours = motor.limits
        eps = 1e-9
        if joint.get("type") != "continuous":
            lower, upper = float(limit.get("lower", -math.inf)), float(limit.get("upper", math.inf))
            if ours.lower < lower - eps or ours.upper > upper + eps:
                problems.append(
                    f"motor {motor.id} ({motor.joint}): limits [{ours.lower:g}, {ours.upper:g}] go beyond the URDF's "
                    f"[{lower:g}, {upper:g}]"
                )
        for name in ("velocity", "effort"):
            theirs = limit.get(name)
            if theirs is not None and getattr(ours, name) > float(theirs) + eps:
                problems.append(
                    f"motor {motor.id} ({motor.joint}): {name} limit {getattr(ours, name):g} exceeds the URDF's "
                    f"{theirs}"
                )
    return problems

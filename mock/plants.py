"""The physics behind a mock servo bus, by name: what the servo emulator's motors move. A new plant is one module
here with a class taking the hardware config, and one entry in :data:`PLANTS`."""

from __future__ import annotations

from collections.abc import Callable

from mock.servo_emulators import first_order_plant
from real.dynamixel.emulator import Plant
from robot.description import ConfigError, HardwareConfig


def _pybullet(config: HardwareConfig) -> Plant:
    from mock.pybullet_plant import PyBulletPlant  # imports PyBullet: only when asked for

    return PyBulletPlant(config)


def require_dynamixel(config: HardwareConfig) -> None:
    """ConfigError (a ValueError) unless ``config``'s servos speak Dynamixel: the MuJoCo reality runs a Dynamixel X
    firmware model."""
    if config.bus.protocol != "dynamixel2":
        raise ConfigError(
            f"{config.name}: the MuJoCo reality runs Dynamixel X firmware; {config.bus.protocol} servos run on the "
            "pybullet engine"
        )


def _mujoco(config: HardwareConfig) -> Plant:
    require_dynamixel(config)
    if config.mock is None:
        raise ValueError(f"{config.name}: the mujoco plant serves a mock robot's task world (a config with `mock:`)")
    from mock.mujoco_reality import MujocoReality  # imports MuJoCo: only when asked for

    return MujocoReality(config.mock.task, seed=0)


#: Plant name -> factory taking the hardware config.
PLANTS: dict[str, Callable[[HardwareConfig], Plant]] = {
    "simple": first_order_plant,  # each joint a first-order lag: no physics engine
    "pybullet": _pybullet,  # the simulated robot of the config, in PyBullet
    "mujoco": _mujoco,  # the mock robot's task world in MuJoCo: servos as firmware and DC motors
}


def make_plant(config: HardwareConfig, physics: str) -> Plant:
    """The plant named ``physics`` (a key of :data:`PLANTS`) for ``config``; ValueError names the known ones."""
    if physics not in PLANTS:
        raise ValueError(f"physics must be one of {sorted(PLANTS)}, got {physics!r}")
    return PLANTS[physics](config)

"""The servo emulator of a hardware config's bus protocol: Dynamixel Protocol 2.0 (:mod:`real.dynamixel.emulator`)
or Feetech STS (:mod:`real.feetech.emulator`), each servo of the config at its id, moved by ``plant``."""

from __future__ import annotations

from real.dynamixel import emulator as dynamixel
from real.feetech import emulator as feetech
from real.serial_emulator import EmulatorLoop
from robot.description import HardwareConfig

#: bus.protocol -> the emulator factory taking (config, plant)
EMULATORS = {"dynamixel2": dynamixel.emulator_for_config, "feetech": feetech.emulator_for_config}
#: bus.protocol -> the protocol's first-order servo model (no physics engine), for protocol tests
FIRST_ORDER_PLANTS = {"dynamixel2": dynamixel.FirstOrderPlant, "feetech": feetech.FirstOrderPlant}


def emulator_for_config(config: HardwareConfig, plant=None) -> EmulatorLoop:
    """A bus emulator speaking ``config.bus.protocol`` with every motor of ``config`` (ids, models, baud rate)."""
    return EMULATORS[config.bus.protocol](config, plant)


def first_order_plant(config: HardwareConfig):
    """Each servo of ``config`` a first-order lag toward its goal, by the rules of its protocol's control table."""
    return FIRST_ORDER_PLANTS[config.bus.protocol]()

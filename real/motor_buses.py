"""The bus and motor driver of a hardware config's protocol: one place that maps ``bus.protocol`` to the classes
that speak it (:class:`real.dynamixel.motor_bus.MotorBus` on a DynamixelBus, or
:class:`real.feetech.motor_bus.FeetechMotorBus` on a FeetechBus). Both motor drivers have the same methods and
units, so :class:`real.robot.Robot` drives either."""

from __future__ import annotations

from typing import Any

from real.dynamixel.bus import DynamixelBus
from real.dynamixel.motor_bus import MotorBus
from real.feetech.bus import FeetechBus
from real.feetech.motor_bus import FeetechMotorBus
from real.serial_bus import SerialBus
from robot.description import HardwareConfig

#: bus.protocol -> (bus class, motor driver class)
PROTOCOLS: dict[str, tuple[type[SerialBus], type[Any]]] = {
    "dynamixel2": (DynamixelBus, MotorBus),
    "feetech": (FeetechBus, FeetechMotorBus),
}


def open_bus(config: HardwareConfig, port: str | None = None, **kwargs: Any) -> SerialBus:
    """The config's bus (its protocol, baud rate and port, or ``port``), opened."""
    bus_class, _ = PROTOCOLS[config.bus.protocol]
    return bus_class(port or config.bus.port, config.bus.baudrate, **kwargs).open()


def motor_driver(config: HardwareConfig, bus: SerialBus, fast_read: bool = True) -> MotorBus | FeetechMotorBus:
    """The motor driver of the config's protocol on an open ``bus``."""
    _, driver = PROTOCOLS[config.bus.protocol]
    return driver(config, bus, fast_read=fast_read)

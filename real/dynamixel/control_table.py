"""Control tables of the X-series servos this project drives, as data, and register <-> SI unit conversion.

Addresses, sizes, access and units are from the ROBOTIS e-manual control tables of the XM430-W350, XL430-W250 and
XL330-M288 (Protocol 2.0 firmware). The three share one layout; they differ in which registers exist (the XL430
has no current control: register 126 is Present Load in 0.1 %) and in the current unit (XM430: 2.69 mA, XL330:
1 mA). Conversion to SI happens here and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum


class OperatingMode(IntEnum):
    """Register 11 values (e-manual "Operating Mode")."""

    CURRENT = 0
    VELOCITY = 1
    POSITION = 3
    EXTENDED_POSITION = 4
    CURRENT_BASED_POSITION = 5
    PWM = 16


@dataclass(frozen=True)
class Register:
    """One control table entry: ``SI = (raw - offset) * unit`` (``unit`` None: a unitless raw value);
    ``signed``: two's complement. Position registers have offset 2048 (the middle of a turn is 0 rad)."""

    name: str
    address: int
    size: int
    access: str  # "R" or "RW"
    unit: float | None = None
    signed: bool = False
    eeprom: bool = False
    offset: int = 0

    def to_si(self, raw: int) -> float:
        return (raw - self.offset) * self.unit if self.unit is not None else float(raw)

    def from_si(self, value: float) -> int:
        """Nearest raw count of an SI value; raises ValueError when it does not fit the register."""
        raw = int(round(value / self.unit)) + self.offset if self.unit is not None else int(round(value))
        lo, hi = self.raw_range
        if not lo <= raw <= hi:
            raise ValueError(f"{self.name}: {value} ({raw} counts) does not fit {self.size} bytes ({lo}..{hi})")
        return raw

    @property
    def raw_range(self) -> tuple[int, int]:
        bits = 8 * self.size
        return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed else (0, (1 << bits) - 1)

    def clamp(self, raw: int) -> int:
        """``raw`` limited to what the register can hold."""
        lo, hi = self.raw_range
        return max(lo, min(hi, int(raw)))

    def encode(self, raw: int) -> bytes:
        lo, hi = self.raw_range
        if not lo <= raw <= hi:
            raise ValueError(f"{self.name}: raw value {raw} out of range {lo}..{hi}")
        return int(raw).to_bytes(self.size, "little", signed=self.signed)

    def decode(self, data: bytes) -> int:
        if len(data) != self.size:
            raise ValueError(f"{self.name}: expected {self.size} bytes, got {len(data)}")
        return int.from_bytes(data, "little", signed=self.signed)


TICK = 2 * math.pi / 4096  # rad per position count (0.088 deg)
RPM_0229 = 0.229 * 2 * math.pi / 60  # rad/s per velocity count (0.229 rpm)


def _x_series(current_unit: float | None, has_current: bool) -> dict[str, Register]:
    regs = [
        Register("model_number", 0, 2, "R", eeprom=True),
        Register("model_information", 2, 4, "R", eeprom=True),
        Register("firmware_version", 6, 1, "R", eeprom=True),
        Register("id", 7, 1, "RW", eeprom=True),
        Register("baud_rate", 8, 1, "RW", eeprom=True),
        Register("return_delay_time", 9, 1, "RW", unit=2e-6, eeprom=True),  # 2 us per count
        Register("drive_mode", 10, 1, "RW", eeprom=True),
        Register("operating_mode", 11, 1, "RW", eeprom=True),
        Register("secondary_id", 12, 1, "RW", eeprom=True),
        Register("protocol_type", 13, 1, "RW", eeprom=True),
        Register("homing_offset", 20, 4, "RW", unit=TICK, signed=True, eeprom=True),
        Register("moving_threshold", 24, 4, "RW", unit=RPM_0229, eeprom=True),
        Register("temperature_limit", 31, 1, "RW", unit=1.0, eeprom=True),  # degC
        Register("max_voltage_limit", 32, 2, "RW", unit=0.1, eeprom=True),  # V
        Register("min_voltage_limit", 34, 2, "RW", unit=0.1, eeprom=True),
        Register("pwm_limit", 36, 2, "RW", unit=1 / 885, eeprom=True),  # fraction of full duty (885 = 100 %)
        Register("velocity_limit", 44, 4, "RW", unit=RPM_0229, eeprom=True),
        Register("max_position_limit", 48, 4, "RW", unit=TICK, eeprom=True, offset=2048),
        Register("min_position_limit", 52, 4, "RW", unit=TICK, eeprom=True, offset=2048),
        Register("shutdown", 63, 1, "RW", eeprom=True),
        Register("torque_enable", 64, 1, "RW"),
        Register("led", 65, 1, "RW"),
        Register("status_return_level", 68, 1, "RW"),
        Register("registered_instruction", 69, 1, "R"),
        Register("hardware_error_status", 70, 1, "R"),
        Register("velocity_i_gain", 76, 2, "RW"),
        Register("velocity_p_gain", 78, 2, "RW"),
        Register("position_d_gain", 80, 2, "RW"),
        Register("position_i_gain", 82, 2, "RW"),
        Register("position_p_gain", 84, 2, "RW"),
        Register("feedforward_2nd_gain", 88, 2, "RW"),
        Register("feedforward_1st_gain", 90, 2, "RW"),
        Register("bus_watchdog", 98, 1, "RW", unit=0.020),  # 20 ms per count; 0 disables
        Register("goal_pwm", 100, 2, "RW", unit=1 / 885, signed=True),
        Register("goal_velocity", 104, 4, "RW", unit=RPM_0229, signed=True),
        Register("profile_acceleration", 108, 4, "RW"),
        Register("profile_velocity", 112, 4, "RW"),
        Register("goal_position", 116, 4, "RW", unit=TICK, signed=True, offset=2048),
        Register("realtime_tick", 120, 2, "R", unit=0.001),  # ms
        Register("moving", 122, 1, "R"),
        Register("moving_status", 123, 1, "R"),
        Register("present_pwm", 124, 2, "R", unit=1 / 885, signed=True),
        Register("present_velocity", 128, 4, "R", unit=RPM_0229, signed=True),
        Register("present_position", 132, 4, "R", unit=TICK, signed=True, offset=2048),
        Register("velocity_trajectory", 136, 4, "R", unit=RPM_0229, signed=True),
        Register("position_trajectory", 140, 4, "R", unit=TICK, signed=True, offset=2048),
        Register("present_input_voltage", 144, 2, "R", unit=0.1),
        Register("present_temperature", 146, 1, "R", unit=1.0),
    ]
    if has_current:
        regs += [
            Register("current_limit", 38, 2, "RW", unit=current_unit, eeprom=True),  # A
            Register("goal_current", 102, 2, "RW", unit=current_unit, signed=True),
            Register("present_current", 126, 2, "R", unit=current_unit, signed=True),
        ]
    else:
        regs.append(Register("present_load", 126, 2, "R", unit=0.001, signed=True))  # fraction (0.1 % counts)
    return {r.name: r for r in regs}


@dataclass(frozen=True)
class ServoModel:
    """A servo model: its model number (register 0), control table and supported operating modes."""

    name: str
    model_number: int
    registers: dict[str, Register]
    modes: tuple[OperatingMode, ...]

    def register(self, name: str) -> Register:
        try:
            return self.registers[name]
        except KeyError:
            raise KeyError(f"{self.name} has no register {name!r}") from None

    def by_address(self, address: int) -> Register | None:
        for r in self.registers.values():
            if r.address == address:
                return r
        return None


_M = OperatingMode
#: Model numbers from each e-manual page's control table (register 0 default).
MODELS: dict[str, ServoModel] = {
    "XM430-W350": ServoModel(
        "XM430-W350",
        1020,
        _x_series(0.00269, True),
        (_M.CURRENT, _M.VELOCITY, _M.POSITION, _M.EXTENDED_POSITION, _M.CURRENT_BASED_POSITION, _M.PWM),
    ),
    "XL430-W250": ServoModel(
        "XL430-W250", 1060, _x_series(None, False), (_M.VELOCITY, _M.POSITION, _M.EXTENDED_POSITION, _M.PWM)
    ),
    "XL330-M288": ServoModel(
        "XL330-M288",
        1200,
        _x_series(0.001, True),
        (_M.CURRENT, _M.VELOCITY, _M.POSITION, _M.EXTENDED_POSITION, _M.CURRENT_BASED_POSITION, _M.PWM),
    ),
}
MODEL_BY_NUMBER = {m.model_number: m for m in MODELS.values()}

#: Center of the position range: present_position 2048 is 0 rad of the motor.
POSITION_CENTER = 2048

#: Hardware Error Status (register 70) bits, e-manual "Hardware Error Status".
HARDWARE_ERROR_BITS = {
    0: "input voltage error",
    2: "overheating error",
    3: "motor encoder error",
    4: "electrical shock error",
    5: "overload error",
}


def decode_hardware_error(value: int) -> list[str]:
    """Names of the set bits of Hardware Error Status (register 70)."""
    return [name for bit, name in HARDWARE_ERROR_BITS.items() if value & (1 << bit)]


def motor_angle(ticks: int) -> float:
    """Motor angle (rad) of a present/goal position count, 2048 = 0 rad."""
    return (ticks - POSITION_CENTER) * TICK


def angle_ticks(angle: float) -> int:
    """Nearest position count of a motor angle (rad)."""
    return int(round(angle / TICK)) + POSITION_CENTER

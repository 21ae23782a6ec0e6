"""The Feetech STS3215's control table as data, with its sign-magnitude registers and SI conversion.

Addresses and sizes are the STS/SMS series memory table (Feetech, "FT-SMS-STS e-manual", as LeRobot's
``motors/feetech/tables.py`` lists it too). Facts from the same sources:

- model number 777; 4096 position counts a turn (0.088 deg), 2048 the middle; speeds in counts per second;
- sign-magnitude encodings, not two's complement: Homing_Offset carries its sign in bit 11, Goal_Velocity and
  Present_Velocity in bit 15 (LeRobot's encoding table), the position registers in bit 15 (used in the step modes
  only), Present_Load its direction in bit 10;
- ``Present_Position = Actual_Position - Homing_Offset`` (mod 4096): the firmware subtracts the offset;
- Present_Load in 0.1 % of the maximum torque, Present_Current in 6.5 mA, Present_Voltage in 0.1 V, Return_Delay_Time
  in 2 us, Torque_Limit and Max_Torque_Limit in 0.1 %;
- operating modes: 0 position, 1 constant speed (wheel), 2 PWM open loop, 3 step;
- Lock (55): with 0, writes to the EEPROM registers are also saved to flash (kept over a power cycle); with 1 (as the
  servos power up) they take effect but are lost at the next power-up.

Conversion to SI happens here and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from real.dynamixel.control_table import Register, ServoModel


class OperatingMode(IntEnum):
    """Register 33 values."""

    POSITION = 0
    VELOCITY = 1
    PWM = 2
    STEP = 3


@dataclass(frozen=True)
class FeetechRegister(Register):
    """A control table entry whose negative values are sign-magnitude: the magnitude in the bits below ``sign_bit``
    and the sign in ``sign_bit`` (None: unsigned). Little-endian, as the STS series stores words."""

    sign_bit: int | None = None

    @property
    def raw_range(self) -> tuple[int, int]:
        if self.sign_bit is None:
            return 0, (1 << (8 * self.size)) - 1
        top = (1 << self.sign_bit) - 1
        return -top, top

    def encode(self, raw: int) -> bytes:
        lo, hi = self.raw_range
        if not lo <= raw <= hi:
            raise ValueError(f"{self.name}: raw value {raw} out of range {lo}..{hi}")
        word = (-raw | (1 << self.sign_bit)) if raw < 0 and self.sign_bit is not None else raw
        return int(word).to_bytes(self.size, "little")

    def decode(self, data: bytes) -> int:
        if len(data) != self.size:
            raise ValueError(f"{self.name}: expected {self.size} bytes, got {len(data)}")
        word = int.from_bytes(data, "little")
        if self.sign_bit is None:
            return word
        magnitude = word & ((1 << self.sign_bit) - 1)
        return -magnitude if word & (1 << self.sign_bit) else magnitude


TICK = 2 * math.pi / 4096  # rad per position count
POSITION_CENTER = 2048
CURRENT_UNIT = 0.0065  # A per Present_Current count

_R = FeetechRegister


def _sts_registers() -> dict[str, FeetechRegister]:
    regs = [
        _R("firmware_major", 0, 1, "R", eeprom=True),
        _R("firmware_minor", 1, 1, "R", eeprom=True),
        _R("model_number", 3, 2, "R", eeprom=True),
        _R("id", 5, 1, "RW", eeprom=True),
        _R("baud_rate", 6, 1, "RW", eeprom=True),
        _R("return_delay_time", 7, 1, "RW", unit=2e-6, eeprom=True),
        _R("response_status_level", 8, 1, "RW", eeprom=True),
        _R("min_position_limit", 9, 2, "RW", unit=TICK, eeprom=True, offset=POSITION_CENTER),
        _R("max_position_limit", 11, 2, "RW", unit=TICK, eeprom=True, offset=POSITION_CENTER),
        _R("max_temperature_limit", 13, 1, "RW", unit=1.0, eeprom=True),  # degC
        _R("max_voltage_limit", 14, 1, "RW", unit=0.1, eeprom=True),  # V
        _R("min_voltage_limit", 15, 1, "RW", unit=0.1, eeprom=True),
        _R("max_torque_limit", 16, 2, "RW", unit=0.001, eeprom=True),  # fraction of the maximum torque
        _R("phase", 18, 1, "RW", eeprom=True),
        _R("unloading_condition", 19, 1, "RW", eeprom=True),
        _R("led_alarm_condition", 20, 1, "RW", eeprom=True),
        _R("p_coefficient", 21, 1, "RW", eeprom=True),
        _R("d_coefficient", 22, 1, "RW", eeprom=True),
        _R("i_coefficient", 23, 1, "RW", eeprom=True),
        _R("minimum_startup_force", 24, 2, "RW", eeprom=True),
        _R("cw_dead_zone", 26, 1, "RW", eeprom=True),
        _R("ccw_dead_zone", 27, 1, "RW", eeprom=True),
        _R("protection_current", 28, 2, "RW", unit=CURRENT_UNIT, eeprom=True),
        _R("angular_resolution", 30, 1, "RW", eeprom=True),
        _R("homing_offset", 31, 2, "RW", unit=TICK, eeprom=True, sign_bit=11),
        _R("operating_mode", 33, 1, "RW", eeprom=True),
        _R("protective_torque", 34, 1, "RW", eeprom=True),
        _R("protection_time", 35, 1, "RW", eeprom=True),
        _R("overload_torque", 36, 1, "RW", eeprom=True),
        _R("torque_enable", 40, 1, "RW"),
        _R("acceleration", 41, 1, "RW"),
        _R("goal_position", 42, 2, "RW", unit=TICK, offset=POSITION_CENTER, sign_bit=15),
        _R("goal_time", 44, 2, "RW", unit=0.001),  # s
        _R("goal_velocity", 46, 2, "RW", unit=TICK, sign_bit=15),  # rad/s; 0: the fastest
        _R("torque_limit", 48, 2, "RW", unit=0.001),
        _R("lock", 55, 1, "RW"),
        _R("present_position", 56, 2, "R", unit=TICK, offset=POSITION_CENTER, sign_bit=15),
        _R("present_velocity", 58, 2, "R", unit=TICK, sign_bit=15),
        _R("present_load", 60, 2, "R", unit=0.001, sign_bit=10),  # fraction of the maximum torque
        _R("present_voltage", 62, 1, "R", unit=0.1),
        _R("present_temperature", 63, 1, "R", unit=1.0),
        _R("status", 65, 1, "R"),
        _R("moving", 66, 1, "R"),
        _R("present_current", 69, 2, "R", unit=CURRENT_UNIT),
    ]
    return {r.name: r for r in regs}


MODELS: dict[str, ServoModel] = {"STS3215": ServoModel("STS3215", 777, _sts_registers(), tuple(OperatingMode))}
MODEL_BY_NUMBER = {m.model_number: m for m in MODELS.values()}
#: Baud_Rate register values (STS/SMS series).
BAUD_RATES = {1_000_000: 0, 500_000: 1, 250_000: 2, 128_000: 3, 115_200: 4, 57_600: 5, 38_400: 6, 19_200: 7}

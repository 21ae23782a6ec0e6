"""Control tables as data: addresses and units from the ROBOTIS e-manual, conversions to SI in one place."""

from __future__ import annotations

import math

import pytest

from real.dynamixel.control_table import (
    MODEL_BY_NUMBER,
    MODELS,
    OperatingMode,
    decode_hardware_error,
)


@pytest.mark.parametrize(
    ("name", "address", "size"),
    [
        ("model_number", 0, 2),
        ("id", 7, 1),
        ("baud_rate", 8, 1),
        ("return_delay_time", 9, 1),
        ("operating_mode", 11, 1),
        ("homing_offset", 20, 4),
        ("velocity_limit", 44, 4),
        ("max_position_limit", 48, 4),
        ("min_position_limit", 52, 4),
        ("torque_enable", 64, 1),
        ("status_return_level", 68, 1),
        ("hardware_error_status", 70, 1),
        ("position_p_gain", 84, 2),
        ("bus_watchdog", 98, 1),
        ("goal_velocity", 104, 4),
        ("profile_velocity", 112, 4),
        ("goal_position", 116, 4),
        ("present_velocity", 128, 4),
        ("present_position", 132, 4),
        ("present_input_voltage", 144, 2),
        ("present_temperature", 146, 1),
    ],
)
def test_shared_x_series_addresses(name, address, size):
    for model in MODELS.values():
        reg = model.register(name)
        assert (reg.address, reg.size) == (address, size), model.name


def test_models_differ_where_the_emanual_says():
    assert {n: m.model_number for n, m in MODELS.items()} == {
        "XM430-W350": 1020,
        "XL430-W250": 1060,
        "XL330-M288": 1200,
    }
    assert MODEL_BY_NUMBER[1060].name == "XL430-W250"
    xl430 = MODELS["XL430-W250"]
    assert "present_current" not in xl430.registers and xl430.register("present_load").address == 126
    assert OperatingMode.CURRENT_BASED_POSITION not in xl430.modes
    assert MODELS["XM430-W350"].register("present_current").to_si(100) == pytest.approx(0.269)
    assert MODELS["XL330-M288"].register("present_current").to_si(100) == pytest.approx(0.100)
    with pytest.raises(KeyError, match="XL430-W250 has no register 'goal_current'"):
        xl430.register("goal_current")


def test_unit_conversions():
    reg = MODELS["XM430-W350"].registers
    assert reg["present_position"].to_si(2048) == 0.0
    assert reg["present_position"].to_si(3072) == pytest.approx(math.pi / 2)
    assert reg["goal_position"].from_si(-math.pi / 2) == 1024
    assert reg["present_velocity"].to_si(1) == pytest.approx(0.229 * 2 * math.pi / 60)
    assert reg["present_velocity"].to_si(-10) == pytest.approx(-10 * 0.0239809, rel=1e-5)
    assert reg["bus_watchdog"].from_si(0.1) == 5
    assert reg["return_delay_time"].to_si(250) == pytest.approx(0.0005)
    with pytest.raises(ValueError, match="does not fit"):
        reg["bus_watchdog"].from_si(10.0)


def test_register_bytes_signed_and_unsigned():
    reg = MODELS["XL330-M288"].registers
    assert reg["goal_velocity"].encode(-1) == b"\xff\xff\xff\xff"
    assert reg["goal_velocity"].decode(b"\xff\xff\xff\xff") == -1
    assert reg["goal_position"].encode(512) == bytes.fromhex("00 02 00 00")  # the e-manual's write example
    assert reg["torque_enable"].decode(b"\x01") == 1
    with pytest.raises(ValueError, match="out of range"):
        reg["torque_enable"].encode(256)


def test_hardware_error_bits():
    assert decode_hardware_error(0) == []
    assert decode_hardware_error(0b0010_0100) == ["overheating error", "overload error"]

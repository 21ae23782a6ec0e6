"""Facts about the servo models and bus protocols a hardware config may name, from their datasheets: stall torque,
speed, rated and input voltage, factory gains, which protocol speaks to which model, and each protocol's baud rates.
Units are SI (N*m, rad/s, V, A)."""

from __future__ import annotations

import math

#: Servo models the driver knows, with facts from the ROBOTIS e-manual datasheets:
#: stall torque (N*m) and no-load speed (rad/s) at the nominal supply voltage ``rated_v`` (V).
#: XM430-W350: 4.1 N*m, 46 rpm @ 12 V; XL430-W250: 1.5 N*m, 57 rpm @ 12 V; XL330-M288: 0.52 N*m, 103 rpm @ 5 V.
#: Feetech STS3215 (the 7.4 V, 1:345 version the SO-101 follower uses; Feetech's specification sheet as distributors
#: publish it): 19.5 kg*cm = 1.91 N*m stall torque and 0.192 s/60 deg (52 rpm) no-load at 7.4 V, operating voltage
#: 4-7.4 V; no stall current is published, so its effort comes from Present_Load (a fraction of the maximum torque,
#: taken as the stall torque). Its position_p_gain is the P_Coefficient register's factory value (32), which the
#: simulator does not use (PyBullet's position motor; the voltage servo model is fitted to Dynamixel logs only).
#: stall_current (A, at the same voltage; models with current sensing): XM430-W350 2.3 A @ 12 V, XL330-M288 1.47 A
#: @ 5 V. Torque is close to proportional to current (the e-manual's performance graphs; ROBOTIS's own estimate
#: of torque is stall torque x present current / stall current), which :func:`torque_per_amp` takes.
#: position_p_gain: the Position P Gain register's factory default (e-manual control tables).
#: min_input_v, max_input_v: the specification's "Input Voltage" range (V): XM430-W350 10.0-14.8 V (recommended
#: 12.0 V), XL430-W250 6.5-12.0 V (recommended 11.1 V), XL330-M288 3.7-6.0 V (recommended 5.0 V).
SERVO_MODELS: dict[str, dict[str, float]] = {
    "XM430-W350": {
        "stall_torque": 4.1,
        "stall_current": 2.3,
        "no_load_speed": 46 * 2 * math.pi / 60,
        "rated_v": 12.0,
        "position_p_gain": 800,
        "min_input_v": 10.0,
        "max_input_v": 14.8,
    },
    "XL430-W250": {
        "stall_torque": 1.5,
        "no_load_speed": 57 * 2 * math.pi / 60,
        "rated_v": 12.0,
        "position_p_gain": 640,
        "min_input_v": 6.5,
        "max_input_v": 12.0,
    },
    "XL330-M288": {
        "stall_torque": 0.52,
        "stall_current": 1.47,
        "no_load_speed": 103 * 2 * math.pi / 60,
        "rated_v": 5.0,
        "position_p_gain": 400,
        "min_input_v": 3.7,
        "max_input_v": 6.0,
    },
    "STS3215": {
        "stall_torque": 19.5 * 9.80665 / 100,
        "no_load_speed": 52 * 2 * math.pi / 60,
        "rated_v": 7.4,
        "position_p_gain": 32,
        "min_input_v": 4.0,
        "max_input_v": 7.4,
    },
}

#: Which bus protocol speaks to which servo models.
PROTOCOL_MODELS: dict[str, frozenset[str]] = {
    "dynamixel2": frozenset({"XM430-W350", "XL430-W250", "XL330-M288"}),
    "feetech": frozenset({"STS3215"}),
}


def torque_per_amp(model: str) -> float | None:
    """Output torque per motor current (N*m/A) of a servo model with current sensing (stall torque / stall
    current, see :data:`SERVO_MODELS`); None for a model without."""
    facts = SERVO_MODELS[model]
    return facts["stall_torque"] / facts["stall_current"] if "stall_current" in facts else None


def torque_per_effort_unit(model: str) -> float:
    """N*m per unit of the effort register a servo model reports: per A of Present Current (current sensing), or
    per full Present Load (the stall torque) for a model without."""
    per_amp = torque_per_amp(model)
    return per_amp if per_amp is not None else SERVO_MODELS[model]["stall_torque"]


#: Models with current sensing and current-based position control (e-manual operating modes).
CURRENT_SENSING_MODELS = frozenset({"XM430-W350", "XL330-M288"})

#: Baud rates each protocol's servos can be set to (Dynamixel X e-manual, Baud Rate (8); Feetech STS memory table,
#: Baud_Rate (6)).
BAUD_RATES: dict[str, tuple[int, ...]] = {
    "dynamixel2": (9600, 57600, 115200, 1000000, 2000000, 3000000, 4000000, 4500000),
    "feetech": (19200, 38400, 57600, 115200, 128000, 250000, 500000, 1000000),
}

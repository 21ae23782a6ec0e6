"""A Dynamixel X-series servo as a DC motor behind the firmware's position loop, for system identification.

The firmware runs a P loop on the PWM duty cycle (Dynamixel X e-manual, "Position P Gain": KPP = register / 128,
position error in pulses of 2*pi/4096 rad, PWM output in units of 1/885 of full duty), so

    duty    = clip(gain_scale * kp / 128 * error_rad * 4096 / (2 pi) / 885, -max_duty, max_duty)
    current = clip((vin * duty - kt * omega) / R, -max_current, max_current)
    torque  = kt * current                                            (output side, gearbox included)

``gain_scale`` is 1 for the e-manual's formula. The real XL330's Present PWM register is exactly 0.5 times it
(measured on the eight shared pendulum logs: slope 0.498-0.500 at every P gain, residual under 1 % of full scale),
so a fit pins ``gain_scale`` and ``max_duty`` from logs that carry that register (:mod:`calibration.servo_sysid`).
The servo also caps the motor current below what the PWM it reports would drive: on those logs two P gains whose PWM
differ (757 and 885 of 885) stall a lift at the same angle, which a duty limit alone cannot do, and the fits put the
cap at 1.7-1.9 A. The default, 1.75 A, is the XL330-M288's Current Limit register default (e-manual control table
address 38; the e-manual documents that register for the current-based modes, so the cap is fitted where the logs
reach it). With torque off the motor exerts nothing (its driver is open, no back-EMF braking: ROBOTIS's support
forum says the motor is then de-energized). The load adds its inertia to the motor's ``armature`` (reflected rotor
inertia) and its gravity torque ``external``.

Friction is viscous (``viscous * omega``) plus a friction budget that stops the joint instead of reversing it
(applied implicitly), after the models of Duclusaud et al., "Extended Friction Models for the Physics Simulation of
Servo Actuators" (BAM, ICRA 2025):

    gearbox = |ratio_external * external - motor|                   (the torque the gearbox carries, N*m)
    budget  = coulomb + load_friction * gearbox + load_quadratic * gearbox^2
              + exp(-(omega / stribeck_speed)^2) * (stribeck + stribeck_load * gearbox)

The load-dependent terms act with torque off too (gravity alone loads the gearbox), which is what stops a free
pendulum within a few swings; ``ratio_external`` != 1 makes them directional (back-driving the gearbox from the
load side costs another friction than driving it from the motor). Each friction model of
:mod:`calibration.servo_sysid` frees a subset of these terms; the others stay at their defaults, which switch the
term off (Stribeck's exponent is fixed at 2, the common Gaussian form, to keep the parameter count small). The
quadratic load term is ours and empirical: on the shared XL330 logs the friction that holds a slow lift is about 0.26
of the gearbox load at kp 100, 0.31 at kp 200 and 0.35 at kp 400 (from the held angles and Present PWM), a share
that grows with the load, which one linear coefficient cannot give.

Datasheet defaults are for the XL330-M288 (ROBOTIS e-manual: stall 0.52 N*m at 5.0 V and 1.47 A, so R = 3.4 ohm
and kt = 0.354 N*m/A; Current Limit 1,750 mA). Armature and friction are guesses of the right order; the fit
replaces them.

Everything is vectorized over columns: one column per (parameter set, log) pair, so that a population of
parameter candidates is simulated on all logs in one pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

GRAVITY = 9.81  # m/s^2
TICKS_PER_RAD = 4096 / (2 * np.pi)  # X-series position resolution
PWM_FULL_SCALE = 885.0  # X-series PWM register value of 100 % duty
KP_DIVISOR = 128.0  # e-manual: KPP = Position P Gain register / 128

#: Integration step of :func:`simulate` (s). 4 ms resolves the stiffest loop in the pendulum logs (kp 800 gives a
#: natural frequency of about 20 rad/s) with semi-implicit Euler: on the shared XL330 logs the simulated angles
#: stay within 1 mrad (mean per log) of a 1 ms integration, at a quarter of its cost.
DEFAULT_DT = 0.004


#: The friction law above, recorded in parameter files (``friction_law``): a file fitted under the older law (load
#: friction on the motor torque alone) is refused by :func:`params_from_record` rather than read under this one.
FRICTION_LAW = "gearbox_load"
#: max_current (A) of a parameters file written before the current limit was modelled: a limit never reached.
NO_CURRENT_LIMIT = 1000.0


@dataclass
class VoltageServoParams:
    """Parameters of the model. kt: N*m/A (= V*s/rad), output side; R: ohm; armature: kg*m^2; coulomb: N*m;
    viscous: N*m*s/rad; load_friction: dimensionless (Coulomb friction per N*m carried by the gearbox);
    latency: s (goal to motor); gain_scale: on the e-manual's P gain formula; max_duty: fraction of full PWM;
    stribeck: N*m of extra friction at standstill; stribeck_load: extra friction per gearbox N*m at standstill;
    stribeck_speed: rad/s over which the Stribeck terms fade; ratio_external: weight of the external torque in the
    gearbox load (1: not directional); max_current: A, the firmware's current limit; load_quadratic: 1/(N*m),
    Coulomb friction per squared N*m carried by the gearbox."""

    kt: float = 0.354
    R: float = 3.4
    armature: float = 0.003
    coulomb: float = 0.05
    viscous: float = 0.01
    load_friction: float = 0.0
    latency: float = 0.0
    gain_scale: float = 1.0
    max_duty: float = 1.0
    stribeck: float = 0.0
    stribeck_load: float = 0.0
    stribeck_speed: float = 0.2
    ratio_external: float = 1.0
    max_current: float = 1.75
    load_quadratic: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"VoltageServoParams.{name}: expected a finite value >= 0, got {value}")
        for name in ("kt", "R", "armature", "gain_scale", "max_duty", "stribeck_speed", "max_current"):
            if getattr(self, name) <= 0:
                raise ValueError(f"VoltageServoParams.{name}: expected > 0, got {getattr(self, name)}")
        if self.max_duty > 1.0:
            raise ValueError(f"VoltageServoParams.max_duty: expected <= 1, got {self.max_duty}")

    @classmethod
    def names(cls) -> list[str]:
        return list(cls.__dataclass_fields__)

    @property
    def load_dependent(self) -> bool:
        """Whether :func:`friction_budget` reads the external torque (a load-dependent term is on): a simulator need
        not compute the load otherwise."""
        return self.load_friction > 0 or self.stribeck_load > 0 or self.load_quadratic > 0

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, n) for n in self.names()], dtype=float)

    @classmethod
    def from_vector(cls, x: np.ndarray) -> VoltageServoParams:
        return cls(**{n: float(v) for n, v in zip(cls.names(), x, strict=True)})


def params_record(params: VoltageServoParams, model: str | None = None) -> dict:
    """The ``kind: voltage_servo`` record of a parameters file (read back by :func:`params_from_record`): the
    friction law, the friction model's name when known, and the parameters to 6 decimals."""
    record: dict = {"kind": "voltage_servo", "friction_law": FRICTION_LAW}
    if model is not None:
        record["model"] = model
    return record | {"params": {k: round(v, 6) for k, v in vars(params).items()}}


def params_from_record(record: dict, source: str) -> VoltageServoParams:
    """The parameters of a ``kind: voltage_servo`` record written by ``s2r sysid`` (``source`` names it in errors);
    ValueError for a record fitted under another friction law whose load friction would now mean something else."""
    params = record.get("params")
    if not isinstance(params, dict):
        raise ValueError(f"{source}: no params (write a voltage servo model with s2r sysid)")
    law = record.get("friction_law")
    if law != FRICTION_LAW and float(params.get("load_friction", 0.0)) > 0:
        raise ValueError(
            f"{source}: fitted under friction law {law or 'motor_torque (before friction_law was recorded)'!r}, "
            f"this version uses {FRICTION_LAW!r}: its load_friction would mean something else; fit it again"
        )
    if "max_current" not in params:  # fitted before the current limit was modelled: its fit assumed none
        params = {**params, "max_current": NO_CURRENT_LIMIT}
    return VoltageServoParams(**params)


@dataclass(frozen=True)
class PendulumLoad:
    """A mass ``mass`` (kg) at ``length`` (m) from the servo axis; angle 0 hangs straight down."""

    mass: float
    length: float

    @property
    def inertia(self) -> float:  # kg*m^2, point mass
        return self.mass * self.length**2

    @property
    def gravity_torque(self) -> float:  # N*m at 90 deg
        return self.mass * GRAVITY * self.length


def duty_per_rad(kp: np.ndarray | float, gain_scale: np.ndarray | float) -> np.ndarray | float:
    """PWM duty (fraction) per rad of position error for P gain register value ``kp``."""
    return gain_scale * np.asarray(kp) / KP_DIVISOR * TICKS_PER_RAD / PWM_FULL_SCALE


def friction_budget(params: np.ndarray, motor: np.ndarray, external: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """The most friction torque (N*m, >= 0) the joint can resist with now: ``params`` in
    :meth:`VoltageServoParams.names` order (columns, or one set), ``motor`` and ``external`` torques on the joint
    (N*m) and its speed ``omega`` (rad/s). See the module docstring for the law."""
    _, _, _, coulomb, _, load, _, _, _, stribeck, stribeck_load, stribeck_speed, ratio, _, quadratic = params[:15]
    gearbox = np.abs(ratio * external - motor)
    fade = np.exp(-((omega / stribeck_speed) ** 2))
    return coulomb + (load + quadratic * gearbox) * gearbox + fade * (stribeck + stribeck_load * gearbox)


def simulate(
    params: np.ndarray,
    goal: np.ndarray,
    torque_enable: np.ndarray,
    q0: np.ndarray,
    kp: np.ndarray,
    vin: np.ndarray,
    load_inertia: np.ndarray,
    load_gravity: np.ndarray,
    dt: float = DEFAULT_DT,
) -> np.ndarray:
    """Joint angles (rad), shape (steps, columns), from a standstill at ``q0``.

    params: (15, columns) in :meth:`VoltageServoParams.names` order. goal: (steps, columns) goal positions the
    motor sees at each step (already delayed by the latency); torque_enable: (steps, columns) bool. kp: P gain
    register; vin: supply (V); load_inertia: kg*m^2; load_gravity: N*m (mass * g * length), all per column.
    """
    kt, R, armature, _, viscous, _, _, gain_scale, max_duty = params[:9]
    max_current = params[13]
    inertia = load_inertia + armature
    gain = duty_per_rad(kp, gain_scale)
    q = np.array(q0, dtype=float)
    w = np.zeros_like(q)
    out = np.empty(goal.shape)
    for k in range(goal.shape[0]):
        out[k] = q
        duty = np.clip(gain * (goal[k] - q), -max_duty, max_duty) * torque_enable[k]
        motor = kt * np.clip((vin * duty - kt * w * torque_enable[k]) / R, -max_current, max_current)
        external = -load_gravity * np.sin(q)
        free = w + dt * (motor + external - viscous * w) / inertia
        stop = friction_budget(params, motor, external, w) * dt / inertia
        w = np.where(np.abs(free) <= stop, 0.0, free - np.sign(free) * stop)
        q = q + dt * w
    return out

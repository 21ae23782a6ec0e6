"""What a Dynamixel X servo's firmware and motor do with its control table, as torque on a joint: the servo model
of the MuJoCo reality, driven by the emulator's register state (never by a simulator's built-in motor).

Per the ROBOTIS X-series e-manual: in position mode the firmware runs a PID loop from the goal position to a PWM
duty (``KPP = Position P Gain / 128``, ``KPD = Position D Gain / 16``; error in pulses of 2*pi/4096 rad; duty in
1/885 of full scale, limited by PWM Limit); with a Profile Velocity the goal is approached along a velocity-limited
profile (Profile Velocity in 0.229 rpm; 0: none). In velocity mode a PI loop (``KVP = Velocity P Gain / 128``,
``KVI = Velocity I Gain / 65536``, error in 0.229 rpm, accumulated at the firmware's 1 kHz cycle) gives the duty.
The motor is a DC motor behind its gearbox: ``torque = kt * (V * duty - kt * omega) / R`` (output side), with kt
and R from the datasheet's stall torque and no-load speed at the rated voltage (:data:`robot.description.
SERVO_MODELS`), and a current-sensing model's torque limited by its Current Limit register.
"""

from __future__ import annotations

from dataclasses import dataclass

from real.dynamixel.control_table import RPM_0229, TICK, OperatingMode
from real.dynamixel.emulator import EmulatedServo
from robot.description import SERVO_MODELS, torque_per_amp

PWM_FULL_SCALE = 885.0  # X-series PWM register value of 100 % duty
FIRMWARE_HZ = 1000.0  # the velocity loop's integration rate


@dataclass(frozen=True)
class MotorConstants:
    """Output-side DC motor constants of a servo model: ``kt`` (N*m/A = V*s/rad) and ``resistance`` (ohm)."""

    kt: float
    resistance: float

    @classmethod
    def of(cls, model: str) -> MotorConstants:
        """From the datasheet: no-load speed gives kt = V / omega0, stall torque gives R = kt * V / tau_stall."""
        facts = SERVO_MODELS[model]
        kt = facts["rated_v"] / facts["no_load_speed"]
        return cls(kt, kt * facts["rated_v"] / facts["stall_torque"])


@dataclass(frozen=True)
class Registers:
    """The control-table values the firmware acts on, in SI (decoded once per change of the control table)."""

    torque_on: bool
    velocity_mode: bool
    goal: float  # rad (motor angle, homing offset removed) or rad/s in velocity mode
    max_duty: float  # PWM Limit, fraction of full duty
    kpp: float  # Position P Gain / 128 (PWM units per pulse)
    kpd: float  # Position D Gain / 16
    kvp: float  # Velocity P Gain / 128 (PWM units per 0.229 rpm)
    kvi: float  # Velocity I Gain / 65536
    profile: float  # Profile Velocity (rad/s; 0: none)
    current_limit: float | None  # A (models with current sensing)

    #: Bytes of the control table below the present registers (address 124 on): what a host writes.
    SPAN = 124

    @classmethod
    def read(cls, servo: EmulatedServo) -> Registers:
        regs = servo.model.registers
        velocity_mode = OperatingMode(servo.get("operating_mode")) == OperatingMode.VELOCITY
        goal = regs["goal_velocity"].to_si(servo.get("goal_velocity")) if velocity_mode else servo.goal_angle()
        return cls(
            torque_on=bool(servo.get("torque_enable")),
            velocity_mode=velocity_mode,
            goal=goal,
            max_duty=servo.get("pwm_limit") / PWM_FULL_SCALE,
            kpp=servo.get("position_p_gain") / 128,
            kpd=servo.get("position_d_gain") / 16,
            kvp=servo.get("velocity_p_gain") / 128,
            kvi=servo.get("velocity_i_gain") / 65536,
            profile=servo.get("profile_velocity") * RPM_0229,
            current_limit=regs["current_limit"].to_si(servo.get("current_limit")) if "current_limit" in regs else None,
        )


class ServoFirmware:
    """One servo's control loop and motor: :meth:`torque` (N*m on the motor shaft, output side) from its registers,
    the motor angle and velocity, every physics step; :meth:`reset` when it is power cycled or rebuilt."""

    def __init__(self, model: str, supply_v: float) -> None:
        self.model = model
        self.motor = MotorConstants.of(model)
        self.supply_v = float(supply_v)
        self.per_amp = torque_per_amp(model)  # N*m per A of the Present Current register (None: Present Load)
        self.strength = 1.0  # scale on the motor's torque (a weaker or stronger unit)
        self.gain_scale = 1.0  # scale on the position loop's gains
        self.velocity_gain_scale = 1.0  # scale on the velocity loop's gains
        self._key: bytes | None = None
        self._registers: Registers | None = None
        self.duty = 0.0  # the PWM duty of the last step (fraction of full; Present PWM shows it)
        self.reset()

    def reset(self) -> None:
        self._setpoint: float | None = None  # the profile's position now (rad), None until torque comes on
        self._integral = 0.0  # velocity loop's accumulated error (0.229 rpm x firmware cycles)

    def registers(self, servo: EmulatedServo) -> Registers:
        """The servo's control settings now (decoded again only when the host changed its control table)."""
        key = bytes(servo.mem[: Registers.SPAN])
        if key != self._key:
            self._key, self._registers = key, Registers.read(servo)
        return self._registers

    def torque(self, regs: Registers, powered: bool, goal: float, angle: float, velocity: float, dt: float) -> float:
        """Output torque (N*m) for ``dt`` seconds from the control settings ``regs``, the ``goal`` as the motor sees
        it (rad, or rad/s in velocity mode: ``regs.goal`` some latency ago), motor ``angle`` (rad) and ``velocity``
        (rad/s); 0 with torque off or without power (``powered`` False: a hardware error, a vanished servo)."""
        if not regs.torque_on or not powered:
            self.reset()
            self.duty = 0.0
            return 0.0
        if regs.velocity_mode:
            error = (goal - velocity) / RPM_0229
            self._integral += error * dt * FIRMWARE_HZ
            duty = (regs.kvp * error + regs.kvi * self._integral) * self.velocity_gain_scale / PWM_FULL_SCALE
            if abs(duty) > regs.max_duty:  # anti-windup: the integral stops growing at saturation
                self._integral -= error * dt * FIRMWARE_HZ
        else:
            if self._setpoint is None:
                self._setpoint = angle
            step = goal - self._setpoint
            if regs.profile > 0:
                step = max(-regs.profile * dt, min(regs.profile * dt, step))
            self._setpoint += step
            error = (self._setpoint - angle) / TICK
            d_error = -velocity / TICK / FIRMWARE_HZ  # the error's change per firmware cycle (pulses)
            duty = (regs.kpp * error + regs.kpd * d_error) * self.gain_scale / PWM_FULL_SCALE
        duty = self.duty = max(-regs.max_duty, min(regs.max_duty, duty))
        kt, r = self.motor.kt, self.motor.resistance
        tau = self.strength * kt * (self.supply_v * duty - kt * velocity) / r
        if self.per_amp is not None and regs.current_limit is not None:
            limit = self.per_amp * regs.current_limit
            tau = max(-limit, min(limit, tau))
        return tau

    def effort_register(self, tau: float) -> float:
        """The value (SI) of the servo's Present Current (A) or Present Load (fraction of stall) for torque ``tau``."""
        if self.per_amp is not None:
            return tau / self.per_amp
        return tau / SERVO_MODELS[self.model]["stall_torque"]

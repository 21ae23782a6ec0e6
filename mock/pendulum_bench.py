"""A servo test bench behind the Dynamixel emulator: one X-series servo swinging a pendulum, the reality that
``s2r calibrate bench --mock`` records from.

The servo's torque is the firmware model's (:class:`mock.servo_firmware.ServoFirmware`: the e-manual's P loop, the
datasheet's DC motor, the current limit), not the sysid's voltage model, so a fit of the recorded logs meets a
reality it does not contain exactly. The pendulum hangs at motor angle ``hang_rad``; its friction is a Coulomb
part, a viscous part and a part proportional to the torque through the gearbox (motor and load), applied
implicitly so that it stops the joint instead of reversing it. Each step writes what the servo reports: Present PWM
(the firmware's duty), Present Current, input voltage and temperature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mock.servo_firmware import PWM_FULL_SCALE, ServoFirmware
from real.dynamixel.emulator import BusEmulator, EmulatedServo
from sim.voltage_servo import PendulumLoad


@dataclass(frozen=True)
class PendulumBench:
    """The bench's physics: ``mass`` (kg) at ``length`` (m), hanging at motor angle ``hang_rad``; ``armature``
    (kg*m^2, the rotor's inertia seen at the horn); friction ``coulomb`` (N*m), ``viscous`` (N*m*s/rad) and
    ``load_friction`` (N*m per N*m through the gearbox); ``supply_v`` (V)."""

    mass: float = 0.49
    length: float = 0.1
    hang_rad: float = 0.0
    armature: float = 0.003
    coulomb: float = 0.01
    viscous: float = 0.01
    load_friction: float = 0.2
    supply_v: float = 7.4
    temperature_c: int = 31


class PendulumBenchPlant:
    """Moves the one servo of a bench emulator (the emulator's plant)."""

    def __init__(self, bench: PendulumBench, model: str = "XL330-M288") -> None:
        self.bench = bench
        self.load = PendulumLoad(bench.mass, bench.length)
        self.firmware = ServoFirmware(model, bench.supply_v)

    def step(self, dt: float, servos: dict[int, EmulatedServo]) -> None:
        b = self.bench
        for s in servos.values():
            if s.faults.vanished:
                continue
            regs = self.firmware.registers(s)
            powered = not s.faults.hardware_error
            motor = self.firmware.torque(regs, powered, regs.goal, s.position, s.velocity, dt)
            external = -self.load.gravity_torque * math.sin(s.position - b.hang_rad)
            inertia = self.load.inertia + b.armature
            free = s.velocity + dt * (motor + external - b.viscous * s.velocity) / inertia
            stop = (b.coulomb + b.load_friction * abs(external - motor)) * dt / inertia
            s.velocity = 0.0 if abs(free) <= stop else free - math.copysign(stop, free)
            s.position += dt * s.velocity
            s.current = self.firmware.effort_register(motor)
            s.set("present_pwm", round(self.firmware.duty * PWM_FULL_SCALE))
            s.set("present_input_voltage", round(b.supply_v * 10))
            s.set("present_temperature", b.temperature_c)


def bench_emulator(
    bench: PendulumBench | None = None, ident: int = 1, model: str = "XL330-M288", baudrate: int = 1_000_000
) -> BusEmulator:
    """A bus emulator with one servo ``ident`` of ``model`` on the pendulum ``bench``, hanging at rest."""
    bench = bench or PendulumBench()
    servo = EmulatedServo(ident, model)
    servo.position = bench.hang_rad
    return BusEmulator({ident: servo}, PendulumBenchPlant(bench, model), baudrate)

"""A Feetech bus emulator: STS3215 servos with their memory table answering the STS protocol byte for byte.

Mock hardware at the lowest level, as :mod:`real.dynamixel.emulator` is for Dynamixel: the emulator owns the master
side of a pseudo-terminal (:func:`real.serial_emulator.open_pty`, served by the same
:class:`~real.serial_emulator.EmulatorThread`) and the driver, ours or the vendor's ``scservo_sdk``, opens the slave
side as if it were the servo adapter board. Each servo keeps its memory table in a byte array laid out as the
vendor's (:mod:`real.feetech.control_table`); reads and writes go through it.

Behaviour implemented: ping (no parameters back), read, write, reg write held until action, sync write (no reply)
and sync read (each listed servo answers in turn with a read reply), Response_Status_Level (0: only ping and read
are answered), Return_Delay_Time, ``Present_Position = Actual_Position - Homing_Offset`` (mod 4096), torque on
setting the goal to the present position (no jump), goals clamped to the position limits in position mode, EEPROM
writes kept over a power cycle (:meth:`FeetechServo.power_cycle`) only when written with Lock at 0, writes to read-
only registers ignored (the protocol has no error bit for them), and the status error bits
(:data:`real.feetech.protocol.ERROR_BITS`) raised by faults. The same fault knobs as the Dynamixel emulator
(:class:`real.serial_emulator.Faults`): dropped, corrupt, late, bit-flipped replies, frozen values, a vanished
servo.
"""

from __future__ import annotations

import math
from typing import Protocol

from real.dynamixel.control_table import ServoModel
from real.feetech.control_table import MODELS, POSITION_CENTER, OperatingMode
from real.feetech.protocol import BROADCAST_ID, Frame, FrameParser, Instruction, encode
from real.serial_emulator import EmulatorLoop, Faults, RegisterMemory, transfer_time

TURN = 4096  # position counts a turn


class FeetechServo(RegisterMemory):
    """One servo: its memory table bytes, its faults and its motion state (SI units). ``position`` is the actual
    motor angle (rad, 0 at the encoder's middle count), before the homing offset."""

    def __init__(self, ident: int, model: ServoModel | str = "STS3215") -> None:
        self.model = MODELS[model] if isinstance(model, str) else model
        self.mem = bytearray(256)
        self.faults = Faults()
        self.ident = ident
        self.position = 0.0
        self.velocity = 0.0  # rad/s
        self.load = 0.0  # fraction of the maximum torque
        self.current = 0.0  # A
        self.pending: list[tuple[int, bytes]] = []  # reg writes waiting for action
        self._factory_defaults()

    def _factory_defaults(self) -> None:
        defaults = {
            "firmware_major": 3, "firmware_minor": 10, "model_number": self.model.model_number, "id": self.ident,
            "baud_rate": 0, "return_delay_time": 0, "response_status_level": 1, "min_position_limit": 0,
            "max_position_limit": TURN - 1, "max_temperature_limit": 70, "max_voltage_limit": 140,
            "min_voltage_limit": 40, "max_torque_limit": 1000, "p_coefficient": 32, "d_coefficient": 32,
            "protection_current": 500, "angular_resolution": 1, "torque_limit": 1000, "lock": 1,
            "present_voltage": 74, "present_temperature": 30, "unloading_condition": 44, "led_alarm_condition": 47,
        }  # fmt: skip
        for name, raw in defaults.items():
            self.set(name, raw)
        #: EEPROM register values kept in flash: written while Lock is 0, restored at power-up
        self.flash = {name: self.get(name) for name, reg in self.model.registers.items() if reg.eeprom}

    def power_cycle(self) -> None:
        """Off and on again: RAM registers back to their power-up values, EEPROM ones to what flash kept."""
        flash, position = self.flash, self.position
        self.mem[:] = bytes(len(self.mem))
        self._factory_defaults()
        for name, raw in flash.items():
            self.set(name, raw)
        self.flash, self.position, self.velocity, self.pending = flash, position, 0.0, []

    def present_ticks(self) -> int:
        """Present_Position: the actual count minus the homing offset, within a turn."""
        actual = round(self.position / self.model.register("present_position").unit) + POSITION_CENTER
        return (actual - self.get("homing_offset")) % TURN

    def _sync_present(self) -> None:
        """Write the motion state into the present registers, honouring frozen values."""
        vel, load = self.model.register("present_velocity"), self.model.register("present_load")
        cur = self.model.register("present_current")
        self.set("present_position", self.present_ticks())
        self.set("present_velocity", vel.clamp(round(self.velocity / vel.unit)))
        self.set("present_load", load.clamp(round(self.load / load.unit)))
        self.set("present_current", cur.clamp(round(self.current / cur.unit)))
        self.set("moving", int(abs(self.velocity) > 0.01))
        for name, raw in self.faults.freeze.items():
            self.set(name, raw)

    def read(self, address: int, length: int) -> bytes | None:
        """``length`` bytes from ``address`` (None when outside the table)."""
        if length == 0 or address + length > len(self.mem):
            return None
        self._sync_present()
        return bytes(self.mem[address : address + length])

    def write(self, address: int, data: bytes) -> None:
        """Apply a write the way the firmware does: registers it may not take are left as they are."""
        end = address + len(data)
        if not data or end > len(self.mem):
            return
        if self.faults.vanish_on_write in [
            r.name for r in self.model.registers.values() if r.address < end and address < r.address + r.size
        ]:
            self.faults.vanished = True
            return
        saving = self.get("lock") == 0
        for reg in self.model.registers.values():
            if not (address <= reg.address and reg.address + reg.size <= end) or reg.access == "R":
                continue
            value = reg.decode(data[reg.address - address : reg.address - address + reg.size])
            if reg.name == "goal_position" and self.get("operating_mode") == OperatingMode.POSITION:
                value = max(self.get("min_position_limit"), min(self.get("max_position_limit"), value))
            self.set(reg.name, value)
            if reg.eeprom and saving:
                self.flash[reg.name] = value
            if reg.name == "torque_enable" and value:
                self.set("goal_position", self.present_ticks())  # no jump when torque comes on

    def in_velocity_mode(self) -> bool:
        """Whether the servo follows Goal_Velocity (constant speed mode) rather than a goal position."""
        return self.get("operating_mode") == OperatingMode.VELOCITY

    def goal_angle(self) -> float:
        """The goal as an actual motor angle (rad): the goal count plus the homing offset (the firmware compares
        it with Present_Position, which has the offset taken off)."""
        ticks = self.get("goal_position") + self.get("homing_offset")
        return (ticks - POSITION_CENTER) * self.model.register("goal_position").unit

    def error_byte(self) -> int:
        return self.faults.hardware_error & 0xFF


class Plant(Protocol):
    """Moves the emulated servos: called with the elapsed time (s) and the servos."""

    def step(self, dt: float, servos: dict[int, FeetechServo]) -> None: ...


class FirstOrderPlant:
    """A simple servo model for protocol tests: position mode tracks the goal with a time constant (the shortest
    way round the turn), speed mode reaches the goal velocity with it."""

    def __init__(self, time_constant: float = 0.05) -> None:
        self.tau = time_constant

    def step(self, dt: float, servos: dict[int, FeetechServo]) -> None:
        for s in servos.values():
            if s.faults.vanished or not s.get("torque_enable") or s.faults.hardware_error:
                s.velocity = 0.0
                continue
            if s.in_velocity_mode():
                target = s.model.register("goal_velocity").to_si(s.get("goal_velocity"))
                s.velocity += (target - s.velocity) * min(1.0, dt / self.tau)
            else:
                error = (s.goal_angle() - s.position + math.pi) % (2 * math.pi) - math.pi
                s.velocity = error / self.tau
            s.position += s.velocity * dt


class FeetechBusEmulator(EmulatorLoop):
    """The servos on one bus and the frame handling; :meth:`serve` runs it on a file descriptor."""

    def __init__(self, servos: dict[int, FeetechServo], plant: Plant | None = None, baudrate: int = 1_000_000):
        super().__init__(servos, plant or FirstOrderPlant(), baudrate)
        self.parser = FrameParser()
        self.packets_handled = 0

    def handle(self, frame: Frame, now: float | None = None) -> list[tuple[float, bytes]]:
        """Replies to one instruction frame as (delay in s, bytes)."""
        self.advance(now)
        self.packets_handled += 1
        inst, params = frame.code, frame.params
        targets = list(self.servos.values()) if frame.ident == BROADCAST_ID else [self.servos.get(frame.ident)]
        targets = [s for s in targets if s is not None]
        unicast = frame.ident != BROADCAST_ID
        replies: list[tuple[float, bytes]] = []
        if inst == Instruction.PING and unicast:
            replies += self._reply(targets, b"", always=True)
        elif inst == Instruction.READ and unicast and len(params) == 2:
            data = targets[0].read(params[0], params[1]) if targets else None
            if data is not None:
                replies += self._reply(targets, data, always=True)
        elif inst in (Instruction.WRITE, Instruction.REG_WRITE) and len(params) >= 2:
            for s in targets:
                if s.faults.vanished:
                    continue
                if inst == Instruction.WRITE:
                    s.write(params[0], params[1:])
                else:
                    s.pending.append((params[0], params[1:]))
            if unicast:
                replies += self._reply(targets, b"")
        elif inst == Instruction.ACTION:
            for s in targets:
                for address, data in s.pending:
                    s.write(address, data)
                s.pending.clear()
            if unicast:
                replies += self._reply(targets, b"")
        elif inst == Instruction.SYNC_WRITE and len(params) >= 2:
            address, n = params[0], params[1]
            body = params[2:]
            for i in range(0, len(body) - n, n + 1):
                s = self.servos.get(body[i])
                if s is not None and not s.faults.vanished:
                    s.write(address, body[i + 1 : i + 1 + n])
        elif inst == Instruction.SYNC_READ and len(params) >= 3:
            for slot, ident in enumerate(params[2:]):
                s = self.servos.get(ident)
                data = s.read(params[0], params[1]) if s is not None else None
                if s is not None and data is not None:
                    replies += self._reply([s], data, always=True, slot=slot)
        return replies

    def _reply(self, servos: list[FeetechServo], params: bytes, always: bool = False, slot: int = 0):
        if not servos:
            return []
        s = servos[0]
        f = s.faults
        if f.silences_reply() or (not always and s.get("response_status_level") == 0):
            return []
        raw = bytearray(encode(s.ident, s.error_byte(), params))
        if f.flip_bit:
            raw[4] ^= 0x01  # the error byte's lowest bit: the checksum no longer matches
        if f.corrupts_reply():
            raw[-1] ^= 0xFF
        delay = s.get("return_delay_time") * 2e-6 + f.delay_s
        delay += slot * (transfer_time(len(raw), self.baudrate) + s.get("return_delay_time") * 2e-6)
        return [(delay, bytes(raw))]


def feetech_emulator(ids: list[int], plant: Plant | None = None, baudrate: int = 1_000_000) -> FeetechBusEmulator:
    """An emulator with one STS3215 at each of ``ids``."""
    return FeetechBusEmulator({i: FeetechServo(i) for i in ids}, plant, baudrate)


def emulator_for_config(config, plant: Plant | None = None) -> FeetechBusEmulator:
    """A bus emulator with every motor of a Feetech hardware config (ids and models from the config)."""
    servos = {m.id: FeetechServo(m.id, m.model) for m in config.motors}
    return FeetechBusEmulator(servos, plant, baudrate=config.bus.baudrate)

"""A Dynamixel bus emulator: servos with real control tables answering Protocol 2.0 packets byte for byte.

Mock hardware at the lowest level: the emulator owns the master side of a pseudo-terminal and the real driver code
opens the slave side as if it were a U2D2. Each emulated servo keeps its control table in a byte array laid out as
the e-manual's; reads and writes go through it, so the driver's addresses, sizes and units are exercised for real.

Behaviour implemented: ping (unicast and broadcast, replies staggered by id), read, write, sync read / write,
fast sync read (one chained reply), reboot (torque off, errors cleared), factory reset (options 0xFF, 0x01, 0x02);
access errors for read-only registers and for EEPROM writes while torque is on; data range errors for goals outside
the limits; return delay time (register 9); status return level (register 68); the bus watchdog (register 98:
when the host goes quiet for longer than it, the servo stops, holds its position and its goals are refused
until the host writes 0 to register 98, as the e-manual describes); hardware error status (register 70) with
the alert bit. Motion comes from a pluggable plant (:class:`FirstOrderPlant` here; a PyBullet plant can drive it).

The serving loop, the pseudo-terminal and the fault knobs are shared with the Feetech emulator
(:mod:`real.serial_emulator`). Fault knobs (:class:`~real.serial_emulator.Faults`) make a servo drop replies,
corrupt the CRC, reply late, flip a bit, report overload or overheating, freeze a value, or vanish.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from real.dynamixel.control_table import MODELS, OperatingMode, ServoModel
from real.dynamixel.protocol import (
    BROADCAST_ID,
    Instruction,
    Packet,
    PacketParser,
    encode_fast_status,
    encode_status,
)
from real.serial_emulator import (  # noqa: F401 - the shared pieces, importable from here as before
    EmulatorLoop,
    EmulatorThread,
    Faults,
    RegisterMemory,
    close_pty,
    open_pty,
    transfer_time,
)

ERR_INSTRUCTION, ERR_CRC, ERR_RANGE, ERR_LENGTH, ERR_LIMIT, ERR_ACCESS = 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
ALERT = 0x80


class EmulatedServo(RegisterMemory):
    """One servo: its control table bytes, its faults and its motion state (SI units)."""

    def __init__(self, ident: int, model: ServoModel | str) -> None:
        self.model = MODELS[model] if isinstance(model, str) else model
        self.mem = bytearray(256)
        self.faults = Faults()
        self.ident = ident
        self._factory_defaults(keep_id=True)
        self.position = 0.0  # motor angle, rad
        self.velocity = 0.0  # rad/s
        self.current = 0.0  # A (models with current sensing)
        self.load = 0.0  # fraction of the stall torque (models that report Present Load instead)
        self.last_heard = time.monotonic()
        self.watchdog_tripped = False

    # -- memory ---------------------------------------------------------------------------------------------
    def _factory_defaults(self, keep_id: bool = True, keep_baud: bool = False) -> None:
        baud = self.get("baud_rate") if keep_baud else 3  # 3 = 1 Mbps
        if not keep_id:
            self.ident = 1
        self.mem[:] = bytes(256)
        self.set("model_number", self.model.model_number)
        self.set("firmware_version", 52)
        self.set("id", self.ident)
        self.set("baud_rate", baud)
        self.set("return_delay_time", 250)  # 500 us, the factory default
        self.set("operating_mode", int(OperatingMode.POSITION))
        self.set("protocol_type", 2)
        self.set("temperature_limit", 80)
        self.set("max_voltage_limit", 160)
        self.set("min_voltage_limit", 60)
        self.set("pwm_limit", 885)
        self.set("velocity_limit", 265 if self.model.name == "XL430-W250" else 200)
        self.set("max_position_limit", 4095)
        self.set("min_position_limit", 0)
        self.set("shutdown", 52)
        self.set("status_return_level", 2)
        self.set("position_p_gain", 800)
        self.set("velocity_p_gain", 100)
        self.set("velocity_i_gain", 1000)
        self.set("present_input_voltage", 120)
        self.set("present_temperature", 30)
        if "current_limit" in self.model.registers:
            self.set("current_limit", 1193 if self.model.name == "XM430-W350" else 1750)

    def _sync_present(self) -> None:
        """Write the motion state into the present registers (raw counts), honouring frozen values."""
        pos = self.model.register("present_position")
        vel = self.model.register("present_velocity")
        # Present Position = actual position + Homing Offset (register 20), per the e-manual.
        self.set(
            "present_position", pos.clamp(round(self.position / pos.unit) + pos.offset + self.get("homing_offset"))
        )
        self.set("present_velocity", vel.clamp(round(self.velocity / vel.unit)))
        self.set("moving", int(abs(self.velocity) > 0.01))
        if "present_current" in self.model.registers:
            cur = self.model.register("present_current")
            self.set("present_current", cur.clamp(round(self.current / cur.unit)))
        if "present_load" in self.model.registers:
            load = self.model.register("present_load")
            self.set("present_load", load.clamp(round(self.load / load.unit)))
        self.set("hardware_error_status", self.get("hardware_error_status") | self.faults.hardware_error)
        for name, raw in self.faults.freeze.items():
            self.set(name, raw)

    def read(self, address: int, length: int) -> tuple[int, bytes]:
        if address + length > len(self.mem) or length == 0:
            return ERR_ACCESS, b""
        self._sync_present()
        return 0, bytes(self.mem[address : address + length])

    def write(self, address: int, data: bytes) -> int:
        """Apply a write; returns the status error number (0: done)."""
        end = address + len(data)
        touched = [r for r in self.model.registers.values() if r.address < end and address < r.address + r.size]
        if not touched or end > len(self.mem):
            return ERR_ACCESS
        for reg in touched:
            if reg.access == "R":
                return ERR_ACCESS
            if reg.eeprom and self.get("torque_enable"):
                return ERR_ACCESS  # EEPROM is locked while torque is on (e-manual)
            if reg.address < address or reg.address + reg.size > end:
                return ERR_LENGTH  # partial register writes are refused
        if self.faults.vanish_on_write in [r.name for r in touched]:
            self.faults.vanished = True  # gone before the write takes effect
            return 0
        for reg in touched:
            raw = reg.decode(data[reg.address - address : reg.address - address + reg.size])
            if reg.name in ("goal_position", "goal_velocity") and self.watchdog_tripped:
                return ERR_RANGE
            if reg.name == "goal_position":
                lo, hi = self.get("min_position_limit"), self.get("max_position_limit")
                mode = OperatingMode(self.get("operating_mode"))
                if mode in (OperatingMode.POSITION, OperatingMode.CURRENT_BASED_POSITION) and not lo <= raw <= hi:
                    return ERR_RANGE
            if reg.name == "goal_velocity" and abs(raw) > self.get("velocity_limit"):
                return ERR_RANGE
            if reg.name == "operating_mode" and raw not in [int(m) for m in self.model.modes]:
                return ERR_RANGE
        self.mem[address:end] = data
        if any(r.name == "bus_watchdog" for r in touched) and self.get("bus_watchdog") == 0:
            self.watchdog_tripped = False
        if any(r.name == "torque_enable" for r in touched) and self.get("torque_enable"):
            self._sync_present()
            self.set("goal_position", self.get("present_position"))  # no jump when torque comes on
        return 0

    # -- events ---------------------------------------------------------------------------------------------
    def in_velocity_mode(self) -> bool:
        """Whether the servo follows Goal Velocity (a wheel) rather than a goal position."""
        return self.get("operating_mode") == OperatingMode.VELOCITY

    def goal_angle(self) -> float:
        """The goal position as an actual motor angle (rad): the goal register minus the homing offset."""
        reg = self.model.register("goal_position")
        return reg.to_si(self.get("goal_position") - self.get("homing_offset"))

    def heard(self, now: float) -> None:
        self.last_heard = now

    def check_watchdog(self, now: float) -> None:
        wd = self.get("bus_watchdog")
        if 0 < wd < 128 and self.get("torque_enable") and now - self.last_heard > wd * 0.020:
            self.watchdog_tripped = True
            self.set("bus_watchdog", 0xFF)  # -1: the fail-safe state
            self.set("goal_velocity", 0)
            self._sync_present()
            self.set("goal_position", self.get("present_position"))

    def reboot(self) -> None:
        self.set("torque_enable", 0)
        self.set("hardware_error_status", 0)
        self.faults.hardware_error = 0
        self.watchdog_tripped = False
        if self.get("bus_watchdog") == 0xFF:
            self.set("bus_watchdog", 0)

    def factory_reset(self, option: int) -> None:
        """Option 0xFF resets everything (id becomes 1), 0x01 keeps the id, 0x02 keeps the id and baud rate."""
        self._factory_defaults(keep_id=option in (0x01, 0x02), keep_baud=option == 0x02)

    def error_byte(self, error: int) -> int:
        hw = self.get("hardware_error_status") | self.faults.hardware_error
        return error | (ALERT if hw else 0)


class Plant(Protocol):
    """Moves the emulated servos: called with the elapsed time (s) and the servos."""

    def step(self, dt: float, servos: dict[int, EmulatedServo]) -> None: ...


class FirstOrderPlant:
    """A simple servo model for protocol tests: position mode tracks the goal with a time constant, clipped to the
    profile/velocity limit; velocity mode reaches the goal velocity with the same time constant."""

    def __init__(self, time_constant: float = 0.05) -> None:
        self.tau = time_constant

    def step(self, dt: float, servos: dict[int, EmulatedServo]) -> None:
        for s in servos.values():
            if s.faults.vanished:
                continue
            if not s.get("torque_enable") or s.faults.hardware_error:
                s.velocity = 0.0
                continue
            mode = OperatingMode(s.get("operating_mode"))
            vmax = s.model.register("velocity_limit").to_si(s.get("velocity_limit")) or math.inf
            if mode == OperatingMode.VELOCITY:
                target = s.model.register("goal_velocity").to_si(s.get("goal_velocity"))
                s.velocity += (target - s.velocity) * min(1.0, dt / self.tau)
            else:
                s.velocity = max(-vmax, min(vmax, (s.goal_angle() - s.position) / self.tau))
            s.position += s.velocity * dt


class BusEmulator(EmulatorLoop):
    """The servos on one bus and the packet handling; :meth:`serve` runs it on a file descriptor."""

    def __init__(self, servos: dict[int, EmulatedServo], plant: Plant | None = None, baudrate: int = 1_000_000):
        super().__init__(servos, plant or FirstOrderPlant(), baudrate)
        self.parser = PacketParser()
        self.packets_handled = 0

    def tick(self, now: float) -> None:
        for s in self.servos.values():
            s.check_watchdog(now)

    def handle(self, pkt: Packet, now: float | None = None) -> list[tuple[float, bytes]]:
        """Replies to one instruction packet as (delay in s, bytes); servos that must stay silent give none."""
        now = time.monotonic() if now is None else now
        self.advance(now)
        self.packets_handled += 1
        if pkt.is_status:
            return []
        targets = self._targets(pkt)
        for s in targets:
            if not s.faults.vanished:
                s.heard(now)
        inst = pkt.instruction
        replies: list[tuple[float, bytes]] = []
        if inst == Instruction.PING:
            order = sorted(s.ident for s in targets)
            for rank, ident in enumerate(order):
                s = self.servos[ident]
                params = s.get("model_number").to_bytes(2, "little") + bytes([s.get("firmware_version")])
                replies += self._reply(s, 0, params, slot=rank, always=True)
        elif inst == Instruction.READ and len(pkt.params) == 4 and pkt.ident != BROADCAST_ID:
            s = targets[0] if targets else None
            if s is not None:
                addr = int.from_bytes(pkt.params[:2], "little")
                n = int.from_bytes(pkt.params[2:4], "little")
                err, data = s.read(addr, n)
                replies += self._reply(s, err, data, always=True)
        elif inst == Instruction.WRITE and len(pkt.params) >= 3:
            addr = int.from_bytes(pkt.params[:2], "little")
            for s in targets:
                err = s.write(addr, pkt.params[2:])
                if pkt.ident != BROADCAST_ID:
                    replies += self._reply(s, err, b"")
        elif inst == Instruction.SYNC_READ and len(pkt.params) >= 5:
            addr = int.from_bytes(pkt.params[:2], "little")
            n = int.from_bytes(pkt.params[2:4], "little")
            for rank, ident in enumerate(pkt.params[4:]):
                s = self.servos.get(ident)
                if s is not None:
                    err, data = s.read(addr, n)
                    replies += self._reply(s, err, data, slot=rank, always=True)
        elif inst == Instruction.FAST_SYNC_READ and len(pkt.params) >= 5:
            replies += self._fast_sync_read(pkt.params)
        elif inst == Instruction.SYNC_WRITE and len(pkt.params) >= 4:
            addr = int.from_bytes(pkt.params[:2], "little")
            n = int.from_bytes(pkt.params[2:4], "little")
            body = pkt.params[4:]
            for i in range(0, len(body) - n, n + 1):
                s = self.servos.get(body[i])
                if s is not None and not s.faults.vanished:
                    s.heard(now)
                    s.write(addr, body[i + 1 : i + 1 + n])
        elif inst == Instruction.REBOOT:
            for s in targets:
                s.reboot()
                replies += self._reply(s, 0, b"")
        elif inst == Instruction.FACTORY_RESET:
            option = pkt.params[0] if pkt.params else 0xFF
            for s in targets:
                s.factory_reset(option)
                replies += self._reply(s, 0, b"")
        else:
            for s in targets:
                replies += self._reply(s, ERR_INSTRUCTION, b"")
        return replies

    def _fast_sync_read(self, params: bytes) -> list[tuple[float, bytes]]:
        """One chained reply: each servo appends its block in turn; a silent servo breaks the chain there. Every
        servo's faults apply to its own block (a flipped bit in its data, a wrong CRC at its block's end)."""
        addr = int.from_bytes(params[:2], "little")
        n = int.from_bytes(params[2:4], "little")
        blocks, delay, damaged = [], 0.0, []
        for ident in params[4:]:
            s = self.servos.get(ident)
            if s is None or s.faults.silences_reply():
                break
            err, data = s.read(addr, n)
            if err:
                data = bytes(n)
            blocks.append((s.error_byte(err), ident, data))
            damaged.append((s.faults.flip_bit, s.faults.corrupts_reply()))
            delay += s.get("return_delay_time") * 2e-6 + s.faults.delay_s
        if not blocks:
            return []
        raw = bytearray(encode_fast_status(blocks))
        for k, (flip, corrupt) in enumerate(damaged):
            start = 8 + k * (4 + n)  # header, id, length, instruction; then error, id, data, CRC per servo
            if flip:
                raw[start + (2 if n else 0)] ^= 0x01  # the first data byte's lowest bit (the error byte's if none)
            if corrupt:
                raw[start + 3 + n] ^= 0xFF  # this block's CRC: the packet's CRC no longer matches
        n_total = len(params) - 4
        if len(blocks) < n_total:  # the chain stopped: the bytes sent so far, without the final CRC
            raw = raw[:-2]
        return [(delay, bytes(raw))]

    def _targets(self, pkt: Packet) -> list[EmulatedServo]:
        if pkt.ident == BROADCAST_ID:
            return list(self.servos.values())
        s = self.servos.get(pkt.ident)
        return [s] if s is not None else []

    def _reply(self, s: EmulatedServo, error: int, params: bytes, slot: int = 0, always: bool = False):
        f = s.faults
        if f.silences_reply():
            return []
        # Status return level: 0 = ping only, 1 = ping and read, 2 = all (e-manual register 68).
        if not always and s.get("status_return_level") < 2:
            return []
        raw = bytearray(encode_status(s.ident, s.error_byte(error), params))
        if f.flip_bit:
            raw[8] ^= 0x01  # the error byte's lowest bit, or the first parameter's
        if f.corrupts_reply():
            raw[-1] ^= 0xFF
        delay = s.get("return_delay_time") * 2e-6 + f.delay_s
        # Several servos answering one instruction go one after another, in id order.
        delay += slot * (transfer_time(len(raw), self.baudrate) + s.get("return_delay_time") * 2e-6)
        return [(delay, bytes(raw))]


def emulator_for_config(config, plant: Plant | None = None) -> BusEmulator:
    """A bus emulator with every motor of a hardware config (ids and models from the config)."""
    servos = {m.id: EmulatedServo(m.id, m.model) for m in config.motors}
    return BusEmulator(servos, plant=plant, baudrate=config.bus.baudrate)

"""A thread-safe Dynamixel Protocol 2.0 bus on pyserial: :class:`real.serial_bus.SerialBus` (transactions,
timeouts, retries, reply pairing with fences, the host latency allowance) with Protocol 2.0's packets.

A servo's own error is not retried (it would fail the same way) and raises :class:`ServoError` naming the motor, the
register and the decoded error; when the alert bit is set it reads Hardware Error Status (register 70) and raises
:class:`HardwareAlert` with the decoded bits, even if the instruction itself succeeded. The fence is a ping, whose
3-parameter reply no other transaction expects.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from real.dynamixel.control_table import Register, decode_hardware_error
from real.dynamixel.protocol import BROADCAST_ID, Instruction, Packet, PacketParser, encode, split_fast_status
from real.serial_bus import (  # noqa: F401 - the bus errors, importable from here as before
    PORT_FAILURES,
    BusError,
    BusTimeout,
    CorruptReply,
    PortError,
    SerialBus,
    latency_timer_ms,
    wire_time,
)

#: A ping's status packet carries 3 parameters (model number, firmware version); no read the driver makes is 3
#: bytes long, so a fence's reply cannot be mistaken for another transaction's.
PING_PARAMS = 3

#: The bus errors' base class under its older name.
DynamixelError = BusError


class ServoError(BusError):
    """A servo answered with an error in its status packet."""

    def __init__(self, ident: int, what: str, packet: Packet, hardware_error: int | None = None) -> None:
        self.ident, self.packet, self.hardware_error = ident, packet, hardware_error
        text = f"motor {ident}: {what}: {packet.error_text()}"
        if hardware_error:
            text += f" ({', '.join(decode_hardware_error(hardware_error))})"
        super().__init__(text)


class HardwareAlert(ServoError):
    """The status packet's alert bit: the servo has a hardware error (register 70) and has turned torque off.
    Reboot the servo to clear it."""


class DynamixelBus(SerialBus):
    """One Dynamixel Protocol 2.0 bus. ``return_delay_s``: the servos' return delay time (register 9; the factory
    default is 500 us, a configured robot sets it to 0)."""

    broadcast_id = BROADCAST_ID
    reply_overhead = 11  # header 4, id, length 2, instruction, error, CRC 2

    def _new_parser(self) -> PacketParser:
        return PacketParser()

    def _parser_errors(self) -> int:
        return self._parser.crc_errors

    @staticmethod
    def _is_reply(pkt: Packet) -> bool:
        return pkt.is_status

    def _fence_request(self, ident: int) -> bytes:
        return encode(ident, Instruction.PING)

    def _is_fence_reply(self, pkt: Packet, ident: int) -> bool:
        return pkt.is_status and pkt.ident == ident and len(pkt.params) == PING_PARAMS

    def _check(self, pkt: Packet, ident: int, what: str, n_params: int | None = None) -> Packet:
        if pkt.error_number or pkt.alert:
            hw = self._hardware_error(ident) if pkt.alert else None
            raise (HardwareAlert if pkt.alert else ServoError)(ident, what, pkt, hw)
        if n_params is not None and len(pkt.params) != n_params:
            self.stats["corrupt"] += 1
            raise CorruptReply(f"{what}: motor {ident} sent {len(pkt.params)} bytes, expected {n_params}")
        return pkt

    def _hardware_error(self, ident: int) -> int | None:
        try:
            pkt = self._once(
                encode(ident, Instruction.READ, (70).to_bytes(2, "little") + (1).to_bytes(2, "little")),
                [ident],
                12,
                f"read hardware error status of motor {ident}",
            )
            return pkt[ident].params[0] if pkt[ident].params else None
        except BusError:
            return None

    # -- instructions ---------------------------------------------------------------------------------------
    def ping(self, ident: int) -> int:
        """Model number of servo ``ident``."""
        what = f"ping motor {ident}"
        pkt = self._transact(encode(ident, Instruction.PING), [ident], 14, what)[ident]
        return int.from_bytes(self._check(pkt, ident, what, 3).params[:2], "little")

    def scan(self, ids: Iterable[int] = range(0, 253)) -> dict[int, int]:
        """Broadcast ping: ``{id: model number}`` of the servos among ``ids`` that answer."""
        ids = list(ids)
        with self._lock:
            ser = self._ser
            if ser is None:
                raise BusError(f"bus {self.port} is not open")
            found: dict[int, int] = {}
            try:
                ser.reset_input_buffer()
                self._parser.clear()
                self._dirty = True  # a slow servo's answer may come after the deadline: fence the next transaction
                self._failed = (time.monotonic(), set(), [])
                ser.write(encode(BROADCAST_ID, Instruction.PING))
                deadline = time.monotonic() + self._deadline(10, [14] * len(ids))
                while time.monotonic() < deadline:
                    data = self._read(256, deadline)
                    if not data:
                        break
                    for pkt in self._parser.feed(data):
                        if pkt.is_status and pkt.ident in ids and len(pkt.params) == PING_PARAMS:
                            found[pkt.ident] = int.from_bytes(pkt.params[:2], "little")
            except PORT_FAILURES as e:
                raise PortError(f"scan: port {self.port} failed ({e}): is the adapter unplugged?") from e
            for ident in found:
                self._heard[ident] = time.monotonic()
        return dict(sorted(found.items()))

    def read(self, ident: int, reg: Register, alert_ok: bool = False) -> int:
        """Raw value of one register. ``alert_ok``: return the value of a servo in hardware alert (its status
        carries the alert bit with valid data) instead of raising :class:`HardwareAlert`."""
        what = f"read {reg.name} of motor {ident}"
        params = reg.address.to_bytes(2, "little") + reg.size.to_bytes(2, "little")
        pkt = self._transact(encode(ident, Instruction.READ, params), [ident], 11 + reg.size, what)[ident]
        if alert_ok and pkt.alert and not pkt.error_number and len(pkt.params) == reg.size:
            return reg.decode(pkt.params)
        return reg.decode(self._check(pkt, ident, what, reg.size).params)

    def write(self, ident: int, reg: Register, raw: int) -> None:
        """Acknowledged write of one register."""
        what = f"write {reg.name} = {raw} to motor {ident}"
        params = reg.address.to_bytes(2, "little") + reg.encode(raw)
        pkt = self._transact(encode(ident, Instruction.WRITE, params), [ident], 11, what)[ident]
        self._check(pkt, ident, what)

    def sync_read(self, ids: list[int], reg: Register) -> dict[int, int]:
        """One register of several servos in one transaction."""
        what = f"sync read {reg.name} of motors {ids}"
        params = reg.address.to_bytes(2, "little") + reg.size.to_bytes(2, "little") + bytes(ids)
        got = self._transact(encode(BROADCAST_ID, Instruction.SYNC_READ, params), list(ids), 11 + reg.size, what)
        return {i: reg.decode(self._check(got[i], i, what, reg.size).params) for i in ids}

    def fast_sync_read(self, ids: list[int], reg: Register) -> dict[int, int]:
        """Like :meth:`sync_read`, but the servos answer in one chained status packet (Fast Sync Read, 0x8A;
        X-series firmware 45 and later): fewer bytes on the wire and one reply to wait for."""
        what = f"fast sync read {reg.name} of motors {ids}"
        params = reg.address.to_bytes(2, "little") + reg.size.to_bytes(2, "little") + bytes(ids)
        reply_len = 8 + len(ids) * (4 + reg.size)
        request = encode(BROADCAST_ID, Instruction.FAST_SYNC_READ, params)
        pkt = self._transact(request, [BROADCAST_ID], reply_len, what, ids=list(ids))[BROADCAST_ID]
        try:
            blocks = split_fast_status(pkt, len(ids), reg.size)
        except ValueError as e:
            self.stats["corrupt"] += 1
            raise CorruptReply(f"{what}: {e}") from None
        out = {}
        for (error, ident, data), expected in zip(blocks, ids, strict=True):
            if ident != expected:
                self.stats["corrupt"] += 1
                raise CorruptReply(f"{what}: block from id {ident} where id {expected} was expected")
            self._check(Packet(ident, 0x55, data, error), ident, what, reg.size)
            out[ident] = reg.decode(data)
        return out

    def sync_write(self, reg: Register, values: dict[int, int]) -> None:
        """One register of several servos in one packet (no reply, by the protocol)."""
        params = reg.address.to_bytes(2, "little") + reg.size.to_bytes(2, "little")
        for ident, raw in values.items():
            params += bytes([ident]) + reg.encode(raw)
        self._transact(encode(BROADCAST_ID, Instruction.SYNC_WRITE, params), [], 0, f"sync write {reg.name}")

    def reboot(self, ident: int) -> None:
        what = f"reboot motor {ident}"
        self._check(self._transact(encode(ident, Instruction.REBOOT), [ident], 11, what)[ident], ident, what)

    def factory_reset(self, ident: int, keep: str = "id_and_baud", *, confirm: bool = False) -> None:
        """Reset a servo's control table. Guarded: pass ``confirm=True``. ``keep``: "id_and_baud", "id" or
        "nothing" (the id becomes 1)."""
        if not confirm:
            raise BusError("factory_reset erases the servo's configuration; call it with confirm=True")
        option = {"id_and_baud": 0x02, "id": 0x01, "nothing": 0xFF}[keep]
        what = f"factory reset motor {ident}"
        pkt = self._transact(encode(ident, Instruction.FACTORY_RESET, bytes([option])), [ident], 11, what)[ident]
        self._check(pkt, ident, what)

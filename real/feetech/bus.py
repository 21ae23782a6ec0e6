"""A thread-safe Feetech STS bus on pyserial: :class:`real.serial_bus.SerialBus` (transactions, timeouts, retries,
reply pairing with fences, the host latency allowance) with the STS protocol's frames.

Everything the host receives is a reply (the adapter boards do not echo what the host sends). A reply's error byte
reports the servo's condition (input voltage, angle sensor, overheating, overcurrent, overload): any bit set raises
:class:`ServoAlert` naming the motor and the conditions, unless the caller asks for the value anyway
(``alert_ok``). The fence is a read of 3 bytes at address 0 (the firmware version and the byte after it): no
register the driver reads is 3 bytes long, so no other transaction expects a reply of that length. Feetech servos
answer a broadcast ping all at once (their replies collide), so :meth:`FeetechBus.scan` pings one id at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from real.dynamixel.control_table import Register
from real.feetech.control_table import MODELS
from real.feetech.protocol import BROADCAST_ID, MAX_ID, Frame, FrameParser, Instruction, encode, error_text
from real.serial_bus import BusError, BusTimeout, CorruptReply, SerialBus

#: A fence reads this many bytes (from address 0); no register is this long.
FENCE_BYTES = 3
#: Bytes of a reply besides its data: header 2, id, length, error, checksum.
REPLY_OVERHEAD = 6
_MODEL_NUMBER = MODELS["STS3215"].register("model_number")


def _no_fence_length(reg: Register) -> None:
    if reg.size == FENCE_BYTES:
        raise ValueError(f"{reg.name}: a {FENCE_BYTES}-byte read would look like the bus's fence reply")


class ServoAlert(BusError):
    """A servo's reply carried error bits: its condition (overload, overheating, ...), by name."""

    def __init__(self, ident: int, what: str, error: int) -> None:
        self.ident, self.error = ident, error
        super().__init__(f"motor {ident}: {what}: {error_text(error)}")


class FeetechBus(SerialBus):
    """One Feetech STS bus (1 Mbps by default, as STS servos ship). ``return_delay_s``: the servos' return delay
    (register 7; 0 as they ship)."""

    broadcast_id = BROADCAST_ID
    reply_overhead = REPLY_OVERHEAD

    def __init__(self, port: str, baudrate: int = 1_000_000, return_delay_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(port, baudrate, return_delay_s=return_delay_s, **kwargs)

    def _new_parser(self) -> FrameParser:
        return FrameParser()

    def _parser_errors(self) -> int:
        return self._parser.checksum_errors

    @staticmethod
    def _is_reply(pkt: Frame) -> bool:
        return True

    def _fence_request(self, ident: int) -> bytes:
        return encode(ident, Instruction.READ, bytes([0, FENCE_BYTES]))

    def _is_fence_reply(self, pkt: Frame, ident: int) -> bool:
        return pkt.ident == ident and len(pkt.params) == FENCE_BYTES

    def _check(self, pkt: Frame, ident: int, what: str, n_params: int, alert_ok: bool = False) -> Frame:
        if pkt.error and not alert_ok:
            raise ServoAlert(ident, what, pkt.error)
        if len(pkt.params) != n_params:  # STS servos send their data even with error bits: a short reply is bad
            self.stats["corrupt"] += 1
            raise CorruptReply(f"{what}: motor {ident} sent {len(pkt.params)} bytes, expected {n_params}")
        return pkt

    # -- instructions ---------------------------------------------------------------------------------------
    def ping(self, ident: int, alert_ok: bool = False) -> int:
        """Model number of servo ``ident`` (a ping, then a read of its model number, as the vendor SDK does)."""
        what = f"ping motor {ident}"
        pkt = self._transact(encode(ident, Instruction.PING), [ident], REPLY_OVERHEAD, what)[ident]
        self._check(pkt, ident, what, 0, alert_ok)
        return self.read(ident, _MODEL_NUMBER, alert_ok)

    def scan(self, ids: Iterable[int] = range(0, MAX_ID + 1)) -> dict[int, int]:
        """``{id: model number}`` of the servos among ``ids`` that answer a ping (one in alert included)."""
        found: dict[int, int] = {}
        for ident in ids:
            try:
                found[ident] = self.ping(ident, alert_ok=True)
            except (BusTimeout, CorruptReply):
                continue
        return found

    def read(self, ident: int, reg: Register, alert_ok: bool = False) -> int:
        """Raw value of one register (``alert_ok``: even when the reply carries error bits)."""
        _no_fence_length(reg)
        what = f"read {reg.name} of motor {ident}"
        request = encode(ident, Instruction.READ, bytes([reg.address, reg.size]))
        pkt = self._transact(request, [ident], REPLY_OVERHEAD + reg.size, what)[ident]
        return reg.decode(self._check(pkt, ident, what, reg.size, alert_ok).params)

    def write(self, ident: int, reg: Register, raw: int) -> None:
        """Acknowledged write of one register."""
        what = f"write {reg.name} = {raw} to motor {ident}"
        request = encode(ident, Instruction.WRITE, bytes([reg.address]) + reg.encode(raw))
        self._check(self._transact(request, [ident], REPLY_OVERHEAD, what)[ident], ident, what, 0)

    def reg_write(self, ident: int, reg: Register, raw: int) -> None:
        """A write the servo holds until :meth:`action` (acknowledged)."""
        what = f"reg write {reg.name} = {raw} to motor {ident}"
        request = encode(ident, Instruction.REG_WRITE, bytes([reg.address]) + reg.encode(raw))
        self._check(self._transact(request, [ident], REPLY_OVERHEAD, what)[ident], ident, what, 0)

    def action(self) -> None:
        """Every servo applies its held writes at once (broadcast: no reply)."""
        self._transact(encode(BROADCAST_ID, Instruction.ACTION), [], 0, "action")

    def sync_read(self, ids: list[int], reg: Register, alert_ok: bool = False) -> dict[int, int]:
        """One register of several servos in one request; each answers in turn."""
        _no_fence_length(reg)
        what = f"sync read {reg.name} of motors {ids}"
        request = encode(BROADCAST_ID, Instruction.SYNC_READ, bytes([reg.address, reg.size, *ids]))
        got = self._transact(request, list(ids), REPLY_OVERHEAD + reg.size, what)
        return {i: reg.decode(self._check(got[i], i, what, reg.size, alert_ok).params) for i in ids}

    def sync_write(self, reg: Register, values: dict[int, int]) -> None:
        """One register of several servos in one frame (no reply, by the protocol)."""
        params = bytes([reg.address, reg.size])
        for ident, raw in values.items():
            params += bytes([ident]) + reg.encode(raw)
        self._transact(encode(BROADCAST_ID, Instruction.SYNC_WRITE, params), [], 0, f"sync write {reg.name}")

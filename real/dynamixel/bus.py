"""A thread-safe Dynamixel Protocol 2.0 bus on pyserial: transactions, timeouts, retries and clear errors.

Every transaction holds one lock, writes the instruction, then reads the replies with a deadline computed from the
baud rate, the packet lengths and the servos' return delay (``serial.read`` blocks in the kernel until bytes or
the timeout arrive: no busy polling). A timeout or a corrupt reply is retried up to ``retries`` times; a servo's
own error is not (it would fail the same way) and raises :class:`ServoError` naming the motor, the register and
the decoded error; when the alert bit is set it reads Hardware Error Status (register 70) and raises
:class:`HardwareAlert` with the decoded bits, even if the instruction itself succeeded.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Iterable

import serial

from real.dynamixel.control_table import Register, decode_hardware_error
from real.dynamixel.protocol import BROADCAST_ID, Instruction, Packet, PacketParser, encode, split_fast_status

#: Host-side allowance on top of the wire time: USB-serial adapters deliver bytes in 1 ms frames (U2D2's FTDI
#: latency timer is 1 ms at best, 16 ms by default on Linux).
DEFAULT_HOST_LATENCY_S = 0.020


class DynamixelError(RuntimeError):
    """Base class of bus errors."""


class BusTimeout(DynamixelError):
    """No (complete) reply in time."""


class CorruptReply(DynamixelError):
    """A reply arrived but was malformed, from the wrong servo or with the wrong length."""


class ServoError(DynamixelError):
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


def wire_time(n_bytes: int, baudrate: int) -> float:
    return n_bytes * 10.0 / baudrate


class DynamixelBus:
    """One serial bus. Use as a context manager, or call :meth:`open` / :meth:`close`.

    ``return_delay_s``: the servos' return delay time (register 9; the factory default is 500 us, a configured
    robot sets it to 0). ``retries``: extra attempts after a timeout or a corrupt reply.
    """

    def __init__(
        self,
        port: str,
        baudrate: int = 1_000_000,
        retries: int = 2,
        return_delay_s: float = 0.0005,
        host_latency_s: float = DEFAULT_HOST_LATENCY_S,
        serial_factory: Callable[..., serial.Serial] = serial.Serial,
    ) -> None:
        self.port, self.baudrate, self.retries = port, baudrate, retries
        self.return_delay_s, self.host_latency_s = return_delay_s, host_latency_s
        self._factory = serial_factory
        self._ser: serial.Serial | None = None
        self._lock = threading.Lock()
        self._parser = PacketParser()
        self.stats = {"transactions": 0, "retries": 0, "timeouts": 0, "corrupt": 0}

    # -- lifecycle ------------------------------------------------------------------------------------------
    def open(self) -> DynamixelBus:
        if self._ser is None:
            try:
                self._ser = self._factory(self.port, self.baudrate, timeout=0, write_timeout=1.0)
            except serial.SerialException as e:
                raise DynamixelError(f"cannot open {self.port}: {e}") from e
        return self

    def close(self) -> None:
        with self._lock:
            if self._ser is not None:
                self._ser.close()
                self._ser = None

    def __enter__(self) -> DynamixelBus:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------------------------
    def _deadline(self, out_len: int, reply_lens: Iterable[int]) -> float:
        replies = list(reply_lens)
        return (
            wire_time(out_len + sum(replies), self.baudrate)
            + self.return_delay_s * max(1, len(replies))
            + self.host_latency_s
        )

    def _transact(self, packet: bytes, expect: list[int], reply_len: int, what: str) -> dict[int, Packet]:
        """Send ``packet`` and collect one status packet from each id in ``expect`` (in any order)."""
        if self._ser is None:
            raise DynamixelError(f"bus {self.port} is not open")
        last_error: DynamixelError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
            try:
                return self._once(packet, expect, reply_len, what)
            except (BusTimeout, CorruptReply) as e:
                last_error = e
        assert last_error is not None
        raise last_error

    def _once(self, packet: bytes, expect: list[int], reply_len: int, what: str) -> dict[int, Packet]:
        ser = self._ser
        with self._lock:
            self.stats["transactions"] += 1
            ser.reset_input_buffer()
            self._parser.clear()
            ser.write(packet)
            if not expect:
                ser.flush()
                return {}
            deadline = time.monotonic() + self._deadline(len(packet), [reply_len] * len(expect))
            got: dict[int, Packet] = {}
            crc_before = self._parser.crc_errors
            while len(got) < len(expect):
                data = self._read(max(1, reply_len * (len(expect) - len(got))), deadline)
                if not data:
                    break
                for pkt in self._parser.feed(data):
                    if pkt.is_status and pkt.ident in expect:
                        got[pkt.ident] = pkt
            if len(got) < len(expect):
                missing = [i for i in expect if i not in got]
                if self._parser.crc_errors > crc_before:
                    self.stats["corrupt"] += 1
                    raise CorruptReply(f"{what}: corrupt reply (bad CRC) from motor(s) {missing}")
                self.stats["timeouts"] += 1
                raise BusTimeout(f"{what}: no reply from motor(s) {missing} within the timeout")
            return got

    def _read(self, max_bytes: int, deadline: float) -> bytes:
        """Bytes available before ``deadline`` (monotonic s), blocking in the kernel, never busy-polling.

        On POSIX ports this waits with ``select`` on the port's descriptor: setting ``Serial.timeout`` before
        each read makes pyserial reconfigure the port (tcsetattr), which cost about 8 % of the sync read rate.
        """
        ser = self._ser
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b""
        fileno = getattr(ser, "fileno", None)
        if fileno is not None:
            try:
                fd = fileno()
            except (AttributeError, OSError, serial.SerialException):
                fd = None
            if fd is not None:
                ready, _, _ = select.select([fd], [], [], remaining)
                return os.read(fd, max_bytes) if ready else b""
        ser.timeout = remaining
        return ser.read(max_bytes)

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
        except DynamixelError:
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
                raise DynamixelError(f"bus {self.port} is not open")
            ser.reset_input_buffer()
            self._parser.clear()
            ser.write(encode(BROADCAST_ID, Instruction.PING))
            deadline = time.monotonic() + self._deadline(10, [14] * len(ids))
            found: dict[int, int] = {}
            while time.monotonic() < deadline:
                data = self._read(256, deadline)
                if not data:
                    break
                for pkt in self._parser.feed(data):
                    if pkt.is_status and pkt.ident in ids and len(pkt.params) == 3:
                        found[pkt.ident] = int.from_bytes(pkt.params[:2], "little")
        return dict(sorted(found.items()))

    def read(self, ident: int, reg: Register) -> int:
        """Raw value of one register."""
        what = f"read {reg.name} of motor {ident}"
        params = reg.address.to_bytes(2, "little") + reg.size.to_bytes(2, "little")
        pkt = self._transact(encode(ident, Instruction.READ, params), [ident], 11 + reg.size, what)[ident]
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
        pkt = self._transact(encode(BROADCAST_ID, Instruction.FAST_SYNC_READ, params), [BROADCAST_ID], reply_len, what)[
            BROADCAST_ID
        ]
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
            raise DynamixelError("factory_reset erases the servo's configuration; call it with confirm=True")
        option = {"id_and_baud": 0x02, "id": 0x01, "nothing": 0xFF}[keep]
        what = f"factory reset motor {ident}"
        pkt = self._transact(encode(ident, Instruction.FACTORY_RESET, bytes([option])), [ident], 11, what)[ident]
        self._check(pkt, ident, what)

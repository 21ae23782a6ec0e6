"""A thread-safe Dynamixel Protocol 2.0 bus on pyserial: transactions, timeouts, retries and clear errors.

Every transaction holds one lock, writes the instruction, then reads the replies with a deadline computed from the
baud rate, the packet lengths and the servos' return delay (``serial.read`` blocks in the kernel until bytes or
the timeout arrive: no busy polling). A timeout or a corrupt reply is retried up to ``retries`` times; a servo's
own error is not (it would fail the same way) and raises :class:`ServoError` naming the motor, the register and
the decoded error; when the alert bit is set it reads Hardware Error Status (register 70) and raises
:class:`HardwareAlert` with the decoded bits, even if the instruction itself succeeded.

Pairing replies with requests: Protocol 2.0 has no sequence number, so a reply that arrives after its
transaction timed out would be taken as the answer to the next request (a late USB adapter or a busy host makes
this common). A reply is only taken when its id and parameter length fit the request; and after any transaction
that did not end cleanly (a timeout, a corrupt reply, an interruption), the next one first sends a *fence*: a ping
to a servo that answered recently, whose 3-parameter reply no other transaction expects. Servos answer in order on
the half-duplex wire, so once the fence's reply is in, every late reply has arrived and been discarded. A late
reply seen there raises the host latency allowance (up to ``late_window_s``) with a warning naming the fix; on-time
replies then let it shrink back toward the configured allowance, never below 1.5x the recent peak host delay (which
decays), so a one-off stall of the host does not lengthen every later timeout of the run.

Any OS-level failure of the port (unplugged adapter: ``OSError``, ``termios.error``, ``SerialException``) becomes
:class:`PortError`, which is not retried.
"""

from __future__ import annotations

import logging
import os
import select
import termios
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import serial

from real.dynamixel.control_table import Register, decode_hardware_error
from real.dynamixel.protocol import BROADCAST_ID, Instruction, Packet, PacketParser, encode, split_fast_status

#: Host-side allowance on top of the wire time: USB-serial adapters deliver bytes in 1 ms frames (U2D2's FTDI
#: latency timer is 1 ms at best, 16 ms by default on Linux).
DEFAULT_HOST_LATENCY_S = 0.020

#: How long a reply may still arrive after its transaction timed out: the fence waits this long at most, and the
#: host latency allowance never grows past it.
DEFAULT_LATE_WINDOW_S = 0.25

#: Per transaction, the recent peak host delay decays by this factor, and a raised host latency allowance with it
#: (from 60 to 20 ms in about 55 transactions, a few control cycles).
ALLOWANCE_DECAY = 0.98

#: A ping's status packet carries 3 parameters (model number, firmware version); no read the driver makes is 3
#: bytes long, so a fence's reply cannot be mistaken for another transaction's.
PING_PARAMS = 3

#: Above this FTDI latency timer (ms) the bus warns: the adapter holds replies that long before sending them on.
MAX_LATENCY_TIMER_MS = 2

#: What a failing serial port raises (an unplugged adapter): turned into :class:`PortError` wherever the port is used.
PORT_FAILURES = (OSError, termios.error, serial.SerialException)

log = logging.getLogger(__name__)


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


class PortError(DynamixelError):
    """The serial port itself failed (unplugged adapter, closed device): not retried."""


class HardwareAlert(ServoError):
    """The status packet's alert bit: the servo has a hardware error (register 70) and has turned torque off.
    Reboot the servo to clear it."""


def wire_time(n_bytes: int, baudrate: int) -> float:
    return n_bytes * 10.0 / baudrate


def latency_timer_ms(port: str, sysfs: Path = Path("/sys")) -> int | None:
    """The USB-serial adapter's latency timer (ms) where Linux exposes it (FTDI: ``latency_timer`` in sysfs), or
    None (another OS, another adapter, a pseudo-terminal)."""
    name = Path(os.path.realpath(port)).name
    try:
        return int((sysfs / "bus" / "usb-serial" / "devices" / name / "latency_timer").read_text().strip())
    except (OSError, ValueError):
        return None


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
        late_window_s: float = DEFAULT_LATE_WINDOW_S,
        sysfs: Path = Path("/sys"),
    ) -> None:
        self.port, self.baudrate, self.retries = port, baudrate, retries
        self.return_delay_s, self.host_latency_s = return_delay_s, host_latency_s
        self._configured_latency_s = host_latency_s
        self._peak_delay_s = 0.0  # the largest host delay seen lately (s), decaying: see _on_time
        self._warned_latency_s = host_latency_s  # the largest allowance a warning has announced
        self.late_window_s = max(late_window_s, host_latency_s)
        self._factory = serial_factory
        self._sysfs = sysfs
        self._ser: serial.Serial | None = None
        self._lock = threading.Lock()
        self._parser = PacketParser()
        # after a transaction that did not end cleanly: replies may be in flight (see the module docstring)
        self._dirty = False
        self._failed: tuple[float, set[tuple[int, int]], list[int]] | None = None  # sent at, (id, params) owed, ids
        self._heard: dict[int, float] = {}  # servo id -> when it last answered (monotonic s): fence candidates
        self.latency_timer_ms: int | None = None
        self.stats = {
            "transactions": 0,
            "retries": 0,
            "timeouts": 0,
            "corrupt": 0,
            "mismatched": 0,  # replies skipped because their id or length did not fit the request
            "late": 0,  # replies that arrived after their transaction had timed out (discarded by a fence)
            "fences": 0,
        }

    # -- lifecycle ------------------------------------------------------------------------------------------
    def open(self) -> DynamixelBus:
        """Open the port; a port that cannot be opened raises :class:`PortError` naming it. Warns when the
        adapter's latency timer is above ``MAX_LATENCY_TIMER_MS``."""
        if self._ser is None:
            try:
                self._ser = self._factory(self.port, self.baudrate, timeout=0, write_timeout=1.0)
            except (serial.SerialException, OSError, ValueError) as e:
                raise PortError(f"cannot open {self.port}: {e}") from e
            self._dirty = True  # whatever a previous client left on the line
            self.latency_timer_ms = latency_timer_ms(self.port, self._sysfs)
            if self.latency_timer_ms is not None and self.latency_timer_ms > MAX_LATENCY_TIMER_MS:
                name = Path(os.path.realpath(self.port)).name
                log.warning(
                    "%s: the USB adapter's latency timer is %d ms (replies wait that long in the adapter); set it "
                    "to 1 ms: echo 1 | sudo tee /sys/bus/usb-serial/devices/%s/latency_timer (or a udev rule "
                    'ATTR{latency_timer}="1")',
                    self.port,
                    self.latency_timer_ms,
                    name,
                )
        return self

    def reopen(self) -> DynamixelBus:
        """Close and open the port again (after a :class:`PortError`: a re-plugged adapter)."""
        self.close()
        return self.open()

    def close(self) -> None:
        with self._lock:
            if self._ser is not None:
                try:
                    self._ser.close()
                except PORT_FAILURES:
                    pass  # a vanished device: nothing left to close
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

    def _transact(
        self, packet: bytes, expect: list[int], reply_len: int, what: str, ids: list[int] | None = None
    ) -> dict[int, Packet]:
        """Send ``packet`` and collect one status packet from each id in ``expect`` (in any order), each
        ``reply_len`` bytes long; ``ids``: the servos involved (default ``expect``; a Fast Sync Read expects one
        reply from the broadcast id)."""
        if self._ser is None:
            raise DynamixelError(f"bus {self.port} is not open")
        last_error: DynamixelError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
            try:
                return self._once(packet, expect, reply_len, what, ids)
            except (BusTimeout, CorruptReply) as e:
                last_error = e
        assert last_error is not None
        raise last_error

    def _once(
        self, packet: bytes, expect: list[int], reply_len: int, what: str, ids: list[int] | None = None
    ) -> dict[int, Packet]:
        n_params = reply_len - 11  # header 4, id, length 2, instruction, error, CRC 2
        with self._lock:
            ser = self._ser
            if ser is None:
                raise DynamixelError(f"bus {self.port} is not open")
            self.stats["transactions"] += 1
            try:
                if expect and self._dirty:
                    self._fence(what)
                ser.reset_input_buffer()
                self._parser.clear()
                if expect:
                    self._dirty = True  # until every reply is in: an interruption leaves the line unknown
                sent_at = time.monotonic()
                ser.write(packet)
                if not expect:
                    ser.flush()
                    return {}
                timeout_s = self._deadline(len(packet), [reply_len] * len(expect))
                deadline = sent_at + timeout_s
                got: dict[int, Packet] = {}
                crc_before = self._parser.crc_errors
                while len(got) < len(expect):
                    data = self._read(max(1, reply_len * (len(expect) - len(got))), deadline)
                    if not data:
                        break
                    for pkt in self._parser.feed(data):
                        if self._fits(pkt, expect, n_params):
                            got[pkt.ident] = pkt
                        else:
                            self.stats["mismatched"] += 1
            except PORT_FAILURES as e:
                raise PortError(f"{what}: port {self.port} failed ({e}): is the adapter unplugged?") from e
            if len(got) < len(expect):
                missing = [i for i in expect if i not in got]
                self._failed = (sent_at, {(i, n_params) for i in missing}, list(ids or expect))
                if self._parser.crc_errors > crc_before:
                    self.stats["corrupt"] += 1
                    raise CorruptReply(f"{what}: corrupt reply (bad CRC) from motor(s) {missing}")
                self.stats["timeouts"] += 1
                raise BusTimeout(f"{what}: no reply from motor(s) {missing} within the timeout")
            self._dirty = False
            for ident in ids or expect:
                self._heard[ident] = sent_at
            self._on_time(time.monotonic() - sent_at - (timeout_s - self.host_latency_s))
            return got

    @staticmethod
    def _fits(pkt: Packet, expect: list[int], n_params: int) -> bool:
        """A status packet from an expected id with the expected length (or an error status without data)."""
        if not pkt.is_status or pkt.ident not in expect:
            return False
        return len(pkt.params) == n_params or (not pkt.params and bool(pkt.error))

    def _fence(self, what: str) -> None:
        """Wait out replies still in flight after a failed transaction (the lock is held): ping a servo and discard
        every packet until its reply arrives. Raises :class:`BusTimeout` when none comes within the late window."""
        sent_at, owed, ids = self._failed or (time.monotonic(), set(), [])
        silent = {i for i, _ in owed}
        # a servo that answered recently and was not among the silent ones; else one of the failed transaction's
        candidates = sorted((i for i in self._heard if i not in silent), key=self._heard.__getitem__, reverse=True)
        candidates += [i for i in ids if i != BROADCAST_ID and i not in candidates]
        if not candidates:
            self._dirty = False  # nothing was ever asked of a servo on this bus: nothing can be in flight
            return
        ident = candidates[0]
        self.stats["fences"] += 1
        ser = self._ser
        self._parser.clear()
        ser.write(encode(ident, Instruction.PING))
        # long enough for the replies seen so far to be late by several times the allowance, within the late window
        window = min(self.late_window_s, max(0.1, 2 * self.host_latency_s))
        deadline = time.monotonic() + window
        crc_before = self._parser.crc_errors
        while True:
            data = self._read(64, deadline)
            if not data:
                self._heard.pop(ident, None)  # the next fence tries another servo: this one may be gone
                if self._parser.crc_errors > crc_before:
                    self.stats["corrupt"] += 1
                    raise CorruptReply(
                        f"{what}: corrupt replies (bad CRC) from motor(s) {sorted(silent) or [ident]}, and no clean "
                        f"answer to a fence ping of motor {ident} within {window * 1e3:.0f} ms"
                    )
                self.stats["timeouts"] += 1
                raise BusTimeout(
                    f"{what}: no reply from motor(s) {sorted(silent) or [ident]}, and motor {ident} did not answer "
                    f"a fence ping within {window * 1e3:.0f} ms (replies may still be in flight)"
                )
            for pkt in self._parser.feed(data):
                if pkt.is_status and pkt.ident == ident and len(pkt.params) == PING_PARAMS:
                    self._dirty, self._failed = False, None
                    return
                if pkt.is_status and (pkt.ident, len(pkt.params)) in owed:
                    self._late_reply(time.monotonic() - sent_at)
                self.stats["late"] += 1

    def _late_reply(self, lateness_s: float) -> None:
        """A reply came ``lateness_s`` after its request: widen the host latency allowance to fit, up to the late
        window, and say so (a warning the first time it goes past what was warned of; later rises, after it has
        shrunk back, at debug level)."""
        self._peak_delay_s = max(self._peak_delay_s, lateness_s)
        needed = min(self.late_window_s, 1.5 * lateness_s)
        if needed > self.host_latency_s:
            warn = needed > self._warned_latency_s
            log.log(
                logging.WARNING if warn else logging.DEBUG,
                "%s: a reply arrived %.0f ms after its request; host latency allowance raised from %.0f to %.0f ms "
                "(USB adapters: set the latency timer to 1 ms)",
                self.port,
                lateness_s * 1e3,
                self.host_latency_s * 1e3,
                needed * 1e3,
            )
            self._warned_latency_s = max(self._warned_latency_s, needed)
            self.host_latency_s = needed

    def _on_time(self, host_delay_s: float) -> None:
        """Every reply came ``host_delay_s`` later than the wire and the servos account for. The peak delay decays
        by :data:`ALLOWANCE_DECAY` per transaction and rises with each delay seen; a raised allowance shrinks toward
        the configured one, never below 1.5x that peak (so stalls that recur keep it up)."""
        self._peak_delay_s = max(host_delay_s, self._peak_delay_s * ALLOWANCE_DECAY)
        if self.host_latency_s > self._configured_latency_s:
            floor = max(self._configured_latency_s, 1.5 * self._peak_delay_s)
            self.host_latency_s = min(self.host_latency_s, floor)

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
            raise DynamixelError("factory_reset erases the servo's configuration; call it with confirm=True")
        option = {"id_and_baud": 0x02, "id": 0x01, "nothing": 0xFF}[keep]
        what = f"factory reset motor {ident}"
        pkt = self._transact(encode(ident, Instruction.FACTORY_RESET, bytes([option])), [ident], 11, what)[ident]
        self._check(pkt, ident, what)

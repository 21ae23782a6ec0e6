"""A thread-safe request/reply bus on a serial port, whatever the servo protocol: transactions, timeouts, retries,
reply pairing and clear errors. :class:`real.dynamixel.bus.DynamixelBus` and :class:`real.feetech.bus.FeetechBus`
are this bus with their protocol's frames.

Every transaction holds one lock, writes the request, then reads the replies with a deadline computed from the
baud rate, the frame lengths and the servos' return delay (the port's descriptor is waited on with ``select``: no
busy polling). A timeout or a corrupt reply is retried up to ``retries`` times.

Pairing replies with requests: neither protocol has a sequence number, so a reply that arrives after its transaction
timed out would be taken as the answer to the next request (a late USB adapter or a busy host makes this common). A
reply is only taken when its id and parameter length fit the request; and after any transaction that did not end
cleanly (a timeout, a corrupt reply, an interruption), the next one first sends a *fence*: a request to a servo that
answered recently whose reply no other transaction expects (the protocol's choice). Servos answer in order on the
half-duplex wire, so once the fence's reply is in, every late reply has arrived and been discarded. A fence ping
that goes unanswered (lost itself, on a noisy bus) is sent once more, to another servo, when that ping still fits in
the failed transaction's late window. A late reply seen there raises the host latency allowance (up to
``late_window_s``) with a warning naming the fix; on-time replies then let it shrink back toward the configured
allowance, never below 1.5x the recent peak host delay (which decays), so a one-off stall of the host does not
lengthen every later timeout of the run.

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
from typing import Any

import serial

#: Host-side allowance on top of the wire time: USB-serial adapters deliver bytes in 1 ms frames (U2D2's FTDI
#: latency timer is 1 ms at best, 16 ms by default on Linux).
DEFAULT_HOST_LATENCY_S = 0.020

#: How long a reply may still arrive after its transaction timed out: the fence waits this long at most, and the
#: host latency allowance never grows past it.
DEFAULT_LATE_WINDOW_S = 0.25

#: Servos a fence pings before giving up: one lost fence reply on a noisy bus must not fail the transaction it guards.
FENCE_PINGS = 2

#: Per transaction, the recent peak host delay decays by this factor, and a raised host latency allowance with it
#: (from 60 to 20 ms in about 55 transactions, a few control cycles).
ALLOWANCE_DECAY = 0.98

#: Above this FTDI latency timer (ms) the bus warns: the adapter holds replies that long before sending them on.
MAX_LATENCY_TIMER_MS = 2

#: What a failing serial port raises (an unplugged adapter): turned into :class:`PortError` wherever the port is used.
PORT_FAILURES = (OSError, termios.error, serial.SerialException)

log = logging.getLogger(__name__)


class BusError(RuntimeError):
    """Base class of bus errors."""


class BusTimeout(BusError):
    """No (complete) reply in time."""


class CorruptReply(BusError):
    """A reply arrived but was malformed, from the wrong servo or with the wrong length."""


class PortError(BusError):
    """The serial port itself failed (unplugged adapter, closed device): not retried."""


def patiently(transaction: Callable[[], Any], attempts: int) -> Any:
    """``transaction()``, tried again when the bus loses or corrupts its replies (:class:`BusTimeout`,
    :class:`CorruptReply`), ``attempts`` times in all; the last failure raises."""
    for attempt in range(attempts):
        try:
            return transaction()
        except (BusTimeout, CorruptReply):
            if attempt == attempts - 1:
                raise
    raise ValueError(f"attempts must be >= 1, got {attempts}")


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


class SerialBus:
    """One serial bus of one protocol. Use as a context manager, or call :meth:`open` / :meth:`close`.

    ``return_delay_s``: the servos' return delay time; ``retries``: extra attempts after a timeout or a corrupt
    reply. A protocol supplies its parser (:meth:`_new_parser`: ``feed(bytes)`` giving frames with ``ident``,
    ``params`` and ``error``; ``clear()``), says which frames are replies (:meth:`_is_reply`), how many checksum
    failures the parser has counted (:meth:`_parser_errors`) and what its fence is (:meth:`_fence_request`,
    :meth:`_is_fence_reply`)."""

    #: The id every servo listens to (no reply is paired with it but a chained one).
    broadcast_id: int
    #: Bytes of a reply besides its parameters (``reply_len`` arguments count them).
    reply_overhead: int

    def _new_parser(self) -> Any:
        raise NotImplementedError

    def _parser_errors(self) -> int:
        raise NotImplementedError

    @staticmethod
    def _is_reply(pkt: Any) -> bool:
        raise NotImplementedError

    def _fence_request(self, ident: int) -> bytes:
        raise NotImplementedError

    def _is_fence_reply(self, pkt: Any, ident: int) -> bool:
        raise NotImplementedError

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
        self._parser = self._new_parser()
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
            "fences": 0,  # fence pings sent (a fence whose first ping went unanswered sends two)
        }

    # -- lifecycle ------------------------------------------------------------------------------------------
    def open(self) -> SerialBus:
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

    def reopen(self) -> SerialBus:
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

    def __enter__(self) -> SerialBus:
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
    ) -> dict[int, Any]:
        """Send ``packet`` and collect one status packet from each id in ``expect`` (in any order), each
        ``reply_len`` bytes long; ``ids``: the servos involved (default ``expect``; a Fast Sync Read expects one
        reply from the broadcast id)."""
        if self._ser is None:
            raise BusError(f"bus {self.port} is not open")
        last_error: BusError | None = None
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
    ) -> dict[int, Any]:
        n_params = reply_len - self.reply_overhead
        with self._lock:
            ser = self._ser
            if ser is None:
                raise BusError(f"bus {self.port} is not open")
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
                got: dict[int, Any] = {}
                crc_before = self._parser_errors()
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
                if self._parser_errors() > crc_before:
                    self.stats["corrupt"] += 1
                    raise CorruptReply(f"{what}: corrupt reply (bad CRC) from motor(s) {missing}")
                self.stats["timeouts"] += 1
                raise BusTimeout(f"{what}: no reply from motor(s) {missing} within the timeout")
            self._dirty, self._failed = False, None
            for ident in ids or expect:
                self._heard[ident] = sent_at
            self._on_time(time.monotonic() - sent_at - (timeout_s - self.host_latency_s))
            return got

    def _fits(self, pkt: Any, expect: list[int], n_params: int) -> bool:
        """A reply from an expected id with the expected length (or an error status without data)."""
        if not self._is_reply(pkt) or pkt.ident not in expect:
            return False
        return len(pkt.params) == n_params or (not pkt.params and bool(pkt.error))

    def _fence(self, what: str) -> None:
        """Wait out replies still in flight after a failed transaction (the lock is held): send the fence to a servo and
        discard every frame until its reply arrives; a fence ping that goes unanswered (itself lost on a noisy bus) is
        sent once more, to the next candidate, when that ping ends within the failed transaction's late window. Raises
        :class:`BusTimeout` (or :class:`CorruptReply` when frames came in corrupt) when none answers, unless the failed
        transaction's late window has passed by then (a servo that is gone cannot block the bus)."""
        sent_at, owed, ids = self._failed or (time.monotonic(), set(), [])
        silent = {i for i, _ in owed}
        # servos that answered recently and were not among the silent ones; then the failed transaction's own
        candidates = sorted((i for i in self._heard if i not in silent), key=self._heard.__getitem__, reverse=True)
        candidates += [i for i in ids if i != self.broadcast_id and i not in candidates]
        if not candidates:
            # nothing was ever asked of a servo on this bus: nothing can be in flight
            self._dirty, self._failed = False, None
            return
        # long enough for the replies seen so far to be late by several times the allowance, within the late window
        window = min(self.late_window_s, max(0.1, 2 * self.host_latency_s))
        crc_before = self._parser_errors()
        asked: list[int] = []
        for ident in candidates[:FENCE_PINGS]:
            fence_sent = time.monotonic()
            if asked and fence_sent + window > sent_at + self.late_window_s:
                break  # another ping would outlast the failed transaction's late window
            asked.append(ident)
            if self._fence_ping(ident, owed, sent_at, fence_sent + window):
                self._dirty, self._failed = False, None
                return
            self._heard.pop(ident, None)  # the next fence starts with another servo: this one may be gone
            if time.monotonic() >= sent_at + self.late_window_s:
                # the failed transaction's late window is over, so whatever it was owed has arrived; so will this
                # fence's own reply within its late window: listen that out, discarding, and the line is clean
                self._drain_until(fence_sent + self.late_window_s)
                self._dirty, self._failed = False, None
                return
        motors = ", ".join(str(i) for i in asked)
        if self._parser_errors() > crc_before:
            self.stats["corrupt"] += 1
            raise CorruptReply(
                f"{what}: corrupt replies (bad CRC) from motor(s) {sorted(silent) or asked}, and no clean answer "
                f"to a fence ping of motor(s) {motors} within {window * 1e3:.0f} ms each"
            )
        self.stats["timeouts"] += 1
        raise BusTimeout(
            f"{what}: no reply from motor(s) {sorted(silent) or asked}, and motor(s) {motors} did not answer "
            f"a fence ping within {window * 1e3:.0f} ms each (replies may still be in flight)"
        )

    def _fence_ping(self, ident: int, owed: set[tuple[int, int]], sent_at: float, deadline: float) -> bool:
        """Send one fence ping to ``ident`` and discard every frame until its reply (True) or ``deadline`` (False,
        monotonic s); a late reply the failed transaction (sent at ``sent_at``) was owed raises the latency
        allowance."""
        self.stats["fences"] += 1
        self._parser.clear()
        self._ser.write(self._fence_request(ident))
        while True:
            data = self._read(64, deadline)
            if not data:
                return False
            for pkt in self._parser.feed(data):
                if self._is_fence_reply(pkt, ident):
                    return True
                if self._is_reply(pkt) and (pkt.ident, len(pkt.params)) in owed:
                    self._late_reply(time.monotonic() - sent_at)
                self.stats["late"] += 1

    def _drain_until(self, until: float) -> None:
        """Read and discard whatever arrives until ``until`` (monotonic s); the lock is held."""
        while self._read(256, until):
            pass
        self._parser.clear()

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

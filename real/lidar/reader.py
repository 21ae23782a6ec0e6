"""A threaded laser scanner reader on pyserial (LDS-01 or LDS-02): the newest scan, its age and clear errors.

:meth:`LdsReader.connect` opens the port, sends the sensor's start command (the LDS-02 takes none: it streams from
power-on) and starts a daemon thread that reads whatever bytes arrive (``serial.read`` blocks in the kernel for up
to 50 ms: no busy polling), feeds them to the model's parser (:mod:`real.lidar.lds01`, :mod:`real.lidar.lds02`)
with the host's ``time.monotonic_ns()`` and keeps the newest scan. It then
waits for the first scan. :meth:`LdsReader.latest` hands out the newest scan or raises: the port failed (the
thread recorded why), every recent packet failed its checksum, or the newest scan is older than the caller
accepts. pyserial is imported only when a reader connects.
"""

from __future__ import annotations

import threading
import time

from real.lidar import lds01, lds02
from real.lidar.scan import Protocol, Scan

#: How long one ``serial.read`` waits for bytes (s): the thread notices :meth:`LdsReader.close` within this.
READ_TIMEOUT_S = 0.05

#: The wire protocol of each sensor model the hardware config names.
PROTOCOLS: dict[str, Protocol] = {p.model: p for p in (lds01.PROTOCOL, lds02.PROTOCOL)}


class LidarError(RuntimeError):
    """A lidar could not be opened or read; the message says which sensor and why."""


class LidarTimeout(LidarError):
    """No scan arrived within the first-scan timeout."""


class StaleScan(LidarError):
    """The newest scan is older than the caller accepts (or there is none yet)."""


class ChecksumFailures(LidarError):
    """Every packet of the last :attr:`LdsReader.checksum_window` failed its checksum."""


def _port_failures() -> tuple[type[BaseException], ...]:
    """What a failing serial port raises (an unplugged adapter, a closed device)."""
    import termios

    import serial

    return (OSError, termios.error, serial.SerialException)


class LdsReader:
    """One laser scanner of ``model`` (a key of :data:`PROTOCOLS`) on ``port``, called ``name`` in every message;
    ``baudrate``: the model's by default. Use as a context manager, or call :meth:`connect` / :meth:`close` (from
    one thread; :meth:`latest` and :attr:`stats` from any)."""

    #: Consecutive checksum failures (two LDS-01 revolutions, three LDS-02 ones) after which :meth:`latest` raises
    #: :class:`ChecksumFailures`.
    checksum_window = 120

    def __init__(
        self,
        name: str,
        port: str,
        model: str = "LDS-01",
        baudrate: int | None = None,
        first_scan_timeout_s: float = 3.0,
    ) -> None:
        if model not in PROTOCOLS:
            raise ValueError(f"lidar {name}: unknown model {model!r}; known: {', '.join(PROTOCOLS)}")
        self.protocol = PROTOCOLS[model]
        self.name, self.port, self.baudrate = name, port, baudrate or self.protocol.baudrate
        self.first_scan_timeout_s = first_scan_timeout_s
        self._cond = threading.Condition()  # guards everything below that the thread writes
        self._ser = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._reset()

    def _reset(self) -> None:
        self._parser = self.protocol.parser()
        self._scan: Scan | None = None
        self._whole: Scan | None = None  # the newest whole scan (at most one packet's worth missing)
        self._error: str | None = None  # why the port failed, recorded by the thread
        self._in_a_row = 0  # checksum failures since the last valid packet
        self._counts = {"packets": 0, "checksum_errors": 0, "scans": 0, "partial_scans": 0, "bytes": 0}

    # -- lifecycle ------------------------------------------------------------------------------------------
    def connect(self) -> LdsReader:
        """Open the port, start the sensor and the reading thread, and wait for the first scan.

        Raises :class:`LidarError` when the port cannot be opened or fails, :class:`ChecksumFailures` when only
        corrupt packets arrive and :class:`LidarTimeout` when no scan comes within ``first_scan_timeout_s``; the
        port is closed again in every case."""
        if self._ser is not None:
            return self
        import serial

        try:
            ser = serial.Serial(self.port, self.baudrate, timeout=READ_TIMEOUT_S)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LidarError(f"lidar {self.name}: cannot open {self.port}: {e}") from e
        with self._cond:
            self._reset()
        self._ser = ser
        try:
            if self.protocol.start_command:
                ser.write(self.protocol.start_command)
        except _port_failures() as e:
            self.close()
            raise LidarError(f"lidar {self.name}: cannot start the sensor on {self.port}: {e}") from e
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(ser,), name=f"lidar-{self.name}", daemon=True)
        self._thread.start()
        try:
            self._wait_first_scan()
        except BaseException:  # a stop signal while waiting too: the sensor is stopped and the port closed
            self.close()
            raise
        return self

    def _wait_first_scan(self) -> None:
        deadline = time.monotonic() + self.first_scan_timeout_s
        with self._cond:
            while self._scan is None and self._error is None and self._in_a_row < self.checksum_window:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            got_scan, counts = self._scan is not None, dict(self._counts)
        if got_scan:
            return
        try:
            self._raise_failures()
        finally:
            self.close()
        if counts["bytes"] == 0:
            hint = f"no bytes at all: is the sensor powered and on {self.port}?"
        elif counts["packets"] == 0:
            hint = f"{counts['bytes']} bytes but no valid packet: is the baud rate ({self.baudrate}) right?"
        else:
            hint = f"{counts['packets']} valid packets but no complete revolution"
        within = f"{self.first_scan_timeout_s:.1f} s"
        raise LidarTimeout(f"lidar {self.name}: no scan from {self.port} within {within} ({hint})")

    def close(self) -> None:
        """Stop the thread, send the stop command (errors ignored) and close the port. Idempotent."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout=1.0)
        ser, self._ser = self._ser, None
        if ser is None:
            return
        failures = _port_failures()
        try:
            if self.protocol.stop_command:
                ser.write(self.protocol.stop_command)
                ser.flush()
        except failures:
            pass  # a vanished sensor cannot be stopped
        try:
            ser.close()
        except failures:
            pass

    def __enter__(self) -> LdsReader:
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the reading thread ---------------------------------------------------------------------------------
    def _run(self, ser) -> None:
        parser = self._parser
        while not self._stop.is_set():
            try:
                data = ser.read(max(1, min(ser.in_waiting, 4096)))
            except Exception as e:  # anything the port raises ends the thread: recorded for latest() to report
                if not self._stop.is_set():
                    with self._cond:
                        self._error = f"{type(e).__name__}: {e}"
                        self._cond.notify_all()
                return
            if not data:
                continue
            scans = parser.feed(data, time.monotonic_ns())
            with self._cond:
                c = self._counts
                c["bytes"] += len(data)
                c["packets"], c["checksum_errors"] = parser.packets, parser.checksum_errors
                self._in_a_row = parser.errors_in_a_row
                if scans:
                    self._scan = scans[-1]
                    c["scans"] += len(scans)
                    whole = [x for x in scans if x.whole]
                    self._whole = whole[-1] if whole else self._whole
                    c["partial_scans"] += len(scans) - len(whole)
                self._cond.notify_all()

    # -- reading --------------------------------------------------------------------------------------------
    def _raise_failures(self) -> None:
        """Raise what the thread found wrong with the port or the packets, if anything."""
        with self._cond:
            error, in_a_row = self._error, self._in_a_row
        if error is not None:
            raise LidarError(f"lidar {self.name}: port {self.port} failed ({error}): is the sensor unplugged?")
        if in_a_row >= self.checksum_window:
            raise ChecksumFailures(
                f"lidar {self.name}: every one of the last {in_a_row} packets on {self.port} failed its checksum; "
                f"the sensor's firmware may use another checksum than {self.protocol.checksum}, or the line "
                f"is corrupt (baud rate {self.baudrate}?)"
            )

    def latest(self, max_age_s: float, whole: bool = False) -> Scan:
        """The newest scan (``whole``: the newest missing at most one packet's worth of the circle, so that no
        sector's readings were lost). Raises :class:`StaleScan` when it is older than ``max_age_s`` (or there is
        none yet), :class:`ChecksumFailures` when only corrupt packets arrive, :class:`LidarError` when the port
        failed or the reader is not connected."""
        if self._thread is None:
            raise LidarError(f"lidar {self.name} on {self.port} is not connected")
        self._raise_failures()
        with self._cond:
            scan = self._whole if whole else self._scan
        limit_ms = max_age_s * 1e3
        which = "whole scan" if whole else "scan"
        if scan is None:
            raise StaleScan(f"lidar {self.name}: no {which} yet (limit {limit_ms:.0f} ms)")
        age_ms = (time.monotonic_ns() - scan.stamp_ns) / 1e6
        if age_ms > limit_ms:
            raise StaleScan(f"lidar {self.name}: the newest {which} is {age_ms:.0f} ms old (limit {limit_ms:.0f} ms)")
        return scan

    @property
    def stats(self) -> dict[str, int]:
        """Counters since :meth:`connect`: valid ``packets``, ``checksum_errors``, ``scans`` and ``bytes`` read."""
        with self._cond:
            return dict(self._counts)

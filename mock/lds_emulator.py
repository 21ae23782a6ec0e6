"""A laser distance sensor (LDS-01 or LDS-02) on a pseudo-terminal, seeing a mock robot's reality: the real driver
(:class:`real.lidar.reader.LdsReader`) reads it as it reads the sensor on its USB serial adapter.

Each revolution it takes the reality's scan from the robot's true pose at that moment
(:meth:`mock.reality.Reality.sensor_scan`), measured with the model's noise and dropouts
(:func:`robot.lidar.measurement_noise`), and writes the model's packets in six bursts across the revolution, as
the spinning sensor spreads them:

- LDS-01: after the host's start command, 60 packets per revolution; the stop command silences it.
- LDS-02: from power-on (it takes no command), a stream of 12-point packets sampled at 2.3 kHz at raw clockwise
  angles that run on across revolutions, each point's raw distance and angle those the vendor's correction turns
  into the reality's reading (:func:`real.lidar.lds02.encode_revolution`).

The reality's rays end at the LDS-01's 3.5 m: an emulated LDS-02 reports nothing farther, where a real one reads
to 8 m (the policies' beams stop at 3 m either way). Faults for tests: :meth:`pause` / :meth:`resume` (a scanner
that vanishes and comes back) and ``corrupt_probability`` (packets whose bytes are damaged on the wire).
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

import numpy as np

from real.lidar import lds01, lds02
from real.serial_emulator import close_pty, open_pty
from robot.lidar import Lidar, measurement_noise

BURSTS = 6  # writes per revolution


class LdsEmulator:
    """Serves ``lidar`` (its config: model, port, rate) on a pty linked at its port, scans taken from ``scan_now``
    (the noiseless scan at the robot's true pose now); noise seeded from ``seed``. ``stop()`` ends it and removes
    the link."""

    def __init__(self, lidar: Lidar, scan_now: Callable[[], np.ndarray], seed: int = 0) -> None:
        self.lidar = lidar
        self.scan_now = scan_now
        self.rng = np.random.default_rng(seed)
        self.corrupt_probability = 0.0
        self.streaming = lidar.model == "LDS-02"  # it streams from power-on; an LDS-01 waits for its start command
        self.revolutions = 0
        self._sample = 0  # LDS-02: the next sample of its endless stream
        self._paused = threading.Event()
        self._stop = threading.Event()
        self.master, self.slave, _ = open_pty(lidar.port)
        os.set_blocking(self.master, False)
        self._thread = threading.Thread(target=self._serve, name=f"lds-{lidar.name}", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Stop sending (a vanished scanner) until :meth:`resume`."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def _serve(self) -> None:
        period = 1.0 / self.lidar.rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            self._read_commands(timeout=0.005 if self.streaming else 0.05)
            if not self.streaming or self._paused.is_set():
                next_t = time.monotonic()
                continue
            if time.monotonic() < next_t:
                continue
            self._revolution(next_t, period)
            next_t += period
            if time.monotonic() - next_t > period:  # far behind (a loaded host): no burst to catch up
                next_t = time.monotonic()

    def _packets(self) -> tuple[bytearray, int]:
        """One revolution's bytes as the model sends them, and its packet size."""
        ranges = measurement_noise(self.scan_now(), self.rng, model=self.lidar.spec)
        if self.lidar.model == "LDS-01":
            return bytearray(lds01.encode_scan(ranges)), lds01.PACKET_SIZE
        speed = self.lidar.rate_hz * 360.0
        per_rev = lds02.SAMPLE_RATE_HZ / self.lidar.rate_hz
        n = lds02.POINTS_PER_PACKET
        samples = int((self._sample + per_rev) // n * n) - self._sample  # whole packets, the phase carried on
        data = lds02.encode_revolution(ranges, self._sample, samples, speed)
        self._sample += samples
        return bytearray(data), lds02.PACKET_SIZE

    def _revolution(self, start: float, period: float) -> None:
        data, size = self._packets()
        count = len(data) // size
        if self.corrupt_probability > 0:
            for k in range(count):
                if self.rng.random() < self.corrupt_probability:
                    data[k * size + int(self.rng.integers(2, size))] ^= 0xFF
        for b in range(BURSTS):
            time.sleep(max(0.0, start + b * period / BURSTS - time.monotonic()))
            if self._stop.is_set() or self._paused.is_set():
                return
            try:
                os.write(self.master, bytes(data[b * count // BURSTS * size : (b + 1) * count // BURSTS * size]))
            except BlockingIOError:
                pass  # nobody reads the port: the sensor's bytes are lost, as on a wire
            except OSError:
                return
        self.revolutions += 1

    def _read_commands(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            data = os.read(self.master, 256)
        except (BlockingIOError, OSError):
            return
        if self.lidar.model != "LDS-01":
            return  # transmit only: what the host sends is lost
        for byte in data:
            if bytes([byte]) == lds01.START_COMMAND:
                self.streaming = True
            elif bytes([byte]) == lds01.STOP_COMMAND:
                self.streaming = False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        close_pty(self.master, self.slave, self.lidar.port)

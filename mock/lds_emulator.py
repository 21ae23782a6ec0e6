"""An LDS-01 laser distance sensor on a pseudo-terminal, seeing a mock robot's reality: the real driver
(:class:`real.lidar.reader.LdsReader`) reads it as it reads the sensor on its USB serial adapter.

After the host's start command it sends one revolution every ``1 / rate_hz`` s: the reality's scan from the
robot's true pose at that moment (:meth:`mock.reality.Reality.sensor_scan`), measured with the sensor's noise and
dropouts (:func:`robot.lidar.measurement_noise`), encoded as the sensor's 60 packets and written in six bursts
across the revolution, as the spinning sensor spreads them. The stop command silences it. Faults for tests:
:meth:`pause` / :meth:`resume` (a scanner that vanishes and comes back) and ``corrupt_probability`` (packets whose
bytes are damaged on the wire).
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

import numpy as np

from real.dynamixel.emulator import close_pty, open_pty
from real.lidar.lds01 import PACKET_SIZE, PACKETS_PER_SCAN, START_COMMAND, STOP_COMMAND, encode_scan
from robot.lidar import Lidar, measurement_noise

BURSTS = 6  # writes per revolution


class LdsEmulator:
    """Serves ``lidar`` (its config: port, rate) on a pty linked at its port, scans taken from ``scan_now`` (the
    noiseless scan at the robot's true pose now); noise seeded from ``seed``. ``stop()`` ends it and removes the
    link."""

    def __init__(self, lidar: Lidar, scan_now: Callable[[], np.ndarray], seed: int = 0) -> None:
        self.lidar = lidar
        self.scan_now = scan_now
        self.rng = np.random.default_rng(seed)
        self.corrupt_probability = 0.0
        self.streaming = False
        self.revolutions = 0
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

    def _revolution(self, start: float, period: float) -> None:
        data = bytearray(encode_scan(measurement_noise(self.scan_now(), self.rng)))
        if self.corrupt_probability > 0:
            for k in range(PACKETS_PER_SCAN):
                if self.rng.random() < self.corrupt_probability:
                    data[k * PACKET_SIZE + int(self.rng.integers(2, PACKET_SIZE))] ^= 0xFF
        per_burst = PACKETS_PER_SCAN // BURSTS * PACKET_SIZE
        for b in range(BURSTS):
            time.sleep(max(0.0, start + b * period / BURSTS - time.monotonic()))
            if self._stop.is_set() or self._paused.is_set():
                return
            try:
                os.write(self.master, bytes(data[b * per_burst : (b + 1) * per_burst]))
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
        for byte in data:
            if bytes([byte]) == START_COMMAND:
                self.streaming = True
            elif bytes([byte]) == STOP_COMMAND:
                self.streaming = False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        close_pty(self.master, self.slave, self.lidar.port)

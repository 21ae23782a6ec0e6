"""A serial sensor played by the test on a pseudo-terminal's master side, for the laser scanner drivers' tests."""

from __future__ import annotations

import os
import select
import threading
import time
import tty

import pytest


@pytest.fixture
def pty():
    """(master fd, serial port path): the test plays the sensor on the master side."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    os.set_blocking(master, False)
    yield master, os.ttyname(slave)
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass  # closed by the test


class SensorWriter:
    """Writes ``payload`` (one revolution) to the master side at ``hz`` until stopped; swap ``payload`` freely."""

    def __init__(self, master: int, payload: bytes, hz: float = 5.0) -> None:
        self.master, self.payload, self.period = master, payload, 1.0 / hz
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                os.write(self.master, self.payload)
            except OSError:
                pass  # the pty's buffer is full (nobody reads) or it is closed: drop this revolution
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def read_master(master: int, timeout_s: float = 1.0, want: bytes = b"") -> bytes:
    """What the reader wrote to the port, waiting up to ``timeout_s`` for ``want`` to appear."""
    got, deadline = b"", time.monotonic() + timeout_s
    while want not in got or not want:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([master], [], [], left)[0]:
            break
        got += os.read(master, 1024)
    return got

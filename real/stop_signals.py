"""How a running deployment is stopped: SIGINT, SIGTERM and the software stop (SIGUSR1, or space or Esc pressed in
the terminal) all raise :class:`Stopped` in the main thread, the same path as any error, so that the robot parks
and turns torque off and the log is closed. Only the first signal stops the run; later ones are recorded."""

from __future__ import annotations

import os
import queue
import select
import signal
import sys
import termios
import threading
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Stopped(Exception):
    """SIGINT, SIGTERM or the software stop (SIGUSR1, a key) arrived: end the run (park, torque off, close the log)."""


#: Signals that stop a deployment, and how the summary names them.
STOP_SIGNALS = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM", signal.SIGUSR1: "software stop (SIGUSR1)"}
#: Keys that trigger the software stop when deploy runs in a terminal: space and Esc.
STOP_KEYS = (b" ", b"\x1b")


class StopSignals:
    """Installs the stop handlers. The first stop signal raises :class:`Stopped` where the main thread is, unless
    it is inside :meth:`holding` (a log write must not be cut mid-record: it is raised as the block ends) or the run
    is already ``closing``; later signals are counted and ignored (the run is already ending). :meth:`restore` puts
    the previous handlers back."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.closing = False  # the run is over: record signals, never raise
        self._raised = False
        self._holding = 0
        self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(STOP_SIGNALS[signal.Signals(signum)])
        if not self._holding:
            self._raise_pending()

    def _raise_pending(self) -> None:
        if self.received and not self._raised and not self.closing:
            self._raised = True
            raise Stopped(self.received[0])

    @contextmanager
    def holding(self) -> Iterator[None]:
        """A block that a stop signal must not interrupt; a signal that arrived inside is raised as it ends."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if not self._holding:
            self._raise_pending()

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


class KeyStop:
    """Watches a terminal (file descriptor ``fd``, in cbreak mode while it runs) for a stop key and sends this
    process SIGUSR1 when one is pressed: the software stop goes through the same path as every other signal. Other
    keys are kept for :meth:`read_key` (an operator's answers between episodes)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self.keys: queue.Queue[bytes] = queue.Queue()
        self.closed = threading.Event()  # set when the terminal hung up
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="stop-keys")
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            try:
                key = os.read(self.fd, 1)
            except OSError:
                return
            if not key:  # the terminal hung up: no more keys will come
                self.closed.set()
                return
            if key in STOP_KEYS:
                os.kill(os.getpid(), signal.SIGUSR1)
                return
            self.keys.put(key)

    def read_key(self, timeout: float) -> bytes | None:
        """The next key pressed (not a stop key), or None after ``timeout`` seconds."""
        try:
            return self.keys.get(timeout=timeout)
        except queue.Empty:
            return None

    def clear_keys(self) -> None:
        """Forget keys pressed before now (so that an answer is one given to the question asked)."""
        while not self.keys.empty():
            self.keys.get_nowait()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        try:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        except termios.error:
            pass  # the terminal is gone


def stdin_terminal() -> int | None:
    """stdin's descriptor when it is a terminal in the foreground (where the stop keys can be read), else None."""
    try:
        fd = sys.stdin.fileno()
        return fd if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp() else None
    except (AttributeError, OSError, ValueError):
        return None

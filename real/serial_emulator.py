"""What every servo bus emulator shares, whatever its protocol: fault knobs, a memory table addressed by register
name, the loop that runs the plant in real time and answers frames on a file descriptor, and the pseudo-terminal it
serves on (:class:`EmulatorThread`). :mod:`real.dynamixel.emulator` and :mod:`real.feetech.emulator` add their
protocols.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from real.dynamixel.control_table import ServoModel


@dataclass
class Faults:
    """Fault injection for one servo, settable from tests while the emulator runs."""

    drop_reply: bool = False  # never answer
    corrupt_crc: bool = False  # answer with a wrong CRC
    delay_s: float = 0.0  # extra delay before answering
    flip_bit: bool = False  # flip one bit of the reply on the wire (the CRC no longer matches)
    hardware_error: int = 0  # Hardware Error Status bits to raise (e.g. 1 << 5 overload, 1 << 2 overheating)
    freeze: dict[str, int] = field(default_factory=dict)  # register name -> raw value held fixed
    vanished: bool = False  # unplugged: no reply, no motion
    vanish_on_write: str | None = None  # a register name: writing it makes the servo vanish (a brown-out at torque on)
    drop_next: int = 0  # drop this many replies, then answer again (a transient fault)
    drop_probability: float = 0.0  # each reply is lost with this probability (a noisy bus)
    corrupt_probability: float = 0.0  # each reply has a wrong CRC with this probability
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # seeded: the same faults every run

    def silences_reply(self) -> bool:
        """True when this reply is not sent (vanished, dropping, or a transient drop, which this consumes)."""
        if self.vanished or self.drop_reply:
            return True
        if self.drop_next > 0:
            self.drop_next -= 1
            return True
        return self.drop_probability > 0 and self.rng.random() < self.drop_probability

    def corrupts_reply(self) -> bool:
        return self.corrupt_crc or (self.corrupt_probability > 0 and self.rng.random() < self.corrupt_probability)


class RegisterMemory:
    """A servo's memory table as bytes (``mem``), read and written by register name through its ``model``."""

    model: ServoModel
    mem: bytearray

    def get(self, name: str) -> int:
        reg = self.model.register(name)
        return reg.decode(bytes(self.mem[reg.address : reg.address + reg.size]))

    def set(self, name: str, raw: int) -> None:
        reg = self.model.register(name)
        self.mem[reg.address : reg.address + reg.size] = reg.encode(raw)


def transfer_time(n_bytes: int, baudrate: int) -> float:
    """Seconds to send ``n_bytes`` at ``baudrate`` (10 bits a byte: start, 8 data, stop)."""
    return n_bytes * 10.0 / baudrate


class EmulatorLoop:
    """What every bus emulator does around its protocol: run the plant in real time and serve a file descriptor,
    answering each frame the ``parser`` finds with what :meth:`handle` returns. Subclasses set ``parser`` and
    implement :meth:`handle`; :meth:`tick` runs after each plant step (watchdogs)."""

    parser: Any

    def __init__(self, servos: dict[int, Any], plant: Any, baudrate: int) -> None:
        self.servos = servos
        self.plant = plant
        self.baudrate = baudrate
        self._last_step = time.monotonic()

    def handle(self, frame: Any, now: float | None = None) -> list[tuple[float, bytes]]:
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Called after the plant has run up to ``now``."""

    def advance(self, now: float | None = None) -> None:
        """Run the plant (and :meth:`tick`) up to ``now``."""
        now = time.monotonic() if now is None else now
        dt = min(now - self._last_step, 1.0)  # after a long pause, simulate at most 1 s
        while dt > 1e-9:
            h = min(dt, 0.002)  # 2 ms integration steps
            self.plant.step(h, self.servos)
            dt -= h
        self._last_step = now
        self.tick(now)

    def serve(self, fd: int, stop: Callable[[], bool] | None = None, poll_s: float = 0.002) -> None:
        """Answer frames arriving on ``fd`` until ``stop()`` is true (checked every ``poll_s``)."""
        while stop is None or not stop():
            ready, _, _ = select.select([fd], [], [], poll_s)
            now = time.monotonic()
            if not ready:
                self.advance(now)
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                time.sleep(poll_s)  # no client on the slave side yet
                continue
            for frame in self.parser.feed(data):
                for delay, raw in self.handle(frame, now):
                    wait = now + transfer_time(len(raw), self.baudrate) + delay - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    os.write(fd, raw)


def open_pty(link: str | Path | None = None) -> tuple[int, int, str]:
    """A raw-mode pseudo-terminal: (master fd, slave fd kept open so clients can reconnect, slave path).

    With ``link``, a symlink at that path points to the slave device (replaced if it exists).
    """
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    name = os.ttyname(slave)
    if link is not None:
        link = Path(link)
        link.parent.mkdir(parents=True, exist_ok=True)  # the mock port's folder (e.g. a config's /tmp/s2r/...)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(name)
    return master, slave, name


def close_pty(master: int, slave: int, link: str | Path | None = None) -> None:
    """Close a pseudo-terminal from :func:`open_pty` (either end may already be closed) and remove its link."""
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass
    if link is not None:
        Path(link).unlink(missing_ok=True)


class EmulatorThread:
    """Serves ``emulator`` on a pty linked at ``link`` from a thread of this process (so a test or a mock robot can
    reach into its servos and faults while it runs). ``stop()`` ends it, closes the pty and removes the link."""

    def __init__(self, emulator: EmulatorLoop, link: str | Path) -> None:
        self.emulator = emulator
        self.link = str(link)
        self.master, self.slave, _ = open_pty(link)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=emulator.serve, args=(self.master, self._stop.is_set), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        close_pty(self.master, self.slave, self.link)

    def __enter__(self) -> EmulatorThread:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

"""A mock servo bus in its own process: the servo emulator of a hardware config, moved by a plant
(:mod:`mock.plants`), serving on a pseudo-terminal (so a busy client cannot starve it)."""

from __future__ import annotations

import os
from pathlib import Path

from mock.plants import make_plant
from mock.servo_emulators import emulator_for_config
from real.serial_emulator import open_pty


def _serve_process(config_path: str, link: str, physics: str, ready, stop) -> None:  # runs in the child process
    from robot.config_file import load_hardware_config

    config = load_hardware_config(config_path)
    master, slave, _ = open_pty(link)
    emulator = emulator_for_config(config, make_plant(config, physics))
    ready.set()
    try:
        emulator.serve(master, stop.is_set)
    finally:
        os.close(master)
        os.close(slave)
        Path(link).unlink(missing_ok=True)


class EmulatorProcess:
    """Runs the emulator of a hardware config in its own process (so a busy client cannot starve it), serving
    on a pty linked at ``link``. Use as a context manager; ``stop()`` ends it and removes the link."""

    def __init__(self, config_path: str | Path, link: str | Path, physics: str = "simple") -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no inherited PyBullet / thread state
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self.link = str(link)
        self.process = ctx.Process(
            target=_serve_process, args=(str(config_path), self.link, physics, self._ready, self._stop), daemon=True
        )

    def start(self, timeout: float = 10.0) -> EmulatorProcess:
        self.process.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"servo emulator did not start within {timeout} s")
        return self

    def stop(self) -> None:
        self._stop.set()
        self.process.join(timeout=3)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=3)

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

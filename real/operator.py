"""The operator of a real robot between episodes: nothing but the operator knows whether a real grasp succeeded or
can put the object back, so ``s2r deploy`` on hardware asks, in the terminal it watches for the stop keys, before
each episode to set the scene up (Enter when ready) and after it how it went (``s`` success, ``f`` failure, ``k``
skip: not counted). The answers go into the log's ``/episode`` messages and the summary, so real success rates
exist. The stop keys (space, Esc) still stop the run while it waits."""

from __future__ import annotations

import sys
from typing import TextIO

from real.stop_signals import KeyStop

LABELS = {b"s": "success", b"f": "failure", b"k": "skip"}
POLL_S = 0.1  # how often a wait looks up (a stop signal is raised in the main thread between polls)


class OperatorGone(RuntimeError):
    """The terminal the operator answers in is gone."""


class ConsoleOperator:
    """Asks through ``keys`` (the run's :class:`~real.stop_signals.KeyStop`), writing the questions to ``out``."""

    def __init__(self, keys: KeyStop, out: TextIO | None = None) -> None:
        self.keys = keys
        self.out = out or sys.stderr

    def _ask(self, question: str, answers: tuple[bytes, ...]) -> bytes:
        self.keys.clear_keys()
        self.out.write(f"\n{question} ")
        self.out.flush()
        while True:
            key = self.keys.read_key(POLL_S)
            if key is not None and key.lower() in answers:
                self.out.write("\n")
                return key.lower()
            if key is None and self.keys.closed.is_set():
                raise OperatorGone("the operator's terminal hung up: nobody can set the scene up or label episodes")

    def prepare(self, episode: int, total: int) -> None:
        """Wait until the operator has set the scene up for ``episode`` (0-based) of ``total``."""
        self._ask(
            f"episode {episode + 1}/{total}: set the scene up, then press Enter (space or Esc stops)", (b"\n", b"\r")
        )

    def label(self, episode: int, outcome: str) -> str:
        """How ``episode`` went, by the operator: success, failure or skip."""
        key = self._ask(
            f"episode {episode + 1} ended ({outcome}), robot parked: [s]uccess, [f]ailure or s[k]ip?", tuple(LABELS)
        )
        return LABELS[key]

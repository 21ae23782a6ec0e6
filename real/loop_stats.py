"""The deployment loop's figures: every cycle's timing (:class:`LoopStats`, into the JSON summary) and the live
status line on stderr (:class:`StatusLine`)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LoopStats:
    """Timing of every cycle of the run (ms), and the cycles whose work ran past the next one's start."""

    period_s: float
    cycle_ms: list[float] = field(default_factory=list)
    act_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)
    frame_age_ms: list[float] = field(default_factory=list)  # per acted-on frame: capture (else arrival) to use
    frames_stamped: bool = False  # the camera stamps its frames in host time (Frame.capture_time_ns)
    overruns: int = 0
    stalled_cycles: int = 0

    def summary(self) -> dict[str, Any]:
        def pct(x: list[float], q: float) -> float | None:
            return round(float(np.percentile(x, q)), 2) if x else None

        return {
            "target_period_ms": round(self.period_s * 1e3, 2),
            "cycles": len(self.late_ms),
            "cycle_ms_p50": pct(self.cycle_ms, 50),
            "cycle_ms_p99": pct(self.cycle_ms, 99),
            "late_ms_p99": pct(self.late_ms, 99),
            "act_ms_p50": pct(self.act_ms, 50),
            "act_ms_p99": pct(self.act_ms, 99),
            "overruns": self.overruns,
        }


class StatusLine:
    """The live status line: rate, overruns, act latency, OSI estimate."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.enabled and (force or now - self.last > 0.5):
            self.last = now
            sys.stderr.write("\r" + text[:150].ljust(150))
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")

"""How every benchmark reports: the JSON on stdout, and in a file when asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(out: dict[str, Any], path: str | None) -> None:
    text = json.dumps(out, indent=2)
    print(text)
    if path:
        Path(path).write_text(text + "\n")


def success_figures(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Episodes, successes, success rate and its Wilson 95 % interval of a deploy summary's ``episodes``."""
    return rate_figures(sum(bool(e["success"]) for e in episodes), len(episodes))


def rate_figures(successes: int, n: int) -> dict[str, Any]:
    """``successes`` of ``n`` episodes as the benchmarks report them: the counts, the success rate and its Wilson
    95 % interval (None and [0, 1] for no episode)."""
    from policies.rollout import wilson_interval

    lo, hi = wilson_interval(successes, n)
    return {
        "episodes": n,
        "successes": successes,
        "success_rate": round(successes / n, 3) if n else None,
        "ci95": [round(lo, 3), round(hi, 3)],
    }


def rate_result(client: str, n: int, wall: float, cpu: float) -> dict:
    """A bus client's figures over ``n`` reads taking ``wall`` s and ``cpu`` CPU s."""
    return {
        "client": client,
        "reads": n,
        "reads_per_s": round(n / wall, 1),
        "cpu_s": round(cpu, 3),
        "cpu_per_read_ms": round(1000 * cpu / n, 3),
    }


def merge_halves(a: dict, b: dict) -> dict:
    """One client's figures from its two interleaved halves."""
    reads = a["reads"] + b["reads"]
    wall = a["reads"] / a["reads_per_s"] + b["reads"] / b["reads_per_s"]
    cpu = a["cpu_s"] + b["cpu_s"]
    out = {**a, "reads": reads, "reads_per_s": round(reads / wall, 1), "cpu_s": round(cpu, 3)}
    out["cpu_per_read_ms"] = round(1000 * cpu / reads, 3)
    if "failures" in a:
        out["failures"] = a["failures"] + b["failures"]
    return out

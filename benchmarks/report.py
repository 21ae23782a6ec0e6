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
    from policies.rollout import wilson_interval

    wins = sum(bool(e["success"]) for e in episodes)
    n = len(episodes)
    lo, hi = wilson_interval(wins, n)
    return {
        "episodes": n,
        "successes": wins,
        "success_rate": round(wins / n, 3) if n else None,
        "ci95": [round(lo, 3), round(hi, 3)],
    }

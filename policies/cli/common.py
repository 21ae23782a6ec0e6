"""What several ``s2r`` commands print or write the same way."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def print_summary(summary: Any) -> None:
    """One line: a rollout summary's success rate with its 95 % interval, episodes and mean length."""
    lo, hi = summary.success_ci95
    print(
        f"{summary.task}: success {summary.success_rate:.1%} (95% CI {lo:.1%}-{hi:.1%}) over {summary.episodes} "
        f"episodes, mean length {summary.mean_episode_length:.1f} steps"
    )


def write_json(path: str | Path, data: dict) -> None:
    """``data`` as indented JSON at ``path`` (folders created; numpy numbers as floats)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=float))


def base_config(args: Any, config_type: type[T], **overrides: Any) -> T:
    """The ``config_type`` a command's dataclass extends (with its CLI-only fields dropped), field by field."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_type) if f.init}
    return config_type(**{**values, **overrides})

"""Writing calibration results into a hardware config file in place, keeping its comments and layout.

PyYAML would drop every comment of a file people maintain by hand, so the edits are textual and narrow: a
camera's ``key: value`` lines, or fields of a motor's one-line flow mapping. Every write keeps the previous file
as ``NAME.bak``, then reloads the new one through the config validator and checks that it says what was meant;
if not, the previous file is restored and the error raised.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from robot.config_file import load_hardware_config
from robot.description import ConfigError, HardwareConfig


def write_checked(path: Path, text: str, check: Callable[[HardwareConfig], bool], what: str) -> Path:
    """Write ``text`` to ``path`` (backup first); restore the backup unless it loads and ``check`` holds."""
    backup = path.with_name(path.name + ".bak")
    shutil.copyfile(path, backup)
    path.write_text(text)
    try:
        if not check(load_hardware_config(path)):
            raise ConfigError(f"{path}: the edited file does not give {what}")
    except ConfigError:
        shutil.copyfile(backup, path)
        raise
    return path


def _camera_block(lines: list[str], camera: str, path: Path) -> tuple[int, int, str]:
    """(first line, end line, key indentation) of camera ``camera``'s mapping under ``cameras:``."""
    start = next((i for i, line in enumerate(lines) if re.match(r"^cameras:\s*(#.*)?$", line)), None)
    if start is None:
        raise ConfigError(f"{path}: no top-level 'cameras:' section")
    head = None
    for i in range(start + 1, len(lines)):
        if re.match(r"^\S", lines[i]):  # the next top-level key
            break
        m = re.match(rf"^(\s*)-\s+name:\s*{re.escape(camera)}\s*(#.*)?$", lines[i])
        if m:
            head, dash = i, len(m.group(1))
            break
    if head is None:
        raise ConfigError(f"{path}: no camera named {camera!r} (block style '- name: {camera}' expected)")
    end = head + 1
    while end < len(lines):
        line = lines[end]
        indent = len(line) - len(line.lstrip())
        if line.strip() and (indent <= dash or re.match(r"^\S", line)):
            break
        end += 1
    return head, end, " " * (dash + 2)


def set_camera_fields(path: str | Path, camera: str, fields: dict[str, str], check: Callable[[HardwareConfig], bool]):
    """Set ``key: value`` lines (values already in YAML flow syntax) of camera ``camera``; a missing key is added
    at the end of the camera's block. Comments after a replaced value stay."""
    path = Path(path)
    lines = path.read_text().splitlines()
    head, end, indent = _camera_block(lines, camera, path)
    for key, value in fields.items():
        for i in range(head + 1, end):
            m = re.match(rf"^(\s*){key}:\s*(.*?)(\s+#.*)?$", lines[i])
            if m and len(m.group(1)) == len(indent):
                lines[i] = f"{m.group(1)}{key}: {value}{m.group(3) or ''}"
                break
        else:
            lines.insert(end, f"{indent}{key}: {value}")
            end += 1
    return write_checked(path, "\n".join(lines) + "\n", check, f"camera {camera}'s new {', '.join(fields)}")


def flow_list(values) -> str:
    return "[" + ", ".join(f"{float(v):.6g}" for v in values) + "]"

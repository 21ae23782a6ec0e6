"""Every ``s2r`` command line the README and the Makefile show still parses: the flags users type stay the same
when the command line is built from the commands' dataclasses."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from policies.cli import parse

ROOT = Path(__file__).resolve().parents[1]
#: Makefile variables in command lines, as the Makefile defines them.
MAKE_VARS = {
    "$(BIN)/s2r": "s2r",
    "$(SWEEP)": "s2r eval --seed 1000000 --randomization default",
    "$(GRASP_STUDENT)": "sim/randomization/variants/grasp_student.yaml",
}


def _command_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        lines += block.replace("\\\n", " ").splitlines()
    for line in (ROOT / "Makefile").read_text().replace("\\\n", " ").splitlines():
        for name, value in MAKE_VARS.items():
            line = line.replace(name, value)
        lines.append(line)
    out = []
    for line in lines:
        line = re.split(r"\s#\s", line.strip())[0].strip()
        placeholder = any(mark in line for mark in ("[", "|", "..."))
        if line.startswith("s2r ") and not placeholder:
            out.append(line)
    return out


LINES = _command_lines()


def test_the_documents_show_many_command_lines():
    assert len(LINES) > 50 and len({shlex.split(line)[1] for line in LINES}) >= 12


@pytest.mark.parametrize("line", LINES)
def test_a_documented_command_line_parses(line):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parse(shlex.split(line)[1:])
    except SystemExit as e:
        assert e.code == 0, err.getvalue()


def test_a_bad_value_is_a_usage_error_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as e:
        parse(["distill", "--teacher", "x", "--out", "y", "--crop", "1,2,3"])
    assert e.value.code == 2 and "--crop" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        parse(["deploy", "--robot", "r"])  # --policy is required
    assert e.value.code == 2 and "--policy" in capsys.readouterr().err

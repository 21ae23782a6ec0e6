"""``python -m policies.cli``: the ``s2r`` command."""

from policies.cli import entry

entry()

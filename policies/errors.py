"""Errors of the policies package, importable without torch (the ``s2r`` command catches them)."""


class BundleError(ValueError):
    """A bundle is missing, malformed, or does not fit the robot or observation it is used with."""

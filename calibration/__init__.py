"""Calibration: camera intrinsics (``calibration.intrinsics``); hand-eye, servo homing and system identification
from logs are still to come."""

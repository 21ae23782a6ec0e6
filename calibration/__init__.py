"""Calibration: camera intrinsics, hand-eye, servo homing and system identification (not built yet)."""

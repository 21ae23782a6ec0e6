"""Shared fixtures: paths to the shipped configs and to the real data beside the repo (optional)."""

from __future__ import annotations

from pathlib import Path

import pytest

from real.hardware_config import HARDWARE_CONFIG_DIR, load_hardware_config

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def arm_config():
    return load_hardware_config(HARDWARE_CONFIG_DIR / "openmanipulator_x.yaml")


@pytest.fixture(scope="session")
def base_config():
    return load_hardware_config(HARDWARE_CONFIG_DIR / "turtlebot3_burger.yaml")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the repo in CI and dev setups)")
    return SHARED_DATA

"""Shared fixtures: paths to the shipped configs and to the real data beside the repo (optional); tests marked
``realsense`` skip, with the reason, where pyrealsense2 cannot be imported, and fail instead where the environment
variable ``S2R_REQUIRE_REALSENSE`` is 1 (CI: the camera tests must run there, through libusb-package's libusb)."""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path

import pytest
from pty_sensor import pty  # noqa: F401  (the laser scanner tests' fixture)

from real.cameras.frame import CameraError
from real.cameras.realsense import import_pyrealsense2
from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config

# A shell that starts the test run in the background (`make test &`) hands it SIGINT ignored; the tests that send
# SIGINT expect Python's own handler, as a run started in a terminal has it.
signal.signal(signal.SIGINT, signal.default_int_handler)

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


@functools.cache
def _realsense_missing() -> str | None:
    """Why pyrealsense2 cannot be imported here (the project's own import, libusb-package fallback included)."""
    try:
        import_pyrealsense2()
    except CameraError as exc:
        return str(exc)
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("realsense") is not None and (reason := _realsense_missing()) is not None:
        if os.environ.get("S2R_REQUIRE_REALSENSE") == "1":
            pytest.fail(f"S2R_REQUIRE_REALSENSE=1 but pyrealsense2 cannot be imported: {reason}")
        pytest.skip(reason)
